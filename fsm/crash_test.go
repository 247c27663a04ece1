package fsm

import (
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestFSM_CrashLosesOnlyUnsyncedApplies simulates a power loss after
// applies that were committed without fsync. The store comes back at or
// after the last snapshot's index, never before it, and replaying the log
// from the snapshot index, as Raft does, rebuilds the state of a clean run.
func TestFSM_CrashLosesOnlyUnsyncedApplies(t *testing.T) {
	logs := scenario(newProposer(t))
	clean := openFSM(t, "clean", vfs.NewMem())
	defer clean.Close()
	applyAll(t, clean, logs)
	want := checksum(t, clean)

	for _, unsynced := range []int{0, 50, 100} {
		fs := vfs.NewCrashableMem()
		f := openFSM(t, "db", fs)
		half := len(logs) / 2
		applyAll(t, f, logs[:half])
		snap, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		snapIndex := f.AppliedIndex()
		snap.Release()
		applyAll(t, f, logs[half:])

		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(1, uint64(unsynced)))})
		f.Close()

		g := openFSM(t, "db", crashed)
		if g.AppliedIndex() < snapIndex {
			t.Fatalf("unsynced %d%%: applied index %d after the crash, below the snapshot index %d", unsynced, g.AppliedIndex(), snapIndex)
		}
		applyAll(t, g, logs[snapIndex:])
		if got := checksum(t, g); got != want {
			t.Fatalf("unsynced %d%%: state after replay differs from a clean run", unsynced)
		}
		g.Close()
	}
}
