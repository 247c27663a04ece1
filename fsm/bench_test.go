package fsm

import (
	"fmt"
	"testing"

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

// registerMany registers n standard machines in vault A in one batch.
func registerMany(b *testing.B, h *harness, n int) []MachineID {
	b.Helper()
	ids := make([]MachineID, n)
	var logs []*raft.Log
	for i := range ids {
		ids[i] = MachineID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		token := fmt.Sprintf("bench-%d", i)
		logs = append(logs,
			h.entry(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(h.now, vaultA, token, TokenKindStandard, nil)}),
			h.entry(CmdRegisterMachine, RegisterMachinePayload{TokenHash: tokenHash(token), MachineID: ids[i], PublicKey: publicKey(byte(i)), Hostname: "bench"}),
		)
	}
	for _, r := range h.f.ApplyBatch(logs) {
		if r.(*Response).Code != "" {
			b.Fatalf("setup rejected: %s", r.(*Response).Message)
		}
	}
	return ids
}
