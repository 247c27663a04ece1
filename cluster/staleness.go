package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// catchUpPoll is how often a node that is catching up re-reads its applied
// index and requests the leader's log index.
const catchUpPoll = 20 * time.Millisecond

// readiness holds the conditions besides staleness under which a node may
// serve machine requests. All fields are read on every machine request,
// so they are atomics.
type readiness struct {
	// caughtUp is set once the state machine has applied every entry
	// that the leader held when the node asked, after Start.
	caughtUp atomic.Bool
	// noncesSynced is set once the node has pulled the recent nonces
	// from a peer, or has no peer to pull them from.
	noncesSynced atomic.Bool
	// fence is a log index that this node failed to confirm to a peer in
	// time. The peer counted this node as stale, so it must not serve
	// machine requests until it has applied the entry. Zero means none.
	fence atomic.Uint64
}

// Ready reports whether this node may serve machine requests, apart from
// staleness, which callers check with Staleness. It is false from Start
// until the state machine has applied every entry that the leader held at
// the time (so a restarted node never serves the state it had before it
// went down) and the node has pulled the recent nonces from a peer. It is
// false again while an entry that this node failed to confirm in time is
// not applied. It is cheap enough for every request.
func (n *Node) Ready() bool {
	if !n.ready.caughtUp.Load() || !n.ready.noncesSynced.Load() {
		return false
	}
	fence := n.ready.fence.Load()
	return fence == 0 || n.sm.AppliedIndex() >= fence
}

// raiseFence makes Ready false until the state machine has applied index.
func (n *Node) raiseFence(index uint64) {
	for {
		current := n.ready.fence.Load()
		if current >= index || n.ready.fence.CompareAndSwap(current, index) {
			return
		}
	}
}

// catchUpOnStart sets caughtUp once the state machine holds every entry
// that the leader held when this node asked. The target is read once per
// leader: under a steady write load the leader's index keeps moving, and a
// follower that chased it would stay a few entries behind and never count
// as caught up. A new leader may hold entries the old one had not sent, so
// the target is read again when the leader changes.
func (n *Node) catchUpOnStart(ctx context.Context) {
	ticker := time.NewTicker(catchUpPoll)
	defer ticker.Stop()
	var target uint64
	var targetLeader raft.ServerID
	for {
		_, leader := n.raft.LeaderWithID()
		if target == 0 || leader != targetLeader {
			if index, ok := n.leaderLogIndex(ctx); ok {
				target, targetLeader = index, leader
			}
		}
		if target != 0 && n.appliedThrough(target) {
			n.ready.caughtUp.Store(true)
			n.logger.Info("caught up with the leader", keyIndex, target)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// CatchUp waits until this node's state machine has applied every entry
// that the leader held when CatchUp was called, so that a read that follows
// reflects every write acknowledged before the call. It fails with
// ErrNoLeader when no leader replies, or with the context's error.
func (n *Node) CatchUp(ctx context.Context) error {
	if n.raft == nil {
		return ErrClosed
	}
	target, ok := n.leaderLogIndex(ctx)
	if !ok {
		return ErrNoLeader
	}
	ticker := time.NewTicker(catchUpPoll)
	defer ticker.Stop()
	for !n.appliedThrough(target) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return nil
}

// leaderLogIndex returns the last log index of the leader: its own when
// this node leads, else the one the leader reports over the forwarding
// channel. Every entry committed so far is at or below it.
func (n *Node) leaderLogIndex(ctx context.Context) (uint64, bool) {
	if n.raft.State() == raft.Leader {
		return n.raft.LastIndex(), true
	}
	// Raft's own view of the leader, not leaderLookup, which tests replace
	// while the node runs.
	target, id := n.raft.LeaderWithID()
	if target == "" || target == n.advertise || string(id) == n.cfg.NodeID {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	req := &request{kind: kindCommitIndex, hops: 1, timeout: timeLeft(ctx), origin: n.cfg.NodeID}
	res, err := n.forwarder.roundTrip(ctx, string(target), req)
	if err != nil || res.status != statusOK {
		return 0, false
	}
	return res.index, true
}

// appliedThrough reports whether the state machine holds the effects of
// every log entry up to index. Raft hands only commands and configuration
// changes to the state machine. No-op and barrier entries never reach it,
// so the state machine's own index may stay below index for good. Once
// Raft has handed over every entry up to index, the entries above the
// state machine's index are either still in its queue or of a kind that it
// never sees, which the log tells apart.
func (n *Node) appliedThrough(index uint64) bool {
	applied := n.sm.AppliedIndex()
	if applied >= index {
		return true
	}
	if n.raft.AppliedIndex() < index {
		return false
	}
	return applied >= n.lastStateEntry(index, applied)
}

// maxStateEntryScan bounds the log entries lastStateEntry reads. Raft has
// handed every scanned entry to the state machine already, so the range is
// the state machine's queue plus trailing no-ops, a few entries in practice.
const maxStateEntryScan = 1 << 16

// lastStateEntry returns the highest index in (floor, index] of an entry
// that the state machine applies, or floor when there is none. An entry
// missing from the log (compacted, or in the gap that a restored snapshot
// leaves) is skipped: a snapshot that covers it has already been applied.
func (n *Node) lastStateEntry(index, floor uint64) uint64 {
	var entry raft.Log
	if index-floor > maxStateEntryScan {
		floor = index - maxStateEntryScan
	}
	for i := index; i > floor; i-- {
		if err := n.stores.bolt.GetLog(i, &entry); err != nil {
			continue
		}
		if entry.Type == raft.LogCommand || entry.Type == raft.LogConfiguration {
			return i
		}
	}
	return floor
}

// stalePoll is how often watchStaleness compares the time since the last
// leader contact with MaxStaleness. It is well below any sensible bound,
// so no stale period goes unnoticed.
const stalePoll = 50 * time.Millisecond

// watchStaleness clears caughtUp whenever this node counts as stale and
// then catches up again as after a start. Raft sends heartbeats apart from
// log entries, so when a partition heals the first heartbeat resets the
// staleness before the entries committed meanwhile arrive. Without this
// gate the node would briefly serve a machine that the majority revoked
// while it was cut off.
func (n *Node) watchStaleness(ctx context.Context) {
	if n.cfg.MaxStaleness <= 0 {
		return
	}
	ticker := time.NewTicker(stalePoll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if n.raft == nil || n.raft.State() == raft.Leader || n.Staleness() <= n.cfg.MaxStaleness {
			continue
		}
		if n.ready.caughtUp.CompareAndSwap(true, false) {
			n.logger.Warn("lost contact with the leader; machine requests wait until this node catches up",
				"staleness", n.Staleness().Round(time.Millisecond))
		}
		n.catchUpOnStart(ctx)
	}
}
