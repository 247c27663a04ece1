package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// snapshotCheckPoll is how often snapshotIfLogLong looks whether the node
// has caught up after start.
const snapshotCheckPoll = 100 * time.Millisecond

// snapshotIfLogLong takes a snapshot once the node has caught up after
// Start, when the log holds SnapshotThreshold or more entries past the
// newest snapshot. Raft itself checks that only every SnapshotInterval to
// twice that (2 to 4 min by default), and the timer starts again with
// each run. A node restarted more often than that would never snapshot,
// so its log would never be compacted and raft.db would grow for as long
// as the cluster lives, however few writes each run makes. The snapshot
// compacts the log down to TrailingLogs entries, which bounds raft.db
// whatever the restart rate.
func (n *Node) snapshotIfLogLong(ctx context.Context) {
	if !n.waitCaughtUp(ctx) {
		return
	}
	newest := uint64(0)
	if list, err := n.stores.snaps.List(); err == nil && len(list) > 0 {
		newest = list[0].Index
	}
	last := n.raft.LastIndex()
	if last < newest || last-newest < n.cfg.SnapshotThreshold {
		return
	}
	// After a start Raft hands the log to the state machine again (which
	// skips what it holds). Until it has, its applied index is still the
	// snapshot's and a snapshot would find nothing new.
	if !n.waitRaftApplied(ctx, last) {
		return
	}
	n.logger.Info("log since the newest snapshot reached snapshot-threshold at start; taking a snapshot",
		"entries", last-newest, "threshold", n.cfg.SnapshotThreshold)
	// Raft refuses to snapshot while a configuration entry (the leader's
	// reconcile writes one when a node's address changed) is not applied
	// yet, without a sentinel error to tell that apart, so a failure is
	// retried a few times.
	var err error
	for attempt := range snapshotAttempts {
		if attempt > 0 && !sleepCtx(ctx, snapshotRetryPause) {
			return
		}
		err = waitFuture(ctx, n.raft.Snapshot())
		switch {
		case err == nil:
			n.logger.Info("snapshot taken and log compacted", keyIndex, n.raft.AppliedIndex())
			return
		case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, context.Canceled), errors.Is(err, raft.ErrRaftShutdown):
			return
		}
	}
	n.logger.Warn("snapshot at start failed; raft retries on its own schedule", keyErr, err)
}

// Retries of the snapshot at start.
const (
	snapshotAttempts   = 5
	snapshotRetryPause = time.Second
)

// sleepCtx pauses for d and reports false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// waitCaughtUp waits until the node has caught up after start, and reports
// false when ctx ends first.
func (n *Node) waitCaughtUp(ctx context.Context) bool {
	ticker := time.NewTicker(snapshotCheckPoll)
	defer ticker.Stop()
	for !n.ready.caughtUp.Load() {
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
	return true
}

// snapshotApplyWait bounds how long snapshotIfLogLong waits for Raft to
// apply the log it found at start. An entry that never commits (a follower
// whose uncommitted tail the new leader replaces) would hold it for ever;
// Raft's own periodic check takes over then.
const snapshotApplyWait = time.Minute

// waitRaftApplied waits until Raft has applied index, for at most
// snapshotApplyWait, and reports whether it has.
func (n *Node) waitRaftApplied(ctx context.Context, index uint64) bool {
	ticker := time.NewTicker(snapshotCheckPoll)
	defer ticker.Stop()
	deadline := time.Now().Add(snapshotApplyWait)
	for n.raft.AppliedIndex() < index {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
	return true
}
