package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// bootstrapPoll is how often a node waiting to bootstrap re-reads gossip.
const bootstrapPoll = 200 * time.Millisecond

// bootstrapLoop waits until exactly BootstrapExpect voter-capable members
// started with the same bootstrap-expect value are alive, then bootstraps
// Raft with all of them. Every such node computes the same configuration
// (sorted by node id), and bootstrapping the identical configuration on
// several nodes is safe: each writes the same first entry.
//
// It does not bootstrap when a member reports existing Raft state, because
// the cluster already exists and its leader will add this node. Nor does it
// bootstrap when more candidates than expected are visible, because nodes
// that see different sets would write different first entries.
func (n *Node) bootstrapLoop(ctx context.Context) {
	ticker := time.NewTicker(bootstrapPoll)
	defer ticker.Stop()
	warned := false
	for {
		servers, reason := bootstrapServers(n.gossip.alive(), n.cfg.BootstrapExpect)
		switch {
		case servers != nil:
			n.bootstrap(servers)
			return
		case reason != "" && !warned:
			n.logger.Warn("not bootstrapping", "reason", reason)
			warned = true
		}
		if n.raft.LastIndex() > 0 {
			return // a leader has already added this node
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// bootstrapServers returns the bootstrap configuration when the members
// allow it, else nil and, for a state that waiting will not fix soon, the
// reason.
func bootstrapServers(alive []gossipMember, expect int) ([]raft.Server, string) {
	var candidates []gossipMember
	for _, m := range alive {
		if m.Meta.HasState {
			return nil, "member " + m.ID + " already holds raft state; waiting to be added by the leader"
		}
		if m.Meta.VoterCapable && m.Meta.BootstrapExpect == expect {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) < expect {
		return nil, ""
	}
	if len(candidates) > expect {
		return nil, "more nodes than bootstrap-expect are waiting to bootstrap; start exactly bootstrap-expect nodes with the flag"
	}
	slices.SortFunc(candidates, func(a, b gossipMember) int { return strings.Compare(a.ID, b.ID) })
	servers := make([]raft.Server, 0, len(candidates))
	for _, c := range candidates {
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(c.ID),
			Address:  raft.ServerAddress(c.Meta.RaftAddr),
		})
	}
	return servers, ""
}

func (n *Node) bootstrap(servers []raft.Server) {
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	switch {
	case err == nil:
		n.logger.Info("bootstrapped cluster", "servers", len(servers))
	case errors.Is(err, raft.ErrCantBootstrap):
		n.logger.Info("cluster already bootstrapped")
	default:
		n.logger.Error("bootstrap failed", keyErr, err)
	}
}
