package fsm

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkIndexMemory loads n machines into a fresh set of indexes whose
// machine cache holds them all, from records decoded from their JSON, the
// way a read that misses the cache loads one. Each machine has one project
// attachment and one grant. It reports the Go heap held per cached
// machine, without Pebble's memory. Bootstrap tokens are not held in
// memory.
func BenchmarkIndexMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("machines=%d", n), func(b *testing.B) {
			for range b.N {
				b.ReportMetric(measureIndexMemory(b, n), "B/machine")
			}
		})
	}
}

// measureIndexMemory returns the heap held per machine entry after
// loading n of them.
func measureIndexMemory(b *testing.B, n int) float64 {
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

	ix := newIndexes(nil, n)
	base := heapInUse()
	for i := range n {
		e, err := decodeMachineEntry(machineJSON(i))
		if err != nil {
			b.Fatal(err)
		}
		ix.publishMachine(&change{kind: kindMachine, id: string(e.Machine.ID), entry: e})
	}
	heldBytes := heapInUse() - base
	runtime.KeepAlive(ix)
	return float64(heldBytes) / float64(n)
}

// heapInUse returns the heap in use after two collections.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
