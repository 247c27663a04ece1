package guard

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// threadCPU returns the CPU time of the calling OS thread, which a
// benchmark locked to its thread can read without counting the time other
// processes took the core.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// BenchmarkVerifyPerSignature compares, in thread CPU time per signature,
// one verification under crypto/ed25519's cofactorless rule and under this
// package's cofactored rule, and batches of several sizes. cpu-ns/sig is
// the figure to compare: on a shared host it moves much less than ns/op.
func BenchmarkVerifyPerSignature(b *testing.B) {
	const maxBatch = 64
	msg := benchmarkMessage()
	keys, sigs := testKeys(b, maxBatch, msg)
	expanded := make([]*ExpandedPublicKey, maxBatch)
	for i, pk := range keys {
		expanded[i] = pk.Expand()
	}
	cofactorless := &voi.Options{Verify: voi.VerifyOptionsStdLib}

	measure := func(name string, perCall int, call func()) {
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU()
			for b.Loop() {
				call()
			}
			b.ReportMetric(float64(threadCPU()-start)/float64(b.N)/float64(perCall), "cpu-ns/sig")
		})
	}
	measure("single=cofactorless", 1, func() {
		voi.VerifyExpandedWithOptions(expanded[0].expanded, msg, sigs[0], cofactorless)
	})
	measure("single=cofactored", 1, func() { expanded[0].Verify(msg, sigs[0]) })
	for _, n := range []int{2, 3, 4, 8, 16, 32, 64} {
		verifier := NewBatchVerifier(n, 1)
		scratch := &batchScratch{verifier: voi.NewBatchVerifier()}
		for i := range n {
			job := &batchJob{key: expanded[i], msg: msg}
			copy(job.sig[:], sigs[i])
			scratch.jobs = append(scratch.jobs, job)
		}
		measure(fmt.Sprintf("batch=%d", n), n, func() {
			verifier.verifyBatch(scratch)
			scratch.verifier.Reset()
			if !scratch.jobs[n-1].ok {
				b.Fatal("valid signature rejected in a batch")
			}
		})
	}
}
