package fsm

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FuzzApply feeds arbitrary entries to a store that holds the scenario
// state: every entry must yield a Response, never a panic.
func FuzzApply(f *testing.F) {
	p := newProposer(f)
	logs := scenario(p)
	for _, l := range logs {
		f.Add(l.Data)
	}
	fsm := openFSM(f, "mem", vfs.NewMem())
	f.Cleanup(func() { fsm.Close() })
	applyAll(f, fsm, logs)
	index := p.index

	f.Fuzz(func(t *testing.T, data []byte) {
		index++
		r := asResponse(t, fsm.Apply(raftCommand(index, data)))
		if r.Code != "" && r.Body != nil {
			t.Fatalf("rejected entry has a body: %+v", r)
		}
	})
}

// FuzzRestore feeds arbitrary streams to Restore: each must be rejected
// or restored without a panic, and a rejected one must leave the state.
func FuzzRestore(f *testing.F) {
	src := openFSM(f, "mem", vfs.NewMem())
	f.Cleanup(func() { src.Close() })
	applyAll(f, src, scenario(newProposer(f))[:12])
	f.Add(takeSnapshot(f, src))
	f.Add(encodeStream(3, [][2]string{{"vault/x", "{}"}}, 0))
	f.Add([]byte(snapshotMagic))

	dst := openFSM(f, "mem", vfs.NewMem())
	f.Cleanup(func() { dst.Close() })
	f.Fuzz(func(t *testing.T, stream []byte) {
		before := checksum(t, dst)
		if err := restore(dst, stream); err != nil && checksum(t, dst) != before {
			t.Fatal("a rejected stream changed the state")
		}
	})
}
