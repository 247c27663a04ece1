package cluster

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestCluster_SingleNodeBootstrapAndApply(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("solo", dir)
	cfg.BootstrapExpect = 1

	var running, stopped atomic.Int32
	cfg.LeaderJobs = []func(context.Context){func(ctx context.Context) {
		running.Add(1)
		<-ctx.Done()
		stopped.Add(1)
	}}
	tn := startNode(t, cfg, dir)
	waitLeader(t, tn)

	for i := range 5 {
		applyVault(t, tn, i)
	}
	if got := len(tn.sm.Vaults()); got != 5 {
		t.Fatalf("vaults after apply = %d, want 5", got)
	}
	if got := tn.node.Staleness(); got != 0 {
		t.Errorf("leader staleness = %s, want 0", got)
	}
	if got := tn.node.State(); got != "leader" {
		t.Errorf("State() = %q, want leader", got)
	}
	waitFor(t, 5*time.Second, "leader job to start", func() bool { return running.Load() == 1 })

	members := tn.node.Members()
	if len(members) != 1 {
		t.Fatalf("Members() = %+v, want one member", members)
	}
	m := members[0]
	if m.ID != "solo" || !m.Voter || !m.Alive || !m.Leader || !m.InRaft {
		t.Errorf("Members()[0] = %+v, want solo as alive voting leader", m)
	}
	if m.RaftAddr != tn.node.RaftAddr() {
		t.Errorf("member raft address = %q, want %q", m.RaftAddr, tn.node.RaftAddr())
	}

	t.Run("restart keeps state without restoring a snapshot", func(t *testing.T) {
		before := tn.sm.AppliedIndex()
		raftAddr := tn.node.RaftAddr()
		tn = tn.restart(func(c *Config) { c.RaftBindAddr = raftAddr })
		if stopped.Load() != 1 {
			t.Errorf("leader job stopped %d times after Close, want 1", stopped.Load())
		}
		if tn.node.restoredOnStart {
			t.Errorf("restart restored a snapshot although the state machine was current")
		}
		if got := tn.sm.AppliedIndex(); got < before {
			t.Errorf("applied index after restart = %d, want at least %d", got, before)
		}
		waitLeader(t, tn)
		applyVault(t, tn, 5)
		if got := len(tn.sm.Vaults()); got != 6 {
			t.Errorf("vaults after restart and apply = %d, want 6", got)
		}
	})
}

func TestCluster_RestoreSnapshotWhenStateMachineBehind(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("solo", dir)
	cfg.BootstrapExpect = 1
	// Keep no log after a snapshot, so only the snapshot holds the data.
	cfg.TrailingLogs = 0
	tn := startNode(t, cfg, dir)
	waitLeader(t, tn)
	for i := range 4 {
		applyVault(t, tn, i)
	}
	if err := tn.node.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	want, err := tn.sm.Checksum()
	if err != nil {
		t.Fatalf("checksum: %v", err)
	}
	tn.stop()

	// A lost state-machine directory: the entries are no longer in the log.
	if err := os.RemoveAll(filepath.Join(dir, "fsm")); err != nil {
		t.Fatalf("remove fsm directory: %v", err)
	}
	tn = startNode(t, cfg, dir)
	if !tn.node.restoredOnStart {
		t.Fatalf("start did not restore the snapshot into an empty state machine")
	}
	if got := len(tn.sm.Vaults()); got != 4 {
		t.Errorf("vaults after restore = %d, want 4", got)
	}
	got, err := tn.sm.Checksum()
	if err != nil {
		t.Fatalf("checksum after restore: %v", err)
	}
	if got != want {
		t.Errorf("checksum after restore = %s, want %s", got, want)
	}
	waitLeader(t, tn)
	applyVault(t, tn, 4)
	if got := len(tn.sm.Vaults()); got != 5 {
		t.Errorf("vaults after restore and apply = %d, want 5", got)
	}
}
