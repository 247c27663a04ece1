package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/fsm"
)

// restoreIndexGap is how far above the leader's last log index an
// operator's snapshot is installed. Raft installs it at the larger of the
// given index and its own last index, plus one. The gap makes the given
// index the larger even when writes append entries while the restore waits
// for the Raft loop. The state machine must report exactly that index as
// applied, so ReindexSnapshot writes it into the stream beforehand. Log
// indexes are 64-bit, so the gap costs nothing.
const restoreIndexGap = 1 << 20

// RestoreSnapshot replaces the whole replicated state with a snapshot
// stream that the state machine wrote (an operator's backup). It runs only
// on the leader and fails with ErrNotLeader elsewhere. The stream is first
// restored into a scratch state machine under DataDir, because Raft stops
// the process when its state machine rejects a restore. A stream that fails
// that check returns an error wrapping fsm.ErrSnapshotCorrupt and changes
// nothing. Raft then installs it on the leader and sends it to every
// follower. It returns once a quorum holds the new state.
func (n *Node) RestoreSnapshot(ctx context.Context, stream []byte) error {
	if !n.beginOp() {
		return ErrClosed
	}
	defer n.ops.Done()
	if n.raft.State() != raft.Leader {
		return fmt.Errorf("%w: restore on the leader %q", ErrNotLeader, n.LeaderID())
	}
	if err := n.checkSnapshot(stream); err != nil {
		return err
	}

	term := n.raft.CurrentTerm()
	base := n.raft.LastIndex() + restoreIndexGap
	data, err := fsm.ReindexSnapshot(stream, base+1, term)
	if err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: base, Term: term, Size: int64(len(data))}
	if err := n.raft.Restore(meta, bytes.NewReader(data), timeLeft(ctx)); err != nil {
		return fmt.Errorf("restore snapshot through raft: %w", err)
	}
	if got := n.sm.AppliedIndex(); got < base+1 {
		// NOTE: only a restore that raced more than restoreIndexGap new
		// entries ends here. The state is restored, but the state machine
		// reports a lower index than Raft until its next entry.
		n.logger.Error("restored snapshot at an unexpected index", "want", base+1, "applied", got)
	}
	n.logger.Info("restored operator snapshot", keyIndex, base+1, "bytes", len(stream))
	return nil
}

// checkSnapshot restores stream into a scratch state machine in a
// temporary folder under DataDir, which it removes afterwards, and checks
// that its project keys open with this cluster's root key.
func (n *Node) checkSnapshot(stream []byte) error {
	dir, err := os.MkdirTemp(n.cfg.DataDir, "restore-check-")
	if err != nil {
		return fmt.Errorf("create scratch folder for the restore check: %w", err)
	}
	defer os.RemoveAll(dir)
	scratch, err := fsm.Open(fsm.Config{Dir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("open scratch state machine: %w", err)
	}
	defer scratch.Close()
	if err := scratch.Restore(io.NopCloser(bytes.NewReader(stream))); err != nil {
		return fmt.Errorf("check snapshot: %w", err)
	}
	// A snapshot sealed under another root key is well formed but would
	// leave every secret unreadable.
	if keys, ok := n.sm.(interface{ CheckKeysOf(*fsm.FSM) error }); ok {
		if err := keys.CheckKeysOf(scratch); err != nil {
			return fmt.Errorf("check snapshot: %w", err)
		}
	}
	return nil
}

// LeaderHTTPURL returns the API URL of the leader from its gossip
// metadata, or "" when no leader is known or it advertised none.
func (n *Node) LeaderHTTPURL() string {
	leader := n.LeaderID()
	if leader == "" || n.gossip == nil {
		return ""
	}
	for _, m := range n.gossip.alive() {
		if m.ID == leader {
			return m.Meta.HTTPURL
		}
	}
	return ""
}
