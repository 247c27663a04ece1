package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNonces_SurviveCrashOfEveryNode kills every node at once, so no peer
// holds the nonce when they start again; only the journal on disk does.
func TestNonces_SurviveCrashOfEveryNode(t *testing.T) {
	nodes := startThree(t, withGuards)
	waitLeader(t, nodes...)
	waitFor(t, 10*time.Second, "every node ready", func() bool {
		for _, tn := range nodes {
			if !tn.node.Ready() {
				return false
			}
		}
		return true
	})
	const machine = "2b7d4f10-9c3e-4a55-8d61-0e2f3a4b5c6d"
	before := cacheSizes(nodes[1:])
	acceptNonce(t, nodes[0], machine, "nonce-before-crash")
	waitNonceArrived(t, nodes[1:], before)

	type addrs struct{ raft, gossip string }
	old := make([]addrs, len(nodes))
	for i, tn := range nodes {
		old[i] = addrs{tn.node.RaftAddr(), tn.node.GossipAddr()}
	}
	for _, tn := range nodes {
		tn.stopAbruptly()
	}
	for i, tn := range nodes {
		nodes[i] = tn.startAgain(func(c *Config) {
			withGuards(c)
			c.RaftBindAddr, c.GossipBindAddr = old[i].raft, old[i].gossip
			c.Join = nil
			for k := range old {
				if k != i {
					c.Join = append(c.Join, old[k].gossip)
				}
			}
		})
	}
	waitLeader(t, nodes...)
	for _, tn := range nodes {
		waitFor(t, 15*time.Second, tn.cfg.NodeID+" ready after the restart", tn.node.Ready)
		if !rejects(tn, machine, "nonce-before-crash") {
			t.Errorf("%s accepted a nonce that the cluster accepted before every node crashed", tn.cfg.NodeID)
		}
	}
}

// TestDiskFull_LeaderRejectsWritesAndHandsOver raises the leader's disk
// reserve above the free space, which is how a full data volume looks to
// the node, and frees it again.
func TestDiskFull_LeaderRejectsWritesAndHandsOver(t *testing.T) {
	nodes := startThree(t, nil)
	full := waitLeader(t, nodes...)
	applyVault(t, full, 1)
	full.node.disk.reserve.Store(1 << 62)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := full.node.Apply(ctx, vaultCommand(t, 2))
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("write on the full leader returned %v, want ErrDiskFull", err)
	}
	if !strings.Contains(err.Error(), full.cfg.DataDir) || !strings.Contains(err.Error(), full.cfg.NodeID) {
		t.Errorf("error %q names neither the data dir %s nor the node", err, full.cfg.DataDir)
	}

	var others []*testNode
	for _, tn := range nodes {
		if tn != full {
			others = append(others, tn)
		}
	}
	waitFor(t, 10*time.Second, "leadership to leave the full node", func() bool {
		return !full.node.IsLeader() && (others[0].node.IsLeader() || others[1].node.IsLeader())
	})
	leader := waitLeader(t, nodes...)
	if leader == full {
		t.Fatalf("the full node %s leads again", full.cfg.NodeID)
	}
	// Forwarded through the full node, the write reaches the new leader.
	applyVault(t, full, 3)
	waitFor(t, 10*time.Second, "the full node to stop serving after refusing entries", func() bool {
		return !full.node.Ready()
	})
	if h := full.node.DiskHealth(); !h.Low {
		t.Errorf("disk health of the full node = %+v, want Low", h)
	}
	for _, tn := range others {
		if h := tn.node.DiskHealth(); h.Low || h.Stalled {
			t.Errorf("disk health of %s = %+v, want neither low nor stalled", tn.cfg.NodeID, h)
		}
	}

	full.node.disk.reserve.Store(0)
	waitFor(t, 30*time.Second, "the full node to catch up once space is free", full.node.Ready)
	waitConverged(t, nodes...)
	if got := vaultNumbers(full); len(got) != 2 {
		t.Errorf("the full node holds vaults %v, want 1 and 3", got)
	}
}

func TestDiskFull_ErrorsKeepTheirKind(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "/data/raft/raft.db", Err: syscall.ENOSPC}
	if got := classifyApplyError(enospc, 7); !errors.Is(got, ErrDiskFull) || errors.Is(got, ErrIndeterminate) {
		t.Errorf("classify(ENOSPC) = %v, want ErrDiskFull and not indeterminate", got)
	}
	rejected := fmt.Errorf("%w: node n1: the volume of data dir /data has 0 bytes free", ErrDiskFull)
	if got := classifyApplyError(rejected, 7); !errors.Is(got, ErrDiskFull) {
		t.Errorf("classify(rejected append) = %v, want ErrDiskFull", got)
	}
	got := errorFromStatus(responseFromError(rejected), "n1")
	if !errors.Is(got, ErrDiskFull) {
		t.Fatalf("forwarded disk-full error became %v", got)
	}
	if strings.Count(got.Error(), ErrDiskFull.Error()) != 1 || !strings.Contains(got.Error(), "/data") {
		t.Errorf("forwarded disk-full error reads %q; want the leader's text with the prefix once", got)
	}
}

func TestDiskMonitor_SlowWriteCountsAsStall(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.DiskStallThreshold = 20 * time.Millisecond
	m := newDiskMonitor(cfg, testLogger())

	start := m.beginWrite()
	m.endWrite(start, nil)
	if h := m.health(); h.Stalled {
		t.Fatalf("a fast write made the disk count as stalled: %+v", h)
	}

	start = m.beginWrite()
	deadline := time.Now().Add(5 * time.Second)
	for !m.health().Stalled {
		if time.Now().After(deadline) {
			t.Fatal("a write running past the threshold was not reported as a stall")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := m.inProgress(); got < cfg.DiskStallThreshold {
		t.Errorf("write in progress for %v, want at least %v", got, cfg.DiskStallThreshold)
	}
	m.endWrite(start, nil)
	h := m.health()
	if !h.Stalled || h.SlowestRecent < cfg.DiskStallThreshold {
		t.Errorf("after a slow write the health is %+v; want stalled with the slow write's latency", h)
	}
	if !h.FreeKnown || h.FreeBytes == 0 {
		t.Errorf("free space of %s not known: %+v", cfg.DataDir, h)
	}
}

// TestLogBound_SnapshotOnStartBoundsRaftLog restarts a node more often than
// Raft's snapshot interval, with fewer writes per run than the snapshot
// threshold. Without the snapshot at start the log would only grow.
func TestLogBound_SnapshotOnStartBoundsRaftLog(t *testing.T) {
	const (
		restarts     = 20
		writesPerRun = 40
		threshold    = 64
		trailing     = 32
		// slack covers the entries a run adds besides the writes: the
		// no-op of each new term and configuration entries.
		slack = 8
	)
	dir := t.TempDir()
	cfg := testConfig("solo", dir)
	cfg.BootstrapExpect = 1
	cfg.SnapshotThreshold = threshold
	cfg.TrailingLogs = trailing
	cfg.SnapshotInterval = time.Hour
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	tn := startNode(t, cfg, dir)

	bound := uint64(threshold + trailing + writesPerRun + slack)
	dbPath := filepath.Join(cfg.DataDir, "raft", "raft.db")
	var sizes []int64
	vault := 0
	for run := range restarts {
		waitLeader(t, tn)
		waitFor(t, 10*time.Second, "the node to catch up", tn.node.Ready)
		for range writesPerRun {
			vault++
			applyVault(t, tn, vault)
		}
		waitFor(t, 5*time.Second, fmt.Sprintf("at most %d log entries in run %d", bound, run), func() bool {
			return logEntries(t, tn) <= bound
		})
		if run < restarts-1 {
			tn = tn.restart(nil)
		}
		info, err := os.Stat(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, info.Size())
	}
	t.Logf("%d writes over %d runs; raft.db size after each run: %v bytes", vault, restarts, sizes)
	if last, early := sizes[len(sizes)-1], sizes[4]; last > 2*early {
		t.Errorf("raft.db grew from %d bytes after run 5 to %d after run %d", early, last, restarts)
	}
}

// logEntries returns the number of entries in tn's Raft log.
func logEntries(t *testing.T, tn *testNode) uint64 {
	t.Helper()
	first, err := tn.node.stores.bolt.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := tn.node.stores.bolt.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if last == 0 {
		return 0
	}
	return last - first + 1
}

func TestDiskMonitor_ReserveFileReleasedWhenFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	m := newDiskMonitor(cfg, testLogger())
	path := filepath.Join(cfg.DataDir, reserveFileName)

	m.maintainReserveFile()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("reserve file not allocated: %v", err)
	}
	if info.Size() != cfg.DiskReserveBytes/2 {
		t.Errorf("reserve file is %d bytes, want %d", info.Size(), cfg.DiskReserveBytes/2)
	}
	if err := m.checkSpace(); err != nil {
		t.Fatalf("check with free space: %v", err)
	}

	// A reserve far above the free space looks like a full volume.
	m.reserve.Store(1 << 62)
	m.maintainReserveFile()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reserve file still there on a full volume: %v", err)
	}
	if err := m.checkSpace(); !errors.Is(err, ErrDiskFull) {
		t.Errorf("check on a full volume = %v, want ErrDiskFull", err)
	}

	m.reserve.Store(uint64(cfg.DiskReserveBytes))
	m.maintainReserveFile()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("reserve file not allocated again once space is back: %v", err)
	}
	if m.owed.Load() {
		t.Error("the deleted reserve file still counts as owed after it was allocated again")
	}
}
