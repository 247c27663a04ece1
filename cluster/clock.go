package cluster

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// clockProbeInterval is how often a node compares its clock with every
// other member's.
const clockProbeInterval = 2 * time.Second

// clockState is this node's latest view of its clock against its peers'.
type clockState struct {
	mu sync.Mutex
	// offsets maps a peer id to peer clock minus this node's clock,
	// measured at the midpoint of the round trip.
	offsets map[string]time.Duration
	skewed  bool
}

// ClockSkew reports this node's median clock offset to its reachable peers
// and whether the node counts as skewed: its clock differs by more than
// MaxClockSkew from more than half of the peers it reached. A node with a
// skewed clock would decide expiry, timestamps and time windows
// differently from the rest of the cluster, so callers refuse machine
// requests on it. A node with no reachable peer is never skewed.
func (n *Node) ClockSkew() (median time.Duration, skewed bool) {
	n.clock.mu.Lock()
	defer n.clock.mu.Unlock()
	var values []time.Duration
	for _, d := range n.clock.offsets {
		values = append(values, d)
	}
	if len(values) == 0 {
		return 0, false
	}
	sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
	return values[len(values)/2], n.clock.skewed
}

// watchClock probes every other member's clock each clockProbeInterval.
func (n *Node) watchClock(ctx context.Context) {
	if n.cfg.MaxClockSkew <= 0 {
		return
	}
	ticker := time.NewTicker(clockProbeInterval)
	defer ticker.Stop()
	for {
		n.probeClocks(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// probeClocks measures the offset to each alive member and updates the
// skew verdict.
func (n *Node) probeClocks(ctx context.Context) {
	offsets := make(map[string]time.Duration)
	for _, m := range n.Members() {
		if m.ID == n.cfg.NodeID || !m.Alive || m.RaftAddr == "" {
			continue
		}
		if d, ok := n.probeClock(ctx, m); ok {
			offsets[m.ID] = d
		}
	}
	far := 0
	for _, d := range offsets {
		if d > n.cfg.MaxClockSkew || d < -n.cfg.MaxClockSkew {
			far++
		}
	}
	skewed := len(offsets) > 0 && 2*far > len(offsets)

	n.clock.mu.Lock()
	was := n.clock.skewed
	n.clock.offsets = offsets
	n.clock.skewed = skewed
	n.clock.mu.Unlock()
	if skewed && !was {
		n.logger.Error("clock differs from most peers; machine requests get 503 until the clock is corrected",
			"offsets", offsets, "max_clock_skew", n.cfg.MaxClockSkew)
	}
	if was && !skewed {
		n.logger.Info("clock agrees with the peers again")
	}
}

// probeClock requests one member's clock. The offset is the member's
// reading minus the midpoint of the round trip, so it is accurate to half
// the round-trip time.
func (n *Node) probeClock(ctx context.Context, m Member) (time.Duration, bool) {
	addr := m.RaftAddr
	if known, err := n.gossip.ServerAddr(raft.ServerID(m.ID)); err == nil {
		addr = string(known)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DialTimeout)
	defer cancel()
	req := &request{kind: kindClock, hops: 1, timeout: timeLeft(ctx), origin: n.cfg.NodeID}
	sent := n.cfg.Clock()
	res, err := n.forwarder.roundTrip(ctx, addr, req)
	received := n.cfg.Clock()
	if err != nil || res.status != statusOK {
		return 0, false
	}
	midpoint := sent.Add(received.Sub(sent) / 2)
	peer := time.UnixMicro(int64(res.index))
	return peer.Sub(midpoint), true
}

// serveClock replies to a peer's clock probe with this node's clock in Unix
// microseconds.
func (n *Node) serveClock() *response {
	return &response{status: statusOK, index: uint64(n.cfg.Clock().UnixMicro())}
}
