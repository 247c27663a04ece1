package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/keyward/keyward/fsm"
)

// crash stops tn abruptly and returns a function that starts it again on
// the same addresses, joining through via, with the config changed by edit
// (nil keeps it).
func crash(tn *testNode) func(via *testNode, edit func(*Config)) *testNode {
	raftAddr, gossipAddr := tn.node.RaftAddr(), tn.node.GossipAddr()
	tn.stopAbruptly()
	return func(via *testNode, edit func(*Config)) *testNode {
		return tn.startAgain(func(c *Config) {
			c.RaftBindAddr, c.GossipBindAddr = raftAddr, gossipAddr
			c.Join = []string{via.node.GossipAddr()}
			if edit != nil {
				edit(c)
			}
		})
	}
}

// watchReady polls tn until it is ready and fails the test if it reports
// ready while its state machine is below index. It returns whether the
// first observation was "not ready".
func watchReady(t *testing.T, tn *testNode, index uint64) bool {
	t.Helper()
	first := true
	refusedFirst := false
	deadline := time.Now().Add(15 * time.Second)
	for {
		ready := tn.node.Ready()
		applied := tn.sm.AppliedIndex()
		if first {
			refusedFirst = !ready
			first = false
		}
		if ready {
			if applied < index {
				t.Fatalf("%s is ready at applied index %d, below the leader's %d", tn.cfg.NodeID, applied, index)
			}
			return refusedFirst
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 15s (applied %d, want %d)", tn.cfg.NodeID, applied, index)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReady_RestartedFollowerWaitsForTheLeadersIndex(t *testing.T) {
	nodes := startThree(t, nil)
	leader := waitLeader(t, nodes...)
	follower := followerOf(nodes, leader)
	applyVault(t, leader, 1)
	waitConverged(t, nodes...)
	watchReady(t, follower, 0)

	startAgain := crash(follower)
	for i := 2; i <= 40; i++ {
		applyVault(t, leader, i)
	}
	target := leader.sm.AppliedIndex()

	restarted := startAgain(leader, nil)
	refusedFirst := watchReady(t, restarted, target)
	t.Logf("restarted follower refused at first check: %v", refusedFirst)
	if _, ok := restarted.sm.Vault(fsm.VaultID(fmt.Sprintf("vault_%016d", 40))); !ok {
		t.Errorf("vault 40, written while %s was down, is missing once it is ready", restarted.cfg.NodeID)
	}
}

func TestReady_RestartedSingleNodeIsReady(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("solo", dir)
	cfg.BootstrapExpect = 1
	tn := startNode(t, cfg, dir)
	waitLeader(t, tn)
	for i := 1; i <= 3; i++ {
		applyVault(t, tn, i)
	}
	watchReady(t, tn, tn.sm.AppliedIndex())

	// After the restart the last log entry is the new term's no-op, which
	// never reaches the state machine; readiness must not wait for it.
	restarted := tn.restart(nil)
	waitLeader(t, restarted)
	watchReady(t, restarted, restarted.sm.AppliedIndex())
}
