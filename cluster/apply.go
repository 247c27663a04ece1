package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/fsm"
)

// leaderPoll is how often Apply re-reads the leader while it waits for one.
const leaderPoll = 20 * time.Millisecond

// retryError marks a failure after which nothing was proposed and another
// attempt may reach a leader: no leader known, the leader refused as not
// leader, or the leader could not be reached.
type retryError struct {
	reason string
	// rejectedBy is the id of the node that returned "not leader", if any.
	rejectedBy string
}

func (e *retryError) Error() string { return e.reason }

// Apply encodes cmd, proposes it through Raft on the leader and returns the
// state machine's response. On a follower it forwards the command to the
// leader once (the leader never forwards again, and no node forwards to
// itself). When no leader takes it, Apply polls for a leader for up to
// LeaderWait and tries once more.
//
// Errors:
//   - ErrNoLeader: nothing was proposed and no leader took the command.
//   - ErrIndeterminate: the command reached a leader but its outcome is
//     unknown. The error also matches the context's error when the deadline
//     caused it.
//   - a context error: the deadline passed before anything was proposed.
//   - ErrClosed: the node is closed or not started.
//
// A response whose Code is set is a command that the state machine
// rejected, which is not an error here.
func (n *Node) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error) {
	resp, _, err := n.apply(ctx, cmd)
	return resp, err
}

// appliedWaiter is a state machine that wakes waiters when its applied
// index moves (*fsm.FSM does).
type appliedWaiter interface {
	WaitApplied(ctx context.Context, index uint64) bool
}

// waitApplied waits until this node's state machine has applied index, so
// that a client which wrote through this node reads its own write here
// next. A forwarded command returns once the leader applied it, which may
// be before this follower did. The write is committed either way, so when
// ctx ends first Apply still returns its response.
func (n *Node) waitApplied(ctx context.Context, index uint64) {
	if index == 0 || n.sm.AppliedIndex() >= index {
		return
	}
	// A node that rejects log entries for lack of space will not apply the
	// write until space is freed.
	if n.disk.rejecting() {
		return
	}
	if w, ok := n.sm.(appliedWaiter); ok {
		if !w.WaitApplied(ctx, index) {
			n.logger.Debug("local apply lags the leader", "index", index, "applied", n.sm.AppliedIndex())
		}
		return
	}
	// Other state machines are polled.
	ticker := time.NewTicker(2 * time.Millisecond)
	defer ticker.Stop()
	for n.sm.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			n.logger.Debug("local apply lags the leader", "index", index, "applied", n.sm.AppliedIndex())
			return
		case <-ticker.C:
		}
	}
}

// applyBytes is Apply for an encoded command; it also returns the log
// index of the entry.
func (n *Node) applyBytes(ctx context.Context, data []byte) (*fsm.Response, uint64, error) {
	if !n.beginOp() {
		return nil, 0, ErrClosed
	}
	defer n.ops.Done()
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()

	resp, index, err := n.applyAttempt(ctx, data)
	var retry *retryError
	if !errors.As(err, &retry) {
		return resp, index, err
	}
	n.logger.Debug("apply found no leader, waiting", "reason", retry.reason)
	if err := n.waitForLeader(ctx, retry.rejectedBy); err != nil {
		return nil, 0, err
	}
	resp, index, err = n.applyAttempt(ctx, data)
	if errors.As(err, &retry) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNoLeader, retry.reason)
	}
	return resp, index, err
}

func (n *Node) withApplyTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.ApplyTimeout)
}

// applyAttempt applies locally on the leader or forwards once.
func (n *Node) applyAttempt(ctx context.Context, data []byte) (*fsm.Response, uint64, error) {
	if n.raft.State() == raft.Leader {
		return n.applyLocal(ctx, data)
	}
	target, leaderID, err := n.leaderTarget()
	if err != nil {
		return nil, 0, err
	}
	req := &request{
		kind:    kindApply,
		hops:    1,
		timeout: timeLeft(ctx),
		origin:  n.cfg.NodeID,
		payload: data,
	}
	n.forwardsSent.Add(1)
	res, err := n.forwarder.roundTrip(ctx, string(target), req)
	if err != nil {
		return nil, 0, forwardError(ctx, leaderID, err)
	}
	if res.status != statusOK {
		return nil, 0, errorFromStatus(res, leaderID)
	}
	resp, err := decodeResponsePayload(res.payload)
	return resp, res.index, err
}

// leaderTarget returns the leader's Raft address, which also serves the
// forwarding channel. Raft may name this node's own address as the leader's
// while this node is not the leader, after a stale view or when two nodes
// advertise one address. Forwarding there would loop, so it fails with
// ErrNoLeader.
func (n *Node) leaderTarget() (raft.ServerAddress, string, error) {
	leaderAddr, leaderID := n.leaderLookup()
	if leaderAddr == "" {
		return "", "", &retryError{reason: "no leader known"}
	}
	if leaderAddr == n.advertise || string(leaderID) == n.cfg.NodeID {
		return "", "", fmt.Errorf("%w: raft names this node (%s at %s) as leader but it is not the leader;"+
			" check that every node advertises a distinct raft-advertise-addr", ErrNoLeader, leaderID, leaderAddr)
	}
	return leaderAddr, string(leaderID), nil
}

// waitForLeader polls until a usable leader other than rejectedBy is known,
// or LeaderWait passes. After LeaderWait it accepts any usable leader, even
// the one that rejected the request, for the single retry. It fails with ErrNoLeader
// when no usable leader is known, or with the context's error.
func (n *Node) waitForLeader(ctx context.Context, rejectedBy string) error {
	deadline := time.Now().Add(n.cfg.LeaderWait)
	ticker := time.NewTicker(leaderPoll)
	defer ticker.Stop()
	for {
		if n.raft.State() == raft.Leader {
			return nil
		}
		_, id, err := n.leaderTarget()
		usable := err == nil
		if usable && id != rejectedBy {
			return nil
		}
		if !time.Now().Before(deadline) {
			if usable {
				return nil
			}
			return fmt.Errorf("%w: none elected within %s", ErrNoLeader, n.cfg.LeaderWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for leader: %w", ctx.Err())
		case <-ticker.C:
		}
	}
}

// applyLocal proposes data on this node, which believes it is the leader,
// and waits for the state machine's response.
func (n *Node) applyLocal(ctx context.Context, data []byte) (*fsm.Response, uint64, error) {
	// A leader whose volume is below the reserve would step down on the
	// failed append, so it rejects the write first with a definite error.
	if err := n.disk.checkSpace(); err != nil {
		return nil, 0, err
	}
	f := n.raft.Apply(data, timeLeft(ctx))
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return nil, 0, classifyApplyError(err, f.Index())
		}
		resp, err := responseFromFSM(f.Response())
		return resp, f.Index(), err
	case <-ctx.Done():
		// The entry was handed to Raft and may still commit.
		return nil, 0, fmt.Errorf("%w: %w", ErrIndeterminate, ctx.Err())
	}
}

// classifyApplyError maps an error from a Raft apply future to this
// package's errors. index is the future's log index, which Raft assigns when
// it appends the entry to the leader's log, so index 0 proves that the entry
// never reached any log and the write definitely did not happen.
//
//   - index 0 with ErrNotLeader, ErrLeadershipTransferInProgress or
//     ErrRaftShutdown: not proposed; another leader may take it (retry).
//   - ErrEnqueueTimeout: not proposed before the deadline; the context's
//     deadline error.
//   - ErrAbortedByRestore: dropped by a snapshot restore, definitely not
//     applied; retry.
//   - ErrDiskFull or ENOSPC: the leader's log store rejected the entries, so
//     Raft never stored or sent them and steps down; definitely not
//     applied: ErrDiskFull.
//   - any other error after the entry was appended (ErrLeadershipLost,
//     ErrRaftShutdown): the entry may commit under the next leader or be
//     discarded, so the outcome is unknown: ErrIndeterminate.
func classifyApplyError(err error, index uint64) error {
	switch {
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("apply not started before the deadline: %w", context.DeadlineExceeded)
	case errors.Is(err, raft.ErrAbortedByRestore):
		return &retryError{reason: "write dropped by a snapshot restore"}
	case errors.Is(err, ErrDiskFull):
		return err
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: entry %d not stored in the leader's raft.db: %v", ErrDiskFull, index, err)
	case index == 0:
		return &retryError{reason: "not proposed: " + err.Error()}
	default:
		return fmt.Errorf("%w: entry %d: %v", ErrIndeterminate, index, err)
	}
}

// forwardError maps a failed round trip to the leader.
func forwardError(ctx context.Context, leaderID string, err error) error {
	var notSent *errNotSent
	if !errors.As(err, &notSent) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("forward to leader %s: %w", leaderID, ctxErr)
	}
	return &retryError{reason: fmt.Sprintf("leader %s unreachable: %v", leaderID, notSent.err), rejectedBy: leaderID}
}

func responseFromFSM(v any) (*fsm.Response, error) {
	switch r := v.(type) {
	case *fsm.Response:
		if r == nil {
			return nil, fmt.Errorf("%w: state machine returned a nil response", ErrProtocol)
		}
		return r, nil
	case error:
		return nil, fmt.Errorf("state machine: %w", r)
	default:
		return nil, fmt.Errorf("%w: state machine returned %T, want *fsm.Response", ErrProtocol, v)
	}
}

func decodeResponsePayload(b []byte) (*fsm.Response, error) {
	var r fsm.Response
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: decode forwarded response: %v", ErrProtocol, err)
	}
	return &r, nil
}

func timeLeft(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return max(time.Until(deadline), time.Millisecond)
}
