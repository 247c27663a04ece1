package fsm

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// BenchmarkApplyBatch applies batches of 64 entries, raft's default
// MaxAppendEntries, each a grant change on one of 1,000 machines, and
// reports entries per second.
func BenchmarkApplyBatch(b *testing.B) {
	h := &harness{proposer: newProposer(b), f: openFSM(b, b.TempDir(), nil)}
	defer h.f.Close()
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "p")
	h.setupSecret(projA, secA, "s", "v")
	h.setupSecret(projA, secA2, "s2", "v")
	machines := registerMany(b, h, 1000)

	const batchSize = 64
	grants := [][]SecretID{{secA}, {secA, secA2}}
	batches := make([][]*raft.Log, 0, 64)
	for i := range cap(batches) {
		batch := make([]*raft.Log, batchSize)
		for j := range batch {
			n := i*batchSize + j
			batch[j] = h.entry(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machines[n%len(machines)], SecretIDs: grants[n%2]})
		}
		batches = append(batches, batch)
	}

	b.ResetTimer()
	entries := 0
	for i := 0; i < b.N; i++ {
		batch := batches[i%len(batches)]
		// Re-number the entries so that none is skipped as already applied.
		for _, l := range batch {
			h.index++
			l.Index = h.index
		}
		h.f.ApplyBatch(batch)
		entries += len(batch)
	}
	b.ReportMetric(float64(entries)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkApplyBatch_SecretUpdatesWithRequestIDs applies secret updates
// that each carry a new request id, as every HTTP write does, in batches
// of 64 on a store that already holds 200,000 idempotency records in its
// tables. Each update looks its request id up first, and the lookup
// misses, so it measures what a miss costs once the store has grown.
func BenchmarkApplyBatch_SecretUpdatesWithRequestIDs(b *testing.B) {
	h := &harness{proposer: newProposer(b), f: openFSM(b, b.TempDir(), nil)}
	defer h.f.Close()
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "p")
	h.setupSecret(projA, secA, "s", "v")

	const batchSize = 64
	version := 1
	nextBatch := func(prefix string) []*raft.Log {
		batch := make([]*raft.Log, batchSize)
		for j := range batch {
			payload := UpdateSecretPayload{ID: secA, ExpectedVersion: version, Sealed: h.seal(projA, secA, "value")}
			batch[j] = h.entryWithID(CmdUpdateSecret, fmt.Sprintf("%s-%d-%d", prefix, version, j), payload)
			version++
		}
		return batch
	}
	for range 200_000 / batchSize {
		h.f.ApplyBatch(nextBatch("fill"))
	}
	if err := h.f.db.Flush(); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		batch := nextBatch("bench")
		b.StartTimer()
		for i, r := range h.f.ApplyBatch(batch) {
			if resp := r.(*Response); resp.Code != "" {
				b.Fatalf("entry %d rejected: %s", i, resp.Message)
			}
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkMachineLookup_Parallel measures the fast-path lookup of a
// machine entry by id from many goroutines, over 10,000 machines.
func BenchmarkMachineLookup_Parallel(b *testing.B) {
	h := &harness{proposer: newProposer(b), f: openFSM(b, "mem", vfs.NewMem())}
	defer h.f.Close()
	h.setupVault(vaultA)
	machines := registerMany(b, h, 10_000)

	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := h.f.Machine(machines[i%len(machines)]); !ok {
				b.Fatal("machine missing")
			}
			i += 7
		}
	})
}

// benchStateMachines is the number of machines of the snapshot, restore
// and open benchmarks' state.
const benchStateMachines = 20_000

// benchState returns a store on disk holding benchStateMachines registered
// machines (a bootstrap token and a registration each, with their audit
// entries), and its snapshot stream.
func benchState(b *testing.B) (*harness, []byte) {
	b.Helper()
	h := &harness{proposer: newProposer(b), f: openFSM(b, b.TempDir(), nil)}
	b.Cleanup(func() { h.f.Close() })
	h.setupVault(vaultA)
	registerMany(b, h, benchStateMachines)
	return h, takeSnapshot(b, h.f)
}

// BenchmarkSnapshot streams a snapshot of a state of 20,000 machines to
// memory, the stream time that BenchmarkRestore is compared with.
func BenchmarkSnapshot(b *testing.B) {
	h, stream := benchState(b)
	b.SetBytes(int64(len(stream)))
	cpu := startCPU(b)
	for range b.N {
		snap, err := h.f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		sink := &memSink{}
		sink.Grow(len(stream))
		if err := snap.Persist(sink); err != nil {
			b.Fatal(err)
		}
		snap.Release()
	}
	cpu.report()
}

// BenchmarkRestore restores the snapshot of a state of 20,000 machines into
// a store on disk that holds other records, which the restore removes.
func BenchmarkRestore(b *testing.B) {
	_, stream := benchState(b)
	dst := &harness{proposer: newProposer(b), f: openFSM(b, b.TempDir(), nil)}
	defer dst.f.Close()
	dst.setupVault(vaultB)
	b.SetBytes(int64(len(stream)))
	cpu := startCPU(b)
	for range b.N {
		if err := dst.f.Restore(io.NopCloser(bytes.NewReader(stream))); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report()
	if got := len(dst.f.Machines(vaultA)); got != benchStateMachines {
		b.Fatalf("%d machines after restore, want %d", got, benchStateMachines)
	}
}

// BenchmarkOpen opens a store of 20,000 machines and loads its indexes,
// the state-dependent part of a restart.
func BenchmarkOpen(b *testing.B) {
	h, _ := benchState(b)
	dir := h.f.cfg.Dir
	if err := h.f.Close(); err != nil {
		b.Fatal(err)
	}
	cpu := startCPU(b)
	for range b.N {
		f := openFSM(b, dir, nil)
		cpu.pause()
		if got := len(f.Machines(vaultA)); got != benchStateMachines {
			b.Fatalf("%d machines after open, want %d", got, benchStateMachines)
		}
		f.Close()
		cpu.resume()
	}
	cpu.report()
}

// cpuTimer reports the process's CPU time per operation beside the wall
// time: on a host shared with other work, wall time also counts the time
// the benchmark waited for a core, and CPU time does not.
type cpuTimer struct {
	b     *testing.B
	start time.Duration
	spent time.Duration
}

// startCPU resets the benchmark timer and starts counting CPU time.
func startCPU(b *testing.B) *cpuTimer {
	b.ResetTimer()
	return &cpuTimer{b: b, start: processCPU()}
}

func (c *cpuTimer) pause() {
	c.b.StopTimer()
	c.spent += processCPU() - c.start
}

func (c *cpuTimer) resume() {
	c.start = processCPU()
	c.b.StartTimer()
}

// report stops the timer and reports CPU seconds per operation.
func (c *cpuTimer) report() {
	c.pause()
	c.b.ReportMetric(c.spent.Seconds()/float64(c.b.N), "cpu-s/op")
}

// processCPU returns the user and system CPU time this process used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// registerMany registers n standard machines in vault A, each with its
// own bootstrap token and key, in batches of 256 entries.
func registerMany(b *testing.B, h *harness, n int) []MachineID {
	b.Helper()
	ids := make([]MachineID, n)
	var logs []*raft.Log
	for i := range ids {
		ids[i] = MachineID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		token := fmt.Sprintf("bench-%d", i)
		logs = append(logs,
			h.entry(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(h.now, vaultA, token, TokenKindStandard, nil)}),
			h.entry(CmdRegisterMachine, RegisterMachinePayload{TokenHash: tokenHash(token), MachineID: ids[i], PublicKey: benchPublicKey(i), Hostname: "bench"}),
		)
	}
	for len(logs) > 0 {
		batch := logs[:min(256, len(logs))]
		logs = logs[len(batch):]
		for _, r := range h.f.ApplyBatch(batch) {
			if r.(*Response).Code != "" {
				b.Fatalf("setup rejected: %s", r.(*Response).Message)
			}
		}
	}
	return ids
}

// benchPublicKey returns a distinct valid public key for each n.
func benchPublicKey(n int) []byte {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(n)+1)
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}
