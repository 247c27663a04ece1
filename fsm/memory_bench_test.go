package fsm

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

// BenchmarkIndexMemory loads n machines into a fresh set of indexes whose
// machine cache holds them all, from records decoded from their JSON, the
// way a read that misses the cache loads one. Each
// machine has one project attachment, one grant and the used standard
// bootstrap token it registered with. It reports the Go heap they hold
// per machine and per token. The figure covers the indexes only, without
// Pebble's memory.
func BenchmarkIndexMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("machines=%d", n), func(b *testing.B) {
			for range b.N {
				perMachine, perToken := measureIndexMemory(b, n)
				b.ReportMetric(perMachine, "B/machine")
				b.ReportMetric(perToken, "B/token")
			}
		})
	}
}

// measureIndexMemory returns the heap held per machine entry and per used
// bootstrap token after loading n of each.
func measureIndexMemory(b *testing.B, n int) (perMachine, perToken float64) {
	b.Helper()
	// publicKey takes a one-byte seed, so there are 256 distinct keys; each
	// machine still holds its own decoded copy.
	keys := make([][]byte, 256)
	for i := range keys {
		keys[i] = publicKey(byte(i))
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	machineJSON := func(i int) []byte {
		m := Machine{
			ID:           MachineID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)),
			VaultID:      "vault_benchscale000001",
			Name:         fmt.Sprintf("bench-%07d", i),
			Kind:         KindStandard,
			PublicKey:    keys[i%len(keys)],
			Status:       StatusActive,
			Hostname:     fmt.Sprintf("bench-%07d", i),
			RegisteredAt: now,
			ApprovedAt:   now,
			Projects:     []ProjectID{"proj_benchscale"},
			Grants:       []SecretID{"sk_benchscale"},
		}
		data, err := json.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	tokenJSON := func(i int) []byte {
		tok := BootstrapToken{
			ID: fmt.Sprintf("bt_%d", i), Hash: tokenHash(fmt.Sprintf("bench-scale-token-%d", i)),
			VaultID: "vault_benchscale000001", Kind: TokenKindStandard, CreatedAt: now,
			ExpiresAt: now + time.Hour.Milliseconds(), Uses: 1, MaxUses: 1,
		}
		data, err := json.Marshal(tok)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}

	ix := newIndexes(nil, n)
	base := heapInUse()
	for i := range n {
		var m Machine
		if err := json.Unmarshal(machineJSON(i), &m); err != nil {
			b.Fatal(err)
		}
		key, err := guard.ParsePublicKey(m.PublicKey)
		if err != nil {
			b.Fatal(err)
		}
		ix.publishMachine(&change{kind: kindMachine, id: string(m.ID), entry: newMachineEntry(m, key, nil)})
	}
	afterMachines := heapInUse()
	for i := range n {
		var tok BootstrapToken
		if err := json.Unmarshal(tokenJSON(i), &tok); err != nil {
			b.Fatal(err)
		}
		ix.publishBootstrapToken(&tok)
	}
	afterTokens := heapInUse()
	runtime.KeepAlive(ix)
	return float64(afterMachines-base) / float64(n), float64(afterTokens-afterMachines) / float64(n)
}

// heapInUse returns the heap in use after two collections.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
