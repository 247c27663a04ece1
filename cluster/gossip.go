package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// nodeMeta is the metadata every node gossips about itself. It stays well
// under memberlist's 512-byte limit: ids are at most 128 bytes and URLs 256.
type nodeMeta struct {
	RaftAddr        string `json:"raftAddr"`
	HTTPURL         string `json:"httpUrl,omitempty"`
	VoterCapable    bool   `json:"voterCapable"`
	BootstrapExpect int    `json:"bootstrapExpect,omitempty"`
	// HasState is true once the node holds Raft state, so a node that is
	// still waiting to bootstrap knows a cluster already exists.
	HasState bool `json:"hasState,omitempty"`
	// GeoBuild names the IP-to-country database build this node decides
	// with, so that nodes deciding with different builds can be found.
	GeoBuild string `json:"geoBuild,omitempty"`
}

func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: member metadata: %v", ErrProtocol, err)
	}
	if m.RaftAddr == "" {
		return m, fmt.Errorf("%w: member metadata has no raft address", ErrProtocol)
	}
	return m, nil
}

// gossipMember is an alive member with decoded metadata.
type gossipMember struct {
	ID         string
	GossipAddr string
	Meta       nodeMeta
}

// gossip owns the memberlist instance and the delegate state.
type gossip struct {
	list   *memberlist.Memberlist
	logger *slog.Logger
	// addr is the advertised gossip address, copied once after Create
	// because memberlist updates its local node record in place.
	addr string
	meta atomic.Pointer[[]byte]
	// events receives a value (without blocking) on every membership
	// change, so the leader reconciles at once.
	events chan struct{}
	// name is this node's gossip name.
	name string
	// selfConflict receives a value when peers hold this node's name at
	// another address.
	selfConflict chan struct{}

	mu sync.Mutex
	// members holds a copy of every alive member, this node included,
	// taken inside memberlist's event callbacks: memberlist updates its
	// node records in place under its own lock, so reading the records
	// that Members returns would race with those updates.
	members map[string]*memberlist.Node
	// raftAddrs is the last Raft address known for each node id, from
	// gossip metadata or the stored Raft configuration. Entries are kept
	// after a node leaves.
	raftAddrs map[raft.ServerID]raft.ServerAddress
	// left records when a member was last seen leaving or dying.
	left map[string]time.Time
}

// newGossip returns the gossip state without memberlist, so that the Raft
// transport can use its address book before gossip starts.
func newGossip(n *Node) *gossip {
	return &gossip{
		logger:       n.baseLog.With("component", "gossip"),
		events:       make(chan struct{}, 1),
		name:         n.cfg.NodeID,
		selfConflict: make(chan struct{}, 1),
		members:      make(map[string]*memberlist.Node),
		raftAddrs:    make(map[raft.ServerID]raft.ServerAddress),
		left:         make(map[string]time.Time),
	}
}

// startGossip publishes this node's metadata and starts memberlist.
func (n *Node) startGossip(hasState bool) error {
	g := n.gossip
	if err := g.setMeta(nodeMeta{
		RaftAddr:        string(n.advertise),
		HTTPURL:         n.cfg.HTTPAdvertiseURL,
		VoterCapable:    !n.cfg.NonVoter,
		BootstrapExpect: n.cfg.BootstrapExpect,
		HasState:        hasState,
		GeoBuild:        n.cfg.GeoBuild,
	}); err != nil {
		return err
	}
	mc, err := n.memberlistConfig(g)
	if err != nil {
		return err
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("start gossip on gossip-addr %s: %w", n.cfg.GossipBindAddr, err)
	}
	g.list = list
	g.addr = list.LocalNode().FullAddress().Addr
	return nil
}

func (n *Node) memberlistConfig(g *gossip) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = n.cfg.NodeID
	host, port, err := splitHostPort(n.cfg.GossipBindAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: gossip-addr: %v", ErrInvalidConfig, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	// Port 0 binds a free port; memberlist then advertises that port.
	mc.AdvertisePort = port
	if n.cfg.GossipAdvertiseAddr != "" {
		host, port, err := splitHostPort(n.cfg.GossipAdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("%w: gossip-advertise-addr: %v", ErrInvalidConfig, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = host, port
	}
	mc.SecretKey = n.cfg.GossipKey
	mc.DeadNodeReclaimTime = n.cfg.DeadNodeReclaimTime
	mc.Logger = newMemberlistLogger(n.baseLog)
	mc.LogOutput = nil
	mc.Delegate = g
	mc.Events = g
	mc.Conflict = g
	return mc, nil
}

func splitHostPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q", hostport)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

func (g *gossip) setMeta(m nodeMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("%w: gossip metadata is %d bytes, limit %d; shorten node-id or api-url",
			ErrInvalidConfig, len(b), memberlist.MetaMaxSize)
	}
	g.meta.Store(&b)
	return nil
}

func (g *gossip) currentMeta() nodeMeta {
	m, _ := decodeMeta(*g.meta.Load())
	return m
}

func (g *gossip) advertise() string { return g.addr }

// alive returns every alive member whose metadata decodes, this node
// included.
func (g *gossip) alive() []gossipMember {
	g.mu.Lock()
	nodes := make([]*memberlist.Node, 0, len(g.members))
	for _, nd := range g.members {
		nodes = append(nodes, nd)
	}
	g.mu.Unlock()

	out := make([]gossipMember, 0, len(nodes))
	for _, nd := range nodes {
		m, err := decodeMeta(nd.Meta)
		if err != nil {
			g.logger.Debug("ignoring member with invalid metadata", keyPeerID, nd.Name, keyErr, err)
			continue
		}
		out = append(out, gossipMember{ID: nd.Name, GossipAddr: nd.Address(), Meta: m})
	}
	return out
}

// leave announces the departure, waits for it to spread within ctx (at most
// a few seconds) and shuts memberlist down.
func (g *gossip) leave(ctx context.Context) error {
	if g.list == nil {
		return nil
	}
	timeout := 2 * time.Second
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < timeout {
		timeout = max(time.Until(deadline), 0)
	}
	if ctx.Err() == nil {
		if err := g.list.Leave(timeout); err != nil {
			g.logger.Debug("gossip leave did not complete", keyErr, err)
		}
	}
	if err := g.list.Shutdown(); err != nil {
		return fmt.Errorf("shut down gossip: %w", err)
	}
	return nil
}

func (g *gossip) kick() {
	select {
	case g.events <- struct{}{}:
	default:
	}
}

// memberlist.Delegate. User messages and state exchange are unused.

func (g *gossip) NodeMeta(limit int) []byte {
	b := *g.meta.Load()
	if len(b) > limit {
		// setMeta enforces MetaMaxSize, so this is unreachable in practice.
		return nil
	}
	return b
}

func (g *gossip) NotifyMsg([]byte)                {}
func (g *gossip) GetBroadcasts(int, int) [][]byte { return nil }
func (g *gossip) LocalState(bool) []byte          { return nil }
func (g *gossip) MergeRemoteState([]byte, bool)   {}

// memberlist.EventDelegate. These run inside memberlist's locks, so they
// only record and signal.

func (g *gossip) NotifyJoin(nd *memberlist.Node) {
	g.logger.Info("peer joined", keyPeerID, nd.Name, keyAddr, nd.Address())
	g.store(nd)
	g.kick()
}

func (g *gossip) NotifyLeave(nd *memberlist.Node) {
	g.logger.Info("peer left or failed", keyPeerID, nd.Name, keyAddr, nd.Address())
	g.mu.Lock()
	delete(g.members, nd.Name)
	g.left[nd.Name] = time.Now()
	g.mu.Unlock()
	g.kick()
}

func (g *gossip) NotifyUpdate(nd *memberlist.Node) {
	g.logger.Debug("peer updated", keyPeerID, nd.Name, keyAddr, nd.Address())
	g.store(nd)
	g.kick()
}

// store records a copy of an alive member and its Raft address.
func (g *gossip) store(nd *memberlist.Node) {
	cp := *nd
	cp.Meta = bytes.Clone(nd.Meta)
	meta, metaErr := decodeMeta(cp.Meta)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members[nd.Name] = &cp
	delete(g.left, nd.Name)
	if metaErr == nil {
		g.raftAddrs[raft.ServerID(nd.Name)] = raft.ServerAddress(meta.RaftAddr)
	}
}

// learnRaftAddrs seeds the address book with servers of a Raft
// configuration, without overriding addresses learned from gossip.
func (g *gossip) learnRaftAddrs(servers []raft.Server) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range servers {
		if _, ok := g.raftAddrs[s.ID]; !ok {
			g.raftAddrs[s.ID] = s.Address
		}
	}
}

// ServerAddr implements raft.ServerAddressProvider. Raft dials peers by the
// address this returns instead of the one in its configuration. A node that
// moved is therefore reachable as soon as gossip carries its new address,
// even when every voter moved at once and no leader exists to update the
// configuration.
func (g *gossip) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	addr, ok := g.raftAddrs[id]
	if !ok {
		return "", fmt.Errorf("%w: no raft address known for %s", ErrUnknownMember, id)
	}
	return addr, nil
}

// leftAt returns when a member was last seen leaving or failing.
func (g *gossip) leftAt(name string) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.left[name]
	return t, ok
}

// NotifyConflict makes a name clash visible: another node claims this
// node's or a peer's name from a different address. memberlist lets the
// newcomer take the name over once the old entry has left, or has been dead
// for gossip-reclaim-time.
func (g *gossip) NotifyConflict(existing, other *memberlist.Node) {
	g.logger.Warn("node name conflict in gossip", keyPeerID, existing.Name,
		"known_addr", existing.Address(), "other_addr", other.Address())
	if existing.Name == g.name {
		select {
		case g.selfConflict <- struct{}{}:
		default:
		}
	}
}

// joinLoop joins the configured members, retrying with a doubling wait
// until one attempt reaches at least one member.
func (n *Node) joinLoop(ctx context.Context) {
	wait := n.cfg.JoinRetryInterval
	const maxWait = 30 * time.Second
	for {
		joined, err := n.gossip.list.Join(n.cfg.Join)
		if joined > 0 {
			n.logger.Info("joined gossip", "contacted", joined)
			return
		}
		n.logger.Warn("join failed, retrying", "join", n.cfg.Join, "retry_in", wait, keyErr, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, maxWait)
	}
}

// Re-join timing after a name conflict about this node.
const (
	rejoinInterval = time.Second
	// rejoinGrace covers memberlist's failure detection on a LAN (a few
	// probe intervals of suspicion) on top of DeadNodeReclaimTime.
	rejoinGrace = 30 * time.Second
)

// rejoinOnConflict handles a node that returns under its name from a new
// address after a crash. Peers reject the new address while the old entry
// is alive or suspect, and they announce its death only to the old
// address, so this node would not learn of it before the next periodic
// state exchange. It therefore re-joins every rejoinInterval until
// DeadNodeReclaimTime plus rejoinGrace have passed since the last conflict.
// Each join exchanges full state. Once peers hold the old entry as dead,
// this node receives that state, refutes it and peers take the new address.
func (n *Node) rejoinOnConflict(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.gossip.selfConflict:
		}
		n.logger.Warn("peers hold this node's name at another address; re-joining until they accept this one")
		until := time.Now().Add(n.cfg.DeadNodeReclaimTime + rejoinGrace)
		for time.Now().Before(until) {
			select {
			case <-ctx.Done():
				return
			case <-n.gossip.selfConflict:
				until = time.Now().Add(n.cfg.DeadNodeReclaimTime + rejoinGrace)
			case <-time.After(rejoinInterval):
			}
			if _, err := n.gossip.list.Join(n.cfg.Join); err != nil {
				n.logger.Debug("re-join failed", keyErr, err)
			}
		}
	}
}

// markStateWhenJoined publishes HasState once this node holds Raft state,
// so nodes still waiting to bootstrap see that a cluster already exists.
func (n *Node) markStateWhenJoined(ctx context.Context) {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if n.raft.LastIndex() == 0 {
			continue
		}
		m := n.gossip.currentMeta()
		m.HasState = true
		if err := n.gossip.setMeta(m); err != nil {
			n.logger.Warn("update gossip metadata failed", keyErr, err)
			return
		}
		if err := n.gossip.list.UpdateNode(n.cfg.DialTimeout); err != nil {
			n.logger.Debug("announce gossip metadata failed", keyErr, err)
		}
		return
	}
}
