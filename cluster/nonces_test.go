package cluster

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

// withGuards gives a node config its own replay cache and lockout, as the
// server wiring does.
func withGuards(c *Config) {
	c.ReplayCache = guard.NewReplayCache(time.Minute)
	c.Lockout = guard.NewLockout(guard.LockoutConfig{MaxFailures: 4, Window: time.Minute, Duration: time.Minute, MaxSources: 100})
}

// acceptNonce does what the HTTP layer does when it accepts a request:
// record the nonce locally, then publish it.
func acceptNonce(t *testing.T, tn *testNode, machineID, nonce string) {
	t.Helper()
	now := time.Now()
	if !tn.cfg.ReplayCache.CheckAndRecord(machineID, nonce, now) {
		t.Fatalf("%s rejected a fresh nonce %q", tn.cfg.NodeID, nonce)
	}
	tn.node.PublishNonce(machineID, nonce, now.Add(tn.cfg.ReplayCache.Retention()))
}

// rejects reports whether tn's replay cache already holds the nonce. The
// probe records the nonce when it was not there, like a request would, so
// call it once per nonce and node.
func rejects(tn *testNode, machineID, nonce string) bool {
	return !tn.cfg.ReplayCache.CheckAndRecord(machineID, nonce, time.Now())
}

// cacheSizes returns the replay cache size of each node.
func cacheSizes(nodes []*testNode) []int {
	sizes := make([]int, len(nodes))
	for i, tn := range nodes {
		sizes[i] = tn.cfg.ReplayCache.Len()
	}
	return sizes
}

// waitNonceArrived waits until each node's replay cache grew past its size
// in before, which in these tests means a published nonce arrived.
func waitNonceArrived(t *testing.T, nodes []*testNode, before []int) {
	t.Helper()
	for i, tn := range nodes {
		waitFor(t, 5*time.Second, "the nonce on "+tn.cfg.NodeID, func() bool {
			return tn.cfg.ReplayCache.Len() > before[i]
		})
	}
}

func TestNonces_ClusterWideReplayProtection(t *testing.T) {
	nodes := startThree(t, withGuards)
	leader := waitLeader(t, nodes...)
	waitFor(t, 10*time.Second, "every node ready", func() bool {
		for _, tn := range nodes {
			if !tn.node.Ready() {
				return false
			}
		}
		return true
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	const machine = "6f1c2d9e-3b4a-4c5d-8e7f-0a1b2c3d4e5f"

	t.Run("an accepted nonce reaches every peer", func(t *testing.T) {
		// The propagation window is the time from the accept on one node
		// until another node rejects a replay. It is logged, not asserted,
		// because it depends on the machine that runs the test.
		var samples []time.Duration
		for i := range 200 {
			before := b.cfg.ReplayCache.Len()
			start := time.Now()
			acceptNonce(t, a, machine, fmt.Sprintf("nonce-window-%04d", i))
			for b.cfg.ReplayCache.Len() == before {
				if time.Since(start) > 5*time.Second {
					t.Fatalf("nonce %d did not reach %s within 5s", i, b.cfg.NodeID)
				}
				time.Sleep(20 * time.Microsecond)
			}
			samples = append(samples, time.Since(start))
		}
		slices.Sort(samples)
		t.Logf("nonce propagation window over %d nonces, loopback, mutual TLS off: p50 %s, p90 %s, p99 %s, max %s",
			len(samples), samples[len(samples)/2], samples[len(samples)*9/10], samples[len(samples)*99/100], samples[len(samples)-1])

		peers := []*testNode{b, c}
		before := cacheSizes(peers)
		acceptNonce(t, a, machine, "nonce-replayed")
		waitNonceArrived(t, peers, before)
		for _, tn := range peers {
			if !rejects(tn, machine, "nonce-replayed") {
				t.Errorf("%s accepted a nonce that %s accepted", tn.cfg.NodeID, a.cfg.NodeID)
			}
		}
	})

	t.Run("failed authentications add up across nodes", func(t *testing.T) {
		source := netip.MustParseAddr("198.51.100.7")
		for _, tn := range []*testNode{a, a, b, b} {
			tn.cfg.Lockout.Failure(source, time.Now())
			tn.node.PublishAuthFailure(source)
		}
		for _, tn := range nodes {
			waitFor(t, 5*time.Second, "the lockout on "+tn.cfg.NodeID, func() bool {
				return tn.cfg.Lockout.Locked(source, time.Now())
			})
		}
		if other := netip.MustParseAddr("198.51.100.8"); c.cfg.Lockout.Locked(other, time.Now()) {
			t.Errorf("%s locked %s, which never failed", c.cfg.NodeID, other)
		}
	})

	t.Run("a node restarted after a crash pulls the nonces it accepted", func(t *testing.T) {
		victim := followerOf(nodes, leader)
		var peers []*testNode
		for _, tn := range nodes {
			if tn != victim {
				peers = append(peers, tn)
			}
		}
		before := cacheSizes(peers)
		acceptNonce(t, victim, machine, "nonce-before-crash")
		waitNonceArrived(t, peers, before)
		startAgain := crash(victim)
		restarted := startAgain(leader, withGuards)
		for i, tn := range nodes {
			if tn == victim {
				nodes[i] = restarted
			}
		}
		waitFor(t, 10*time.Second, "the restarted node to be ready", restarted.node.Ready)
		if !rejects(restarted, machine, "nonce-before-crash") {
			t.Errorf("restarted %s accepted a nonce it had accepted before the crash", restarted.cfg.NodeID)
		}
	})
}

func TestNonces_SingleNodeKeepsNoncesAcrossGracefulRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("solo", dir)
	cfg.BootstrapExpect = 1
	withGuards(&cfg)
	tn := startNode(t, cfg, dir)
	waitLeader(t, tn)
	const machine = "0d8e7c6b-5a49-4382-9170-fedcba987654"
	acceptNonce(t, tn, machine, "nonce-kept")
	waitFor(t, 5*time.Second, "the nonce in the log", func() bool {
		page, _ := tn.node.events.log.page(0, maxEventFrame, time.Now())
		return len(page) > 0
	})

	restarted := tn.restart(withGuards)
	waitFor(t, 10*time.Second, "the restarted node to be ready", restarted.node.Ready)
	if !rejects(restarted, machine, "nonce-kept") {
		t.Errorf("a nonce accepted before a graceful restart was accepted again")
	}
}

// logBytes returns the bytes of tn's nonce log.
func logBytes(tn *testNode) int {
	l := tn.node.events.log
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// TestNonces_RestartsDoNotGrowTheLog restarts each node of a cluster in
// turn, three rounds, after 100 accepted nonces. A restarted node pulls
// nonces that it also loads from its own journal. It must keep each once,
// because otherwise every round multiplies the log that the next node
// pulls.
func TestNonces_RestartsDoNotGrowTheLog(t *testing.T) {
	nodes := startThree(t, withGuards)
	leader := waitLeader(t, nodes...)
	for _, tn := range nodes {
		waitFor(t, 10*time.Second, "every node ready", tn.node.Ready)
	}
	const machine = "6f1c2d9e-3b4a-4c5d-8e7f-0a1b2c3d4e5f"
	const accepted = 100
	before := cacheSizes(nodes)
	for i := range accepted {
		acceptNonce(t, nodes[0], machine, fmt.Sprintf("nonce-restart-%04d", i))
	}
	for i, tn := range nodes {
		waitFor(t, 5*time.Second, "every nonce on "+tn.cfg.NodeID, func() bool {
			return tn.cfg.ReplayCache.Len() >= before[i]+accepted
		})
	}
	recordBytes := len(appendNonceRecord(nil, machine, "nonce-restart-0000", time.Now()))
	limit := accepted * recordBytes * 3 / 2

	for round := range 3 {
		for i := range nodes {
			via := nodes[(i+1)%len(nodes)]
			if nodes[i] == leader {
				via = followerOf(nodes, leader)
			}
			nodes[i] = crash(nodes[i])(via, withGuards)
			waitFor(t, 15*time.Second, "the restarted node to be ready", nodes[i].node.Ready)
		}
		leader = waitLeader(t, nodes...)
		for _, tn := range nodes {
			if got := logBytes(tn); got > limit {
				t.Fatalf("round %d: %s holds %d bytes of nonces, want at most %d for %d nonces of %d bytes",
					round, tn.cfg.NodeID, got, limit, accepted, recordBytes)
			}
			if !rejects(tn, machine, "nonce-restart-0042") {
				t.Fatalf("round %d: %s accepted a replayed nonce", round, tn.cfg.NodeID)
			}
		}
	}
}

// TestNonces_KeptForThisNodesWindow keeps a nonce that a peer with a
// shorter timestamp window accepted for this node's own retention, so a
// replay that passes this node's timestamp check is still rejected.
func TestNonces_KeptForThisNodesWindow(t *testing.T) {
	n := &Node{cfg: Config{ReplayCache: guard.NewReplayCache(time.Hour)}}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	short := now.Add(2*time.Minute + time.Second)
	if got, want := n.keepNonceUntil(short, now), now.Add(n.cfg.ReplayCache.Retention()); !got.Equal(want) {
		t.Fatalf("a nonce sent with expiry %s is kept until %s, want %s", short, got, want)
	}
	long := now.Add(5 * time.Hour)
	if got := n.keepNonceUntil(long, now); !got.Equal(long) {
		t.Fatalf("a later expiry %s became %s", long, got)
	}
}
