package fsm

import (
	"bytes"
	"errors"
	"testing"
)

func TestFSM_ReindexSnapshotSetsTheAppliedIndex(t *testing.T) {
	src := openFSM(t, t.TempDir(), nil)
	defer src.Close()
	applyAll(t, src, scenario(newProposer(t)))
	stream := takeSnapshot(t, src)

	index, term, err := VerifySnapshot(stream)
	if err != nil {
		t.Fatalf("VerifySnapshot: %v", err)
	}
	if index != src.AppliedIndex() {
		t.Errorf("header index %d, want %d", index, src.AppliedIndex())
	}

	const newIndex, newTerm = 1 << 40, 9
	original := bytes.Clone(stream)
	moved, err := ReindexSnapshot(stream, newIndex, newTerm)
	if err != nil {
		t.Fatalf("ReindexSnapshot: %v", err)
	}
	if gotIndex, gotTerm, err := VerifySnapshot(moved); err != nil || gotIndex != newIndex || gotTerm != newTerm {
		t.Fatalf("reindexed header: index %d term %d (%v), want %d and %d", gotIndex, gotTerm, err, uint64(newIndex), newTerm)
	}
	if !bytes.Equal(stream, original) {
		t.Errorf("ReindexSnapshot changed its input")
	}
	if term == 0 {
		t.Errorf("header term is 0, want the term of the last applied entry")
	}

	dst := openFSM(t, t.TempDir(), nil)
	defer dst.Close()
	if err := restore(dst, moved); err != nil {
		t.Fatalf("Restore of the reindexed stream: %v", err)
	}
	if dst.AppliedIndex() != newIndex {
		t.Errorf("applied index after restore %d, want %d", dst.AppliedIndex(), uint64(newIndex))
	}
	if checksum(t, dst) != checksum(t, src) {
		t.Errorf("state differs after restoring the reindexed stream")
	}
}

func TestFSM_VerifySnapshotRejectsDamage(t *testing.T) {
	src := openFSM(t, t.TempDir(), nil)
	defer src.Close()
	applyAll(t, src, scenario(newProposer(t)))
	stream := takeSnapshot(t, src)

	flip := func(i int) []byte {
		b := bytes.Clone(stream)
		b[i] ^= 0x01
		return b
	}
	cases := map[string][]byte{
		"empty":          nil,
		"header only":    stream[:28],
		"bad magic":      flip(0),
		"bad version":    flip(11),
		"flipped record": flip(len(stream) / 2),
		"cut short":      stream[:len(stream)-1],
		"bytes appended": append(bytes.Clone(stream), 0),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := VerifySnapshot(b); !errors.Is(err, ErrSnapshotCorrupt) {
				t.Errorf("VerifySnapshot = %v, want ErrSnapshotCorrupt", err)
			}
			if _, err := ReindexSnapshot(b, 5, 1); !errors.Is(err, ErrSnapshotCorrupt) {
				t.Errorf("ReindexSnapshot = %v, want ErrSnapshotCorrupt", err)
			}
		})
	}
}
