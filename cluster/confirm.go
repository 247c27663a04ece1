package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/fsm"
)

// Confirmation reports which members of the Raft configuration applied a
// write before ApplyConfirmed returned.
type Confirmation struct {
	// Index is the log index of the write.
	Index uint64
	// Confirmed is the number of members whose state machine applied the
	// write, this node included.
	Confirmed int
	// Members is the number of members in the Raft configuration, plus
	// this node when it is not in it.
	Members int
	// Unconfirmed lists, sorted, the members that did not confirm within
	// the wait. Each either reported itself stale, did not reply, or has
	// raised a fence that keeps it from serving machine requests until it
	// applies the write.
	Unconfirmed []string
}

// Outcomes of a wait-applied request, the first payload byte of the reply.
const (
	outcomeApplied byte = 1 // the state machine applied the index
	outcomeStale   byte = 2 // the node is stale and rejects machine requests
	outcomeTimeout byte = 3 // the wait ended first; the node raised a fence
)

// confirmRetry is the pause before contacting an unreachable member again.
const confirmRetry = 100 * time.Millisecond

// ApplyConfirmed is Apply for security-critical writes: after the write is
// committed it waits, up to wait, until every member of the Raft
// configuration has applied it or counts as stale. A member counts as
// stale when it reports a staleness above wait (so it rejects machine
// requests), or when it does not confirm within wait. A member that
// received the request but did not apply the entry in time raises a fence
// and rejects machine requests until it has applied it (see Ready). A
// member that cannot be reached for wait after the commit has not heard
// from a leader since before the commit, so its staleness exceeds wait.
//
// Errors are those of Apply. A response whose Code is set was rejected by
// the state machine, changed nothing and is not confirmed.
func (n *Node) ApplyConfirmed(ctx context.Context, cmd *fsm.Command, wait time.Duration) (*fsm.Response, Confirmation, error) {
	resp, index, err := n.apply(ctx, cmd)
	if err != nil || resp.Code != "" {
		return resp, Confirmation{}, err
	}
	start := time.Now()
	conf := n.confirm(index, wait)
	n.metrics.confirmDuration.Observe(time.Since(start).Seconds())
	n.metrics.unconfirmed.Add(float64(len(conf.Unconfirmed)))
	if len(conf.Unconfirmed) > 0 {
		n.logger.Warn("write not confirmed by every member", keyIndex, index,
			"unconfirmed", conf.Unconfirmed, "wait", wait)
	}
	return resp, conf, nil
}

// memberResult is one member's reply to a confirmation.
type memberResult struct {
	id        string
	confirmed bool
}

// confirm requests from every member, in parallel, whether it applied
// index.
func (n *Node) confirm(index uint64, wait time.Duration) Confirmation {
	ctx, cancel := context.WithTimeout(n.bgCtx, wait)
	defer cancel()

	members := n.confirmMembers()
	results := make(chan memberResult, len(members))
	for _, m := range members {
		go func() {
			if m.ID == raft.ServerID(n.cfg.NodeID) {
				results <- memberResult{id: string(m.ID), confirmed: n.confirmLocal(ctx, index)}
				return
			}
			results <- memberResult{id: string(m.ID), confirmed: n.confirmMember(ctx, m, index, wait)}
		}()
	}

	conf := Confirmation{Index: index, Members: len(members)}
	for range members {
		r := <-results
		if r.confirmed {
			conf.Confirmed++
		} else {
			conf.Unconfirmed = append(conf.Unconfirmed, r.id)
		}
	}
	slices.Sort(conf.Unconfirmed)
	return conf
}

// confirmMembers returns the servers of the latest Raft configuration,
// with this node added when it is not one of them.
func (n *Node) confirmMembers() []raft.Server {
	var servers []raft.Server
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		servers = slices.Clone(f.Configuration().Servers)
	}
	self := raft.ServerID(n.cfg.NodeID)
	if !slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == self }) {
		servers = append(servers, raft.Server{ID: self, Address: n.advertise})
	}
	return servers
}

// confirmLocal waits for this node's own state machine; on timeout it
// raises the fence, like a member that failed to confirm.
func (n *Node) confirmLocal(ctx context.Context, index uint64) bool {
	if n.waitIndex(ctx, index) {
		return true
	}
	n.raiseFence(index)
	return false
}

// confirmMember sends the request to one member until it replies or ctx
// ends. An
// unreachable member is retried every confirmRetry, because it may be
// restarting.
func (n *Node) confirmMember(ctx context.Context, m raft.Server, index uint64, wait time.Duration) bool {
	addr := string(m.Address)
	if known, err := n.gossip.ServerAddr(m.ID); err == nil {
		addr = string(known)
	}
	payload := binary.BigEndian.AppendUint64(nil, index)
	payload = binary.BigEndian.AppendUint32(payload, uint32(min(wait.Milliseconds(), int64(^uint32(0)))))
	for {
		req := &request{kind: kindWaitApplied, hops: 1, timeout: timeLeft(ctx), origin: n.cfg.NodeID, payload: payload}
		res, err := n.forwarder.roundTrip(ctx, addr, req)
		if err == nil {
			return res.status == statusOK && len(res.payload) == 1 && res.payload[0] == outcomeApplied
		}
		n.logger.Debug("confirmation request failed", keyPeerID, string(m.ID), keyErr, err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(confirmRetry):
		}
	}
}

// serveWaitApplied answers a peer's confirmation request: it waits until
// the state machine applied the index, until this node's staleness exceeds
// the peer's bound, or until the request's timeout. Unless the entry was
// applied it raises the fence, because the peer will count this node as
// stale and this node must then not serve what the entry changed.
func (n *Node) serveWaitApplied(req *request) *response {
	if len(req.payload) != 12 {
		return failure(statusBadRequest, "wait-applied payload is %d bytes, want 12", len(req.payload))
	}
	index := binary.BigEndian.Uint64(req.payload[:8])
	bound := time.Duration(binary.BigEndian.Uint32(req.payload[8:])) * time.Millisecond
	timeout := req.timeout
	if timeout <= 0 || timeout > n.cfg.ApplyTimeout {
		timeout = n.cfg.ApplyTimeout
	}
	ctx, cancel := context.WithTimeout(n.bgCtx, timeout)
	defer cancel()

	outcome := outcomeApplied
	if !n.waitIndexOrStale(ctx, index, bound) {
		outcome = outcomeTimeout
		if n.Staleness() > bound {
			outcome = outcomeStale
		}
		n.raiseFence(index)
	}
	return &response{status: statusOK, index: n.sm.AppliedIndex(), payload: []byte{outcome}}
}

// waitIndex polls the state machine's applied index until it reaches index
// or ctx ends, and reports whether it did.
func (n *Node) waitIndex(ctx context.Context, index uint64) bool {
	return n.waitIndexOrStale(ctx, index, 0)
}

// waitIndexOrStale is waitIndex that also gives up as soon as this node's
// staleness exceeds bound, unless bound is zero. It returns early when the
// node begins to close.
func (n *Node) waitIndexOrStale(ctx context.Context, index uint64, bound time.Duration) bool {
	ticker := time.NewTicker(2 * time.Millisecond)
	defer ticker.Stop()
	for n.sm.AppliedIndex() < index {
		if bound > 0 && n.Staleness() > bound {
			return false
		}
		if n.closing() {
			return false
		}
		select {
		case <-ctx.Done():
			return n.sm.AppliedIndex() >= index
		case <-ticker.C:
		}
	}
	return true
}

// closing reports whether Close has begun.
func (n *Node) closing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state != stateRunning
}

// apply is Apply that also returns the log index of the entry.
func (n *Node) apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, uint64, error) {
	if cmd == nil {
		return nil, 0, errors.New("cluster: apply: command is nil")
	}
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return nil, 0, fmt.Errorf("encode %s command: %w", cmd.Type, err)
	}
	resp, index, err := n.applyBytes(ctx, data)
	if err != nil {
		return resp, 0, err
	}
	n.waitApplied(ctx, index)
	return resp, index, nil
}
