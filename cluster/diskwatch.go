package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// DiskHealth returns how the data volume behaves: free space and whether
// writes to raft.db stall. It is cheap enough for a health endpoint.
func (n *Node) DiskHealth() DiskHealth { return n.disk.health() }

// watchDisk re-reads the free space of the data volume and keeps the
// reserve file, and logs when the disk starts or stops stalling or running
// low. It gates machine requests after this node rejected log entries, and
// hands leadership to another voter while this node leads with such a disk.
//
// hashicorp/raft sends heartbeats from their own goroutines, so a leader
// whose fsync takes seconds keeps its followers' election timers reset and
// stays leader while every write waits for its disk. Nothing else in the
// cluster would move leadership away from it.
func (n *Node) watchDisk(ctx context.Context) {
	ticker := time.NewTicker(diskPoll)
	defer ticker.Stop()
	var (
		lastTransfer time.Time
		seen         uint64
		prev         DiskHealth
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-n.disk.wake:
		}
		n.disk.refreshFree()
		n.disk.maintainReserveFile()
		h := n.disk.health()
		n.logDiskChange(prev, h)
		prev = h
		if rejections := n.disk.rejections.Load(); rejections != seen {
			seen = rejections
			n.gateAfterRejection(ctx)
		}
		if (h.Stalled || h.Low) && time.Since(lastTransfer) >= diskTransferPause && n.handLeadershipAway(h) {
			lastTransfer = time.Now()
		}
	}
}

func (n *Node) logDiskChange(prev, h DiskHealth) {
	switch {
	case h.Stalled && !prev.Stalled:
		n.logger.Warn("data disk stalls: a write to raft.db is taking longer than the disk stall threshold",
			"write_latency", h.WriteLatency.Round(time.Millisecond), "threshold", n.cfg.DiskStallThreshold)
	case !h.Stalled && prev.Stalled:
		n.logger.Info("data disk writes are fast again", "write_latency", h.WriteLatency.Round(time.Millisecond))
	}
	switch {
	case h.Low && !prev.Low:
		n.logger.Error("data volume is nearly full; this node rejects new log entries until space is freed",
			"data_dir", n.cfg.DataDir, "free", formatBytes(h.FreeBytes), "reserve", formatBytes(n.disk.reserve.Load()))
	case !h.Low && prev.Low:
		n.logger.Info("data volume has space again", "data_dir", n.cfg.DataDir, "free", formatBytes(h.FreeBytes))
	}
}

// gateAfterRejection makes the node not ready until it has caught up again.
// A follower that rejected entries still receives the leader's heartbeats,
// so its staleness stays low while its state falls behind. Without the
// gate it would keep serving what the cluster has since changed. The
// catch-up runs in its own goroutine, so the leadership check goes on.
func (n *Node) gateAfterRejection(ctx context.Context) {
	if !n.ready.caughtUp.CompareAndSwap(true, false) {
		return
	}
	n.logger.Warn("rejected log entries for lack of disk space; machine requests wait until this node catches up",
		"data_dir", n.cfg.DataDir)
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		n.catchUpOnStart(ctx)
	}()
}

// handLeadershipAway starts a leadership transfer when this node leads and
// another voter exists. It reports whether a transfer was started. Raft
// takes the request when its leader loop is between two log writes, so on
// a stalled disk the transfer begins once the write in progress returns.
func (n *Node) handLeadershipAway(h DiskHealth) bool {
	if n.raft.State() != raft.Leader || n.voterCount() < 2 {
		return false
	}
	reason := "data disk stalls"
	if h.Low {
		reason = "data volume is nearly full"
	}
	n.logger.Warn("handing leadership to another voter", "reason", reason,
		"write_latency", h.WriteLatency.Round(time.Millisecond), "free", formatBytes(h.FreeBytes))
	// Raft logs how the transfer ends. Its future is not awaited, because
	// one that Raft queued just before a shutdown is never resolved.
	_ = n.raft.LeadershipTransfer()
	return true
}
