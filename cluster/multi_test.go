package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// startThree starts three voters with BootstrapExpect 3 that find each
// other through the first node's gossip address.
func startThree(t *testing.T, edit func(*Config)) []*testNode {
	t.Helper()
	var nodes []*testNode
	for i := range 3 {
		dir := t.TempDir()
		cfg := testConfig(fmt.Sprintf("node-%d", i+1), dir)
		cfg.BootstrapExpect = 3
		if i > 0 {
			cfg.Join = []string{nodes[0].node.GossipAddr()}
		}
		if edit != nil {
			edit(&cfg)
		}
		nodes = append(nodes, startNode(t, cfg, dir))
	}
	return nodes
}

func followerOf(nodes []*testNode, leader *testNode) *testNode {
	for _, tn := range nodes {
		if tn != leader {
			return tn
		}
	}
	return nil
}

func serverAddr(servers []raft.Server, id string) (raft.ServerAddress, bool) {
	for _, s := range servers {
		if string(s.ID) == id {
			return s.Address, true
		}
	}
	return "", false
}

// TestCluster_ThreeNodes runs one cluster through formation, forwarding,
// leader failover, catch-up, a node moving to new addresses and the removal
// of a node that stays dead.
func TestCluster_ThreeNodes(t *testing.T) {
	// jobs counts, per node id, the leader jobs running on that node.
	var jobs sync.Map
	running := func(id string) *atomic.Int32 {
		v, _ := jobs.LoadOrStore(id, new(atomic.Int32))
		return v.(*atomic.Int32)
	}
	nodes := startThree(t, func(c *Config) {
		c.DeadNodeTimeout = 2 * time.Second
		id := c.NodeID
		c.LeaderJobs = []func(context.Context){func(ctx context.Context) {
			running(id).Add(1)
			defer running(id).Add(-1)
			<-ctx.Done()
		}}
	})
	leader := waitLeader(t, nodes...)

	t.Run("forms one cluster of three voters", func(t *testing.T) {
		servers := raftServers(t, leader)
		if len(servers) != 3 {
			t.Fatalf("raft servers = %+v, want 3", servers)
		}
		for _, s := range servers {
			if s.Suffrage != raft.Voter {
				t.Errorf("server %s suffrage = %v, want voter", s.ID, s.Suffrage)
			}
		}
		waitFor(t, 5*time.Second, "every member alive in gossip", func() bool {
			alive := 0
			for _, m := range nodes[2].node.Members() {
				if m.Alive && m.InRaft && m.Voter {
					alive++
				}
			}
			return alive == 3
		})
	})

	t.Run("apply through a follower is forwarded once", func(t *testing.T) {
		follower := followerOf(nodes, leader)
		sentBefore := follower.node.forwardsSent.Load()
		servedBefore := leader.node.forwardsServed.Load()
		applyVault(t, follower, 1)
		if got := follower.node.forwardsSent.Load() - sentBefore; got != 1 {
			t.Errorf("follower sent %d forwards, want 1", got)
		}
		if got := leader.node.forwardsServed.Load() - servedBefore; got != 1 {
			t.Errorf("leader served %d forwards, want 1", got)
		}
		waitConverged(t, nodes...)
		for _, tn := range nodes {
			if got := len(tn.sm.Vaults()); got != 1 {
				t.Errorf("%s has %d vaults, want 1", tn.cfg.NodeID, got)
			}
		}
		if got := follower.node.Staleness(); got > 2*time.Second {
			t.Errorf("follower staleness = %s, want under 2s", got)
		}
	})

	t.Run("leader crash elects a survivor and the old leader catches up", func(t *testing.T) {
		old := leader
		oldAddr := old.node.RaftAddr()
		oldGossip := old.node.GossipAddr()
		old.stopAbruptly()
		var survivors []*testNode
		for _, tn := range nodes {
			if tn != old {
				survivors = append(survivors, tn)
			}
		}
		leader = waitLeader(t, survivors...)
		applyVault(t, followerOf(survivors, leader), 2)
		applyVault(t, leader, 3)

		restarted := old.startAgain(func(c *Config) {
			c.RaftBindAddr = oldAddr
			c.GossipBindAddr = oldGossip
			c.Join = []string{leader.node.GossipAddr()}
		})
		for i, tn := range nodes {
			if tn == old {
				nodes[i] = restarted
			}
		}
		waitConverged(t, nodes...)
		if got := len(restarted.sm.Vaults()); got != 3 {
			t.Errorf("restarted node has %d vaults, want 3", got)
		}
	})

	t.Run("a node back on new addresses is re-addressed, not duplicated", func(t *testing.T) {
		leader = waitLeader(t, nodes...)
		moved := followerOf(nodes, leader)
		oldAddr := moved.node.RaftAddr()
		next := moved.restart(func(c *Config) {
			c.RaftBindAddr = "127.0.0.1:0"
			c.GossipBindAddr = "127.0.0.1:0"
			c.Join = []string{leader.node.GossipAddr()}
		})
		for i, tn := range nodes {
			if tn == moved {
				nodes[i] = next
			}
		}
		newAddr := raft.ServerAddress(next.node.RaftAddr())
		if string(newAddr) == oldAddr {
			t.Fatalf("restart kept raft address %s; the test needs a new one", oldAddr)
		}
		waitFor(t, 15*time.Second, "leader to record the new address", func() bool {
			got, ok := serverAddr(raftServers(t, leader), next.cfg.NodeID)
			return ok && got == newAddr
		})
		if servers := raftServers(t, leader); len(servers) != 3 {
			t.Errorf("raft servers after move = %+v, want 3", servers)
		}
		applyVault(t, next, 4)
		waitConverged(t, nodes...)
	})

	t.Run("a crashed node back on new addresses rejoins under its id", func(t *testing.T) {
		leader = waitLeader(t, nodes...)
		moved := followerOf(nodes, leader)
		oldAddr := moved.node.RaftAddr()
		moved.stopAbruptly()
		next := moved.startAgain(func(c *Config) {
			c.RaftBindAddr = "127.0.0.1:0"
			c.GossipBindAddr = "127.0.0.1:0"
			c.Join = []string{leader.node.GossipAddr()}
		})
		for i, tn := range nodes {
			if tn == moved {
				nodes[i] = next
			}
		}
		newAddr := raft.ServerAddress(next.node.RaftAddr())
		if string(newAddr) == oldAddr {
			t.Fatalf("restart kept raft address %s; the test needs a new one", oldAddr)
		}
		// Gossip hands the name to the new address only once the old entry
		// is dead and the reclaim time has passed.
		waitFor(t, 30*time.Second, "leader to record the new address", func() bool {
			got, ok := serverAddr(raftServers(t, leader), next.cfg.NodeID)
			return ok && got == newAddr
		})
		if servers := raftServers(t, leader); len(servers) != 3 {
			t.Errorf("raft servers after move = %+v, want 3", servers)
		}
		applyVault(t, next, 7)
		waitConverged(t, nodes...)
	})

	t.Run("closing the leader hands leadership over", func(t *testing.T) {
		old := waitLeader(t, nodes...)
		oldAddr, oldGossip := old.node.RaftAddr(), old.node.GossipAddr()
		old.stop()
		var survivors []*testNode
		for _, tn := range nodes {
			if tn != old {
				survivors = append(survivors, tn)
			}
		}
		// A transfer completes well within one election timeout.
		start := time.Now()
		leader = waitLeader(t, survivors...)
		if took := time.Since(start); took > old.cfg.ElectionTimeout {
			t.Errorf("new leader after close took %s, want under %s", took, old.cfg.ElectionTimeout)
		}
		back := old.startAgain(func(c *Config) {
			c.RaftBindAddr, c.GossipBindAddr = oldAddr, oldGossip
			c.Join = []string{leader.node.GossipAddr()}
		})
		for i, tn := range nodes {
			if tn == old {
				nodes[i] = back
			}
		}
		waitConverged(t, nodes...)
	})

	t.Run("operator calls through a follower reach the leader", func(t *testing.T) {
		leader = waitLeader(t, nodes...)
		follower := followerOf(nodes, leader)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		if err := follower.node.RemoveServer(ctx, leader.cfg.NodeID); !errors.Is(err, ErrMemberAlive) {
			t.Errorf("RemoveServer(alive leader) = %v, want ErrMemberAlive", err)
		}
		if err := follower.node.RemoveServer(ctx, "no-such-node"); !errors.Is(err, ErrUnknownMember) {
			t.Errorf("RemoveServer(unknown) = %v, want ErrUnknownMember", err)
		}
		if err := follower.node.TransferLeadership(ctx); err != nil {
			t.Fatalf("TransferLeadership through a follower: %v", err)
		}
		next := waitLeader(t, nodes...)
		if next == leader {
			t.Errorf("leader is still %s after a transfer", leader.cfg.NodeID)
		}
		waitFor(t, 5*time.Second, "leader job to move with leadership", func() bool {
			return running(leader.cfg.NodeID).Load() == 0 && running(next.cfg.NodeID).Load() == 1
		})
		for _, tn := range nodes {
			if tn != next && running(tn.cfg.NodeID).Load() != 0 {
				t.Errorf("follower %s runs %d leader jobs, want 0", tn.cfg.NodeID, running(tn.cfg.NodeID).Load())
			}
		}
		leader = next
		applyVault(t, follower, 5)
	})

	t.Run("every node back on new addresses elects a leader", func(t *testing.T) {
		for _, tn := range nodes {
			tn.stopAbruptly()
		}
		var next []*testNode
		for i, tn := range nodes {
			restarted := tn.startAgain(func(c *Config) {
				c.RaftBindAddr = "127.0.0.1:0"
				c.GossipBindAddr = "127.0.0.1:0"
				c.Join = nil
				if i > 0 {
					c.Join = []string{next[0].node.GossipAddr()}
				}
			})
			next = append(next, restarted)
		}
		nodes = next
		leader = waitLeader(t, nodes...)
		waitFor(t, 15*time.Second, "leader to record every new address", func() bool {
			servers := raftServers(t, leader)
			for _, tn := range nodes {
				got, ok := serverAddr(servers, tn.cfg.NodeID)
				if !ok || string(got) != tn.node.RaftAddr() {
					return false
				}
			}
			return len(servers) == 3
		})
		applyVault(t, followerOf(nodes, leader), 8)
		waitConverged(t, nodes...)
	})

	t.Run("a node dead past the timeout is removed", func(t *testing.T) {
		leader = waitLeader(t, nodes...)
		gone := followerOf(nodes, leader)
		gone.stop()
		waitFor(t, 20*time.Second, "dead node removal", func() bool {
			_, present := serverAddr(raftServers(t, leader), gone.cfg.NodeID)
			return !present
		})
		if servers := raftServers(t, leader); len(servers) != 2 {
			t.Errorf("raft servers after removal = %+v, want 2", servers)
		}
		applyVault(t, leader, 9)
	})
}
