package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/raft"
)

// Member describes one node as recorded locally in the Raft configuration,
// in gossip, or in both.
type Member struct {
	ID         string
	RaftAddr   string // from the Raft configuration, else from gossip
	GossipAddr string // empty when gossip does not report the node alive
	HTTPURL    string // from gossip metadata
	GeoBuild   string // from gossip metadata: the node's IP-to-country database build
	// Voter is true for a voting member of the Raft configuration.
	Voter bool
	// InRaft is false for a node that gossip reports but that the leader
	// has not added to the Raft configuration yet.
	InRaft bool
	// Alive is true when gossip reports the node alive (or suspect).
	Alive  bool
	Leader bool
}

// Members returns every node in the Raft configuration or alive in gossip,
// sorted by id.
func (n *Node) Members() []Member {
	if n.raft == nil || n.gossip == nil {
		return nil
	}
	byID := make(map[string]*Member)
	get := func(id string) *Member {
		m, ok := byID[id]
		if !ok {
			m = &Member{ID: id}
			byID[id] = m
		}
		return m
	}
	if future := n.raft.GetConfiguration(); future.Error() == nil {
		for _, s := range future.Configuration().Servers {
			m := get(string(s.ID))
			m.RaftAddr = string(s.Address)
			m.Voter = s.Suffrage == raft.Voter
			m.InRaft = true
		}
	}
	for _, g := range n.gossip.alive() {
		m := get(g.ID)
		m.Alive = true
		m.GossipAddr = g.GossipAddr
		m.HTTPURL = g.Meta.HTTPURL
		m.GeoBuild = g.Meta.GeoBuild
		if m.RaftAddr == "" {
			m.RaftAddr = g.Meta.RaftAddr
		}
	}
	if leader := n.LeaderID(); leader != "" {
		get(leader).Leader = true
	}
	out := make([]Member, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// RemoveServer removes the node id from the Raft configuration, for a node
// that is gone for good. It runs on the leader, forwarded there from any
// node. It fails with ErrMemberAlive while gossip reports the node alive
// (stop it first, or the leader would add it back) and with
// ErrUnknownMember when id is not in the configuration.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: remove: empty node id", ErrUnknownMember)
	}
	return n.onLeader(ctx, kindRemoveServer, []byte(id), func(ctx context.Context) error {
		return n.removeServerLocal(ctx, id)
	})
}

func (n *Node) removeServerLocal(ctx context.Context, id string) error {
	future := n.raft.GetConfiguration()
	if err := waitFuture(ctx, future); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	found := slices.ContainsFunc(future.Configuration().Servers, func(s raft.Server) bool {
		return string(s.ID) == id
	})
	if !found {
		return fmt.Errorf("%w: %q is not in the raft configuration", ErrUnknownMember, id)
	}
	for _, g := range n.gossip.alive() {
		if g.ID == id {
			return fmt.Errorf("%w: %q at %s; stop the node before removing it", ErrMemberAlive, id, g.GossipAddr)
		}
	}
	if err := waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, timeLeft(ctx))); err != nil {
		return raftOpError("remove "+id, err)
	}
	n.logger.Info("membership changed", "op", opRemove.String(), keyPeerID, id, "reason", "operator request")
	return nil
}

// TransferLeadership makes the leader hand leadership to the most
// up-to-date voter. It is forwarded to the leader from any node.
func (n *Node) TransferLeadership(ctx context.Context) error {
	return n.onLeader(ctx, kindTransfer, nil, n.transferLocal)
}

func (n *Node) transferLocal(ctx context.Context) error {
	if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
		return raftOpError("transfer leadership", err)
	}
	return nil
}

// raftOpError maps ErrNotLeader to a retry, so onLeader tries the new leader.
func raftOpError(op string, err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return &retryError{reason: op + ": " + err.Error()}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// onLeader runs local on this node when it leads, else sends kind to the
// leader; like Apply, it waits for a leader and retries once.
func (n *Node) onLeader(ctx context.Context, kind byte, payload []byte, local func(context.Context) error) error {
	if !n.beginOp() {
		return ErrClosed
	}
	defer n.ops.Done()
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()

	err := n.leaderAttempt(ctx, kind, payload, local)
	var retry *retryError
	if !errors.As(err, &retry) {
		return err
	}
	if err := n.waitForLeader(ctx, retry.rejectedBy); err != nil {
		return err
	}
	err = n.leaderAttempt(ctx, kind, payload, local)
	if errors.As(err, &retry) {
		return fmt.Errorf("%w: %s", ErrNoLeader, retry.reason)
	}
	return err
}

func (n *Node) leaderAttempt(ctx context.Context, kind byte, payload []byte, local func(context.Context) error) error {
	if n.raft.State() == raft.Leader {
		return local(ctx)
	}
	target, leaderID, err := n.leaderTarget()
	if err != nil {
		return err
	}
	req := &request{kind: kind, hops: 1, timeout: timeLeft(ctx), origin: n.cfg.NodeID, payload: payload}
	n.forwardsSent.Add(1)
	res, err := n.forwarder.roundTrip(ctx, string(target), req)
	if err != nil {
		return forwardError(ctx, leaderID, err)
	}
	return errorFromStatus(res, leaderID)
}

// GeoBuildMismatch reports the distinct IP-to-country database builds of
// the alive members when they are not all the same, sorted, and nil when
// they agree. Nodes on different builds can place one address in different
// countries, so a country guardrail would decide differently per node.
func (n *Node) GeoBuildMismatch() []string {
	seen := map[string]bool{}
	for _, m := range n.Members() {
		if m.Alive {
			seen[m.GeoBuild] = true
		}
	}
	if len(seen) < 2 {
		return nil
	}
	builds := make([]string, 0, len(seen))
	for b := range seen {
		builds = append(builds, b)
	}
	sort.Strings(builds)
	return builds
}
