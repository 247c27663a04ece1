package guard

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"
)

// batchOf returns a scratch batch of jobs for the given keys, messages and
// signatures, as lead would build it.
func batchOf(keys []*ExpandedPublicKey, msgs, sigs [][]byte) *batchScratch {
	scratch := batchScratches.Get().(*batchScratch)
	for i := range keys {
		job := &batchJob{key: keys[i], msg: msgs[i], done: make(chan jobSignal, 1)}
		copy(job.sig[:], sigs[i])
		scratch.jobs = append(scratch.jobs, job)
	}
	return scratch
}

// TestBatchVerifier_BatchMatchesSingleOnEdgeVectors puts each edge vector
// into a batch of honest signatures and checks that every signature of the
// batch gets the single check's result.
func TestBatchVerifier_BatchMatchesSingleOnEdgeVectors(t *testing.T) {
	msg := benchmarkMessage()
	honestKeys, honestSigs := testKeys(t, 7, msg)
	for _, v := range edgeVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			pk, err := ParsePublicKey(v.publicKey)
			if err != nil {
				t.Fatal(err)
			}
			keys := []*ExpandedPublicKey{pk.Expand()}
			msgs, sigs := [][]byte{v.msg}, [][]byte{v.sig}
			for i, hk := range honestKeys {
				keys = append(keys, hk.Expand())
				msgs, sigs = append(msgs, msg), append(sigs, honestSigs[i])
			}
			verifier := NewBatchVerifier(DefaultMaxBatch, 1)
			scratch := batchOf(keys, msgs, sigs)
			verifier.verifyBatch(scratch)

			if got := scratch.jobs[0].ok; got != v.cofactored {
				t.Errorf("vector in a batch = %v, want %v", got, v.cofactored)
			}
			for i, job := range scratch.jobs[1:] {
				if !job.ok {
					t.Errorf("honest signature %d in the batch rejected", i)
				}
			}
			// The joint check itself must agree: it passes exactly when
			// every signature of the batch is valid.
			if failed := verifier.Stats().Failures == 1; failed == v.cofactored {
				t.Errorf("joint check failed = %v for a vector the single check answers %v", failed, v.cofactored)
			}
		})
	}
}

// TestBatchVerifier_RandomBatchesMatchSingle corrupts random signatures and
// messages of random batches and compares every result with the single
// check.
func TestBatchVerifier_RandomBatchesMatchSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 48, msg)
	expanded := make([]*ExpandedPublicKey, len(keys))
	for i, pk := range keys {
		expanded[i] = pk.Expand()
	}
	verifier := NewBatchVerifier(64, 1)
	for round := range 40 {
		n := 2 + rng.IntN(40)
		var bk []*ExpandedPublicKey
		var bm, bs [][]byte
		for range n {
			k := rng.IntN(len(keys))
			m := append([]byte(nil), msg...)
			s := append([]byte(nil), sigs[k]...)
			switch rng.IntN(8) {
			case 0:
				s[rng.IntN(len(s))] ^= byte(1 + rng.IntN(255))
			case 1:
				m[rng.IntN(len(m))] ^= 1
			case 2:
				k = (k + 1) % len(keys) // a key that did not sign
			}
			bk, bm, bs = append(bk, expanded[k]), append(bm, m), append(bs, s)
		}
		scratch := batchOf(bk, bm, bs)
		verifier.verifyBatch(scratch)
		for i, job := range scratch.jobs {
			if want := bk[i].Verify(bm[i], bs[i]); job.ok != want {
				t.Fatalf("round %d, signature %d of %d: batch answer %v, single answer %v", round, i, n, job.ok, want)
			}
		}
	}
}

// TestBatchVerifier_ConcurrentRequestsGetOwnResults runs many requests
// through one slot, so that they queue and batch, and checks that each
// gets the result for its own signature.
func TestBatchVerifier_ConcurrentRequestsGetOwnResults(t *testing.T) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 16, msg)
	expanded := make([]*ExpandedPublicKey, len(keys))
	for i, pk := range keys {
		expanded[i] = pk.Expand()
	}
	verifier := NewBatchVerifier(DefaultMaxBatch, 1)

	deadline := time.Now().Add(20 * time.Second)
	for verifier.Stats().Batches == verifier.Stats().Signatures && time.Now().Before(deadline) {
		var wg sync.WaitGroup
		errs := make(chan string, 48)
		for g := range 48 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					k := (g + i) % len(keys)
					sig := sigs[k]
					valid := (g+i)%5 != 0
					if !valid {
						sig = sigs[(k+1)%len(keys)]
					}
					if got := verifier.Verify(expanded[k], msg, sig); got != valid {
						errs <- fmt.Sprintf("goroutine %d request %d: got %v, want %v", g, i, got, valid)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if t.Failed() {
			return
		}
	}
	st := verifier.Stats()
	if st.Batches >= st.Signatures {
		t.Errorf("no request was batched: %d batches for %d signatures", st.Batches, st.Signatures)
	}
	if st.Failures == 0 {
		t.Error("no batch failed, though a fifth of the signatures are invalid")
	}
}

func TestBatchVerifier_MaxBatchOneVerifiesEachAlone(t *testing.T) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 2, msg)
	verifier := NewBatchVerifier(1, 1)
	k := keys[0].Expand()
	if !verifier.Verify(k, msg, sigs[0]) {
		t.Error("valid signature rejected")
	}
	if verifier.Verify(k, msg, sigs[1]) {
		t.Error("another key's signature accepted")
	}
	if verifier.Verify(k, msg, sigs[0][:10]) {
		t.Error("10-byte signature accepted")
	}
	if st := verifier.Stats(); st.Batches != 2 || st.Signatures != 2 {
		t.Errorf("stats %+v, want 2 single verifications", st)
	}
}

func TestBatchVerifier_UncontendedRequestDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are checked without the race detector, whose instrumentation allocates")
	}
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 1, msg)
	k := keys[0].Expand()
	verifier := NewBatchVerifier(DefaultMaxBatch, 1)
	verifier.Verify(k, msg, sigs[0])

	allocs := testing.AllocsPerRun(50, func() {
		if !verifier.Verify(k, msg, sigs[0]) {
			t.Fatal("valid signature rejected")
		}
	})
	if allocs != 0 {
		t.Errorf("a request that found a free slot allocated %.1f times, want 0", allocs)
	}
}

// BenchmarkBatchVerifier_Parallel verifies from 64 goroutines at once, the
// connection count of the read bench, over 1,024 keys. cpu-ns/op is the
// process CPU time per signature, which on a shared host moves less than
// ns/op; sigs/batch is the mean batch size.
func BenchmarkBatchVerifier_Parallel(b *testing.B) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(b, 1024, msg)
	expanded := make([]*ExpandedPublicKey, len(keys))
	for i, pk := range keys {
		expanded[i] = pk.Expand()
	}
	for _, maxBatch := range []int{1, 8, 32, 64} {
		b.Run(fmt.Sprintf("maxBatch=%d", maxBatch), func(b *testing.B) {
			verifier := NewBatchVerifier(maxBatch, 0)
			var mu sync.Mutex
			next := 0
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			start := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				i := next
				next += 97
				mu.Unlock()
				for pb.Next() {
					k := i % len(keys)
					if !verifier.Verify(expanded[k], msg, sigs[k]) {
						b.Error("valid signature rejected")
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
			st := verifier.Stats()
			b.ReportMetric(float64(st.Signatures)/float64(st.Batches), "sigs/batch")
		})
	}
}

// processCPU returns the CPU time of the process, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBatchVerifier_PanicReleasesQueuedRequests makes the verification of
// a batch panic (a job without a key) and checks that the request queued
// in it gets a result and the slot is freed, so that nothing hangs.
func TestBatchVerifier_PanicReleasesQueuedRequests(t *testing.T) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 1, msg)
	v := NewBatchVerifier(DefaultMaxBatch, 1)
	follower := &batchJob{key: keys[0].Expand(), msg: msg, done: make(chan jobSignal, 1)}
	copy(follower.sig[:], sigs[0])
	v.slots = 1
	v.queue = append(v.queue, follower)
	own := &batchJob{msg: msg, done: make(chan jobSignal, 1)}

	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		v.lead(own)
		return false
	}()
	if !panicked {
		t.Fatal("a batch with a job without a key did not panic")
	}
	select {
	case signal := <-follower.done:
		if signal != jobVerified {
			t.Errorf("queued request got signal %d, want jobVerified", signal)
		}
		if follower.ok {
			t.Error("queued request of a failed batch reported valid")
		}
	default:
		t.Fatal("queued request was left waiting")
	}
	if v.slots != 0 {
		t.Errorf("slots in use = %d after the panic, want 0", v.slots)
	}
}
