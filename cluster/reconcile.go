package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// changeOp is one kind of Raft configuration change.
type changeOp int

const (
	opAddVoter changeOp = iota + 1
	opAddNonvoter
	opRemove
)

func (o changeOp) String() string {
	switch o {
	case opAddVoter:
		return "add voter"
	case opAddNonvoter:
		return "add non-voter"
	case opRemove:
		return "remove"
	default:
		return "unknown"
	}
}

// membershipChange is one planned configuration change.
type membershipChange struct {
	op     changeOp
	id     raft.ServerID
	addr   raft.ServerAddress
	reason string
}

// planMembership compares the Raft configuration with the alive gossip
// members and returns the additions and address updates that bring them in
// line, and the ids of configured servers that gossip does not report alive.
// It is a pure function so the rules can be tested directly:
//
//   - an alive member missing from Raft joins as a voter while fewer than
//     voters exist and it is voter-capable, else as a non-voter;
//   - a member whose Raft address changed is re-added under the same id
//     with its suffrage kept, which updates the address in place;
//   - a voter-capable non-voter is promoted while fewer than voters exist.
//
// Members are visited in id order, so every leader plans the same changes.
func planMembership(servers []raft.Server, alive []gossipMember, voters int) ([]membershipChange, []raft.ServerID) {
	byID := make(map[raft.ServerID]raft.Server, len(servers))
	current := 0
	for _, s := range servers {
		byID[s.ID] = s
		if s.Suffrage == raft.Voter {
			current++
		}
	}
	sorted := slices.Clone(alive)
	slices.SortFunc(sorted, func(a, b gossipMember) int { return strings.Compare(a.ID, b.ID) })

	var changes []membershipChange
	seen := make(map[raft.ServerID]bool, len(sorted))
	for _, m := range sorted {
		id, addr := raft.ServerID(m.ID), raft.ServerAddress(m.Meta.RaftAddr)
		seen[id] = true
		s, inRaft := byID[id]
		canVote := m.Meta.VoterCapable && current < voters
		switch {
		case !inRaft && canVote:
			changes = append(changes, membershipChange{opAddVoter, id, addr, "new member"})
			current++
		case !inRaft:
			changes = append(changes, membershipChange{opAddNonvoter, id, addr, "new member"})
		case s.Suffrage != raft.Voter && canVote:
			changes = append(changes, membershipChange{opAddVoter, id, addr, "promote to voter"})
			current++
		case s.Address != addr && s.Suffrage == raft.Voter:
			changes = append(changes, membershipChange{opAddVoter, id, addr, "address changed from " + string(s.Address)})
		case s.Address != addr:
			changes = append(changes, membershipChange{opAddNonvoter, id, addr, "address changed from " + string(s.Address)})
		}
	}
	var missing []raft.ServerID
	for _, s := range servers {
		if !seen[s.ID] {
			missing = append(missing, s.ID)
		}
	}
	return changes, missing
}

// reconcileLoop runs on the leader: at once, on every gossip event and every
// ReconcileInterval.
func (n *Node) reconcileLoop(ctx context.Context) {
	ticker := time.NewTicker(n.cfg.ReconcileInterval)
	defer ticker.Stop()
	for {
		n.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-n.gossip.events:
		}
	}
}

func (n *Node) reconcile(ctx context.Context) {
	future := n.raft.GetConfiguration()
	if err := waitFuture(ctx, future); err != nil {
		n.logger.Debug("read raft configuration failed", keyErr, err)
		return
	}
	servers := future.Configuration().Servers
	changes, missing := planMembership(servers, n.gossip.alive(), n.cfg.Voters)
	changes = append(changes, n.removalsDue(missing, time.Now())...)
	for _, c := range changes {
		if ctx.Err() != nil {
			return
		}
		if err := n.applyChange(ctx, c); err != nil {
			n.logger.Warn("membership change failed", "op", c.op.String(), keyPeerID, string(c.id),
				keyAddr, string(c.addr), keyErr, err)
			continue
		}
		n.logger.Info("membership changed", "op", c.op.String(), keyPeerID, string(c.id),
			keyAddr, string(c.addr), "reason", c.reason)
	}
}

// removalsDue tracks since when each missing server has been absent from
// gossip, as seen by this leader (or earlier, when gossip reported the
// member leaving), and returns removals for those absent longer than
// DeadNodeTimeout. This node is never removed by this path.
func (n *Node) removalsDue(missing []raft.ServerID, now time.Time) []membershipChange {
	n.deadMu.Lock()
	defer n.deadMu.Unlock()
	isMissing := make(map[raft.ServerID]bool, len(missing))
	var due []membershipChange
	for _, id := range missing {
		isMissing[id] = true
		if string(id) == n.cfg.NodeID {
			continue
		}
		since, ok := n.deadSince[id]
		if !ok {
			since = now
			if left, ok := n.gossip.leftAt(string(id)); ok && left.Before(now) {
				since = left
			}
			n.deadSince[id] = since
		}
		if n.cfg.DeadNodeTimeout > 0 && now.Sub(since) >= n.cfg.DeadNodeTimeout {
			reason := fmt.Sprintf("absent from gossip since %s", since.UTC().Format(time.RFC3339))
			due = append(due, membershipChange{op: opRemove, id: id, reason: reason})
		}
	}
	for id := range n.deadSince {
		if !isMissing[id] {
			delete(n.deadSince, id)
		}
	}
	return due
}

func (n *Node) applyChange(ctx context.Context, c membershipChange) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	timeout := timeLeft(ctx)
	var f raft.IndexFuture
	switch c.op {
	case opAddVoter:
		f = n.raft.AddVoter(c.id, c.addr, 0, timeout)
	case opAddNonvoter:
		f = n.raft.AddNonvoter(c.id, c.addr, 0, timeout)
	case opRemove:
		f = n.raft.RemoveServer(c.id, 0, timeout)
	default:
		return fmt.Errorf("unknown change %d", c.op)
	}
	if err := waitFuture(ctx, f); err != nil {
		return err
	}
	if c.op == opRemove {
		n.deadMu.Lock()
		delete(n.deadSince, c.id)
		n.deadMu.Unlock()
	}
	return nil
}

// voterCount returns the number of voters in the latest configuration.
func (n *Node) voterCount() int {
	future := n.raft.GetConfiguration()
	if future.Error() != nil {
		return 0
	}
	count := 0
	for _, s := range future.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			count++
		}
	}
	return count
}
