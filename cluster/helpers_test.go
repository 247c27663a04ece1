package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"

	"github.com/keyward/keyward/fsm"
)

// TestMain fails the run when goroutines outlive the tests. It polls for up
// to five seconds because memberlist's Shutdown does not wait for a probe
// already in flight, which ends on its own within one probe interval.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			if err = goleak.Find(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testLogger discards logs unless KEYWARD_TEST_LOG is set, because
// memberlist and Raft keep logging from their goroutines for a moment after
// a test returns, when testing.T must no longer be used.
func testLogger() *slog.Logger {
	if os.Getenv("KEYWARD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig returns a config on loopback with free ports and intervals
// short enough for tests.
func testConfig(id, dir string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.RaftBindAddr = "127.0.0.1:0"
	cfg.GossipBindAddr = "127.0.0.1:0"
	cfg.ReconcileInterval = 200 * time.Millisecond
	cfg.JoinRetryInterval = 100 * time.Millisecond
	cfg.DeadNodeReclaimTime = time.Second
	return cfg
}

// testNode is a real node with a real Pebble state machine.
type testNode struct {
	t    *testing.T
	cfg  Config
	dir  string
	sm   *fsm.FSM
	node *Node
}

// startNode opens the state machine in dir and starts a node on it.
func startNode(t *testing.T, cfg Config, dir string) *testNode {
	t.Helper()
	sm, err := fsm.Open(fsm.Config{Dir: filepath.Join(dir, "fsm")}, testLogger())
	if err != nil {
		t.Fatalf("open fsm for %s: %v", cfg.NodeID, err)
	}
	node, err := New(cfg, sm, testLogger().With(keyNodeID, cfg.NodeID))
	if err != nil {
		sm.Close()
		t.Fatalf("new node %s: %v", cfg.NodeID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		sm.Close()
		t.Fatalf("start node %s: %v", cfg.NodeID, err)
	}
	tn := &testNode{t: t, cfg: cfg, dir: dir, sm: sm, node: node}
	t.Cleanup(tn.stop)
	return tn
}

// stop closes the node and its state machine; it is safe to call twice.
func (tn *testNode) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tn.close(ctx)
}

// stopAbruptly closes with a context that is already done, so the node
// neither hands over leadership nor announces its leave, like a crash.
func (tn *testNode) stopAbruptly() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tn.close(ctx)
}

func (tn *testNode) close(ctx context.Context) {
	if tn.node == nil {
		return
	}
	if err := tn.node.Close(ctx); err != nil {
		tn.t.Errorf("close node %s: %v", tn.cfg.NodeID, err)
	}
	if err := tn.sm.Close(); err != nil {
		tn.t.Errorf("close fsm of %s: %v", tn.cfg.NodeID, err)
	}
	tn.node = nil
}

// restart stops the node and starts it again on the same directory with
// the config changed by edit (nil keeps it).
func (tn *testNode) restart(edit func(*Config)) *testNode {
	tn.t.Helper()
	tn.stop()
	return tn.startAgain(edit)
}

// startAgain starts a stopped node on the same directory with the config
// changed by edit (nil keeps it).
func (tn *testNode) startAgain(edit func(*Config)) *testNode {
	tn.t.Helper()
	cfg := tn.cfg
	if edit != nil {
		edit(&cfg)
	}
	return startNode(tn.t, cfg, tn.dir)
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLeader returns the single node among nodes that is leader, once
// every node agrees on it.
func waitLeader(t *testing.T, nodes ...*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, 15*time.Second, "one agreed leader", func() bool {
		leader = nil
		for _, tn := range nodes {
			if tn.node.IsLeader() {
				if leader != nil {
					return false
				}
				leader = tn
			}
		}
		if leader == nil {
			return false
		}
		for _, tn := range nodes {
			if tn.node.LeaderID() != leader.cfg.NodeID {
				return false
			}
		}
		return true
	})
	return leader
}

// vaultCommand builds a valid command that creates vault number i.
func vaultCommand(t *testing.T, i int) *fsm.Command {
	t.Helper()
	payload := fsm.CreateVaultPayload{
		ID:   fsm.VaultID(fmt.Sprintf("vault_%016d", i)),
		Name: fmt.Sprintf("vault %d", i),
	}
	cmd, err := fsm.NewCommand(fsm.CmdCreateVault, time.Now().UnixMilli(), fsm.Actor{Kind: "system", ID: "test"}, payload)
	if err != nil {
		t.Fatalf("build command: %v", err)
	}
	cmd.RequestID = fmt.Sprintf("req-vault-%d", i)
	return cmd
}

// applyVault creates vault i through tn and fails the test unless the state
// machine accepted it.
func applyVault(t *testing.T, tn *testNode, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tn.node.Apply(ctx, vaultCommand(t, i))
	if err != nil {
		t.Fatalf("apply vault %d through %s: %v", i, tn.cfg.NodeID, err)
	}
	if resp.Code != "" {
		t.Fatalf("apply vault %d through %s: state machine rejected it: %s %s", i, tn.cfg.NodeID, resp.Code, resp.Message)
	}
}

// waitConverged waits until every node has applied the same index and holds
// the same state-machine checksum.
func waitConverged(t *testing.T, nodes ...*testNode) {
	t.Helper()
	waitFor(t, 15*time.Second, "replicas to converge", func() bool {
		first := nodes[0]
		sum, err := first.sm.Checksum()
		if err != nil {
			t.Fatalf("checksum of %s: %v", first.cfg.NodeID, err)
		}
		for _, tn := range nodes[1:] {
			if tn.sm.AppliedIndex() != first.sm.AppliedIndex() {
				return false
			}
			other, err := tn.sm.Checksum()
			if err != nil {
				t.Fatalf("checksum of %s: %v", tn.cfg.NodeID, err)
			}
			if other != sum {
				return false
			}
		}
		return true
	})
}

// raftServers returns the latest Raft configuration as seen by tn.
func raftServers(t *testing.T, tn *testNode) []raft.Server {
	t.Helper()
	f := tn.node.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatalf("raft configuration of %s: %v", tn.cfg.NodeID, err)
	}
	return f.Configuration().Servers
}
