package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/fsm"
)

// handleForward serves one request from another node's forwarding client.
// Writes, membership changes and the commit-index query are served only by
// the leader, which never forwards again. A node that is not the leader
// returns statusNotLeader and the origin decides whether to retry, which
// bounds every write to one hop. Peer requests (confirmation, nonces) are
// served by every node.
func (n *Node) handleForward(req *request) *response {
	if req.hops == 0 || req.hops > maxHops {
		return failure(statusBadRequest, "hop count %d from %s; a forwarded request carries exactly %d",
			req.hops, req.origin, maxHops)
	}
	if !n.beginOp() {
		return failure(statusNotLeader, "node %s is closing", n.cfg.NodeID)
	}
	defer n.ops.Done()
	if res, ok := n.handlePeerRequest(req); ok {
		return res
	}
	if req.kind != kindCommitIndex {
		n.forwardsServed.Add(1)
	}
	if n.raft.State() != raft.Leader {
		_, leader := n.raft.LeaderWithID()
		return failure(statusNotLeader, "node %s is not the leader (it last heard of %q)", n.cfg.NodeID, leader)
	}
	timeout := req.timeout
	if timeout <= 0 || timeout > n.cfg.ApplyTimeout {
		timeout = n.cfg.ApplyTimeout
	}
	ctx, cancel := context.WithTimeout(n.bgCtx, timeout)
	defer cancel()

	switch req.kind {
	case kindApply:
		return n.serveApply(ctx, req)
	case kindRemoveServer:
		return responseFromError(n.removeServerLocal(ctx, string(req.payload)))
	case kindTransfer:
		return responseFromError(n.transferLocal(ctx))
	case kindCommitIndex:
		return &response{status: statusOK, index: n.raft.LastIndex()}
	default:
		return failure(statusBadRequest, "unknown request kind %d", req.kind)
	}
}

func (n *Node) serveApply(ctx context.Context, req *request) *response {
	// Decoding here keeps garbage out of the replicated log.
	if _, err := fsm.DecodeCommand(req.payload); err != nil {
		return failure(statusBadRequest, "command from %s does not decode: %v", req.origin, err)
	}
	resp, index, err := n.applyLocal(ctx, req.payload)
	if err != nil {
		return responseFromError(err)
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return failure(statusFailed, "encode response: %v", err)
	}
	return &response{status: statusOK, index: index, payload: body}
}

func failure(status byte, format string, args ...any) *response {
	return &response{status: status, payload: []byte(fmt.Sprintf(format, args...))}
}

// responseFromError turns a local result into the wire status that
// errorFromStatus turns back into the same kind of error on the origin.
func responseFromError(err error) *response {
	if err == nil {
		return &response{status: statusOK}
	}
	var retry *retryError
	switch {
	case errors.As(err, &retry), errors.Is(err, ErrNoLeader):
		return failure(statusNotLeader, "%v", err)
	case errors.Is(err, ErrIndeterminate):
		return failure(statusIndeterminate, "%v", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return failure(statusTimeout, "%v", err)
	case errors.Is(err, ErrUnknownMember):
		return failure(statusUnknownMember, "%v", err)
	case errors.Is(err, ErrMemberAlive):
		return failure(statusMemberAlive, "%v", err)
	case errors.Is(err, ErrDiskFull):
		return failure(statusDiskFull, "%v", err)
	default:
		return failure(statusFailed, "%v", err)
	}
}

// errorFromStatus maps a non-OK reply from leaderID to an error.
func errorFromStatus(res *response, leaderID string) error {
	msg := string(res.payload)
	switch res.status {
	case statusOK:
		return nil
	case statusNotLeader:
		return &retryError{reason: fmt.Sprintf("%s rejected the request: %s", leaderID, msg), rejectedBy: leaderID}
	case statusIndeterminate:
		return fmt.Errorf("%w: on leader %s: %s", ErrIndeterminate, leaderID, msg)
	case statusTimeout:
		return fmt.Errorf("leader %s: %s: %w", leaderID, msg, context.DeadlineExceeded)
	case statusBadRequest:
		return fmt.Errorf("%w: leader %s rejected the request: %s", ErrProtocol, leaderID, msg)
	case statusUnknownMember:
		return fmt.Errorf("%w: %s", ErrUnknownMember, msg)
	case statusMemberAlive:
		return fmt.Errorf("%w: %s", ErrMemberAlive, msg)
	case statusDiskFull:
		return fmt.Errorf("%w: %s", ErrDiskFull, strings.TrimPrefix(msg, ErrDiskFull.Error()+": "))
	default:
		return fmt.Errorf("cluster: leader %s failed the request: %s", leaderID, msg)
	}
}
