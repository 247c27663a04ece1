package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// stateMachine is the part of the replicated state machine that the node
// uses: Raft's batching FSM plus the index of the last entry committed to
// the state machine's own store. *fsm.FSM implements it.
type stateMachine interface {
	raft.BatchingFSM
	// AppliedIndex returns the index of the last log entry whose effects
	// are durable in the state machine's own store.
	AppliedIndex() uint64
}

// raftStores are the on-disk parts of Raft under DataDir/raft.
type raftStores struct {
	bolt  *raftboltdb.BoltStore
	snaps *raft.FileSnapshotStore
}

// boltOpenTimeout bounds waiting for the raft.db file lock, which another
// process still running on the same data directory holds.
const boltOpenTimeout = 2 * time.Second

func openRaftStores(dataDir string, retain int, logger *hclogAdapter) (*raftStores, error) {
	dir := filepath.Join(dataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "raft.db")
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path: path,
		BoltOptions: &bbolt.Options{
			Timeout:        boltOpenTimeout,
			NoFreelistSync: true,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	// The snapshot store creates the "snapshots" folder under dir.
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, retain, logger.Named("snapshots"))
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("open snapshot store in %s: %w", dir, err)
	}
	return &raftStores{bolt: bolt, snaps: snaps}, nil
}

func (s *raftStores) close() error {
	return s.bolt.Close()
}

// restoreIfBehind brings a persistent state machine up to the newest
// snapshot before Raft starts. Raft runs with NoSnapshotRestoreOnStart, so
// it trusts the state machine to hold everything up to the snapshot index
// and replays only later entries. When the state machine's applied index is
// below that snapshot's index (a lost or older Pebble directory), the
// entries in between may be compacted out of the log, so the snapshot must
// be restored first. It returns whether it restored.
func restoreIfBehind(sm stateMachine, snaps raft.SnapshotStore) (bool, error) {
	list, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 {
		return false, nil
	}
	latest := list[0] // List returns the newest first.
	if sm.AppliedIndex() >= latest.Index {
		return false, nil
	}
	_, rc, err := snaps.Open(latest.ID)
	if err != nil {
		return false, fmt.Errorf("open snapshot %s: %w", latest.ID, err)
	}
	// Raft's own restore path also closes the reader after FSM.Restore, so a
	// state machine that closes it too gets only a harmless second Close.
	err = sm.Restore(rc)
	rc.Close()
	if err != nil {
		return false, fmt.Errorf("restore snapshot %s at index %d: %w", latest.ID, latest.Index, err)
	}
	if got := sm.AppliedIndex(); got < latest.Index {
		return false, fmt.Errorf("restore snapshot %s: state machine reports applied index %d, want at least %d",
			latest.ID, got, latest.Index)
	}
	return true, nil
}
