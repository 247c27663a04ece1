package cluster

import (
	"testing"
)

// TestCluster_RestartAfterSnapshotKeepsStateMachine restarts a node whose
// state machine already holds everything up to and past the newest Raft
// snapshot: the start must use the store as it is, not restore the
// snapshot into it again.
func TestCluster_RestartAfterSnapshotKeepsStateMachine(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("solo", dir)
	cfg.BootstrapExpect = 1
	tn := startNode(t, cfg, dir)
	waitLeader(t, tn)
	for i := range 3 {
		applyVault(t, tn, i)
	}
	if err := tn.node.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	snaps, err := tn.node.stores.snaps.List()
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshot store lists %d snapshots (%v), want one", len(snaps), err)
	}
	applyVault(t, tn, 3) // past the snapshot
	before := tn.sm.AppliedIndex()
	want, err := tn.sm.Checksum()
	if err != nil {
		t.Fatal(err)
	}

	raftAddr := tn.node.RaftAddr()
	tn = tn.restart(func(c *Config) { c.RaftBindAddr = raftAddr })
	if tn.node.restoredOnStart {
		t.Fatal("start restored the snapshot into a state machine that was past it")
	}
	if got := tn.sm.AppliedIndex(); got < before {
		t.Errorf("applied index after restart = %d, want at least %d", got, before)
	}
	got, err := tn.sm.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("checksum after restart = %s, want %s", got, want)
	}
	waitLeader(t, tn)
	applyVault(t, tn, 4)
	if n := len(tn.sm.Vaults()); n != 5 {
		t.Errorf("vaults after restart and apply = %d, want 5", n)
	}
}
