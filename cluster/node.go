package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Node is one member of a Keyward cluster: a Raft peer with its transport
// and stores, a memberlist member, and the forwarding channel that carries
// writes from followers to the leader. Create it with New, then Start it;
// Close releases everything. All methods are safe for concurrent use.
type Node struct {
	cfg    Config
	sm     stateMachine
	logger *slog.Logger
	// baseLog is the caller's logger, without this package's component
	// attribute; Raft, gossip and memberlist name their own component.
	// The caller adds the node id (keyward server does), so it is not
	// repeated here.
	baseLog *slog.Logger
	tls     *tlsPair

	// leaderLookup returns the leader as recorded by this node's Raft.
	// Tests replace it to simulate a stale view of the leader.
	leaderLookup func() (raft.ServerAddress, raft.ServerID)

	// Set by Start and read-only afterwards.
	started   time.Time
	advertise raft.ServerAddress
	stores    *raftStores
	mux       *muxListener
	transport *raft.NetworkTransport
	raft      *raft.Raft
	forwarder *forwardClient
	gossip    *gossip
	notifyCh  chan bool
	bgCtx     context.Context
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
	// restoredOnStart records whether Start restored a snapshot into the
	// state machine.
	restoredOnStart bool

	// forwardsSent and forwardsServed count the writes and membership
	// requests that this node forwarded to a leader and those it received
	// from other nodes.
	forwardsSent   atomic.Uint64
	forwardsServed atomic.Uint64

	// ready gates machine requests besides staleness; events propagates
	// nonces and failed authentications to peers.
	ready   readiness
	clock   clockState
	events  *peerEvents
	metrics *nodeMetrics
	// disk times writes to raft.db and tracks the data volume's free space.
	disk *diskMonitor

	mu sync.Mutex
	// state is the lifecycle: created, running or closed.
	state nodeState
	// ops counts Apply and forwarded requests in flight, so Close can wait
	// for them before shutting Raft down.
	ops sync.WaitGroup

	deadMu sync.Mutex
	// deadSince records when the leader first saw a Raft member missing
	// from gossip.
	deadSince map[raft.ServerID]time.Time
}

type nodeState int

const (
	stateCreated nodeState = iota
	stateRunning
	stateClosed
)

// newNode validates cfg and prepares a node without any I/O.
func newNode(cfg Config, sm stateMachine, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sm == nil {
		return nil, fmt.Errorf("%w: state machine is nil", ErrInvalidConfig)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	n := &Node{
		cfg:       cfg,
		sm:        sm,
		logger:    logger.With("component", "cluster"),
		baseLog:   logger,
		tls:       newTLSPair(cfg.TLS),
		deadSince: make(map[raft.ServerID]time.Time),
		events:    newPeerEvents(cfg.NonceLogBytes),
		metrics:   newNodeMetrics(),
	}
	n.disk = newDiskMonitor(cfg, n.logger)
	return n, nil
}

// Start opens the Raft stores, restores the newest snapshot into the state
// machine when it is behind, listens on RaftBindAddr, starts Raft and
// memberlist, and starts the background join, bootstrap and leadership
// loops. It returns once the node is running; forming or joining a cluster
// continues in the background. ctx bounds the start-up work.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != stateCreated {
		return fmt.Errorf("%w: Start called twice or after Close", ErrClosed)
	}
	if err := n.startLocked(ctx); err != nil {
		n.teardown(ctx)
		n.state = stateClosed
		return err
	}
	n.state = stateRunning
	return nil
}

func (n *Node) startLocked(ctx context.Context) error {
	n.started = time.Now()
	n.bgCtx, n.bgCancel = context.WithCancel(context.Background())
	hcl := newHCLogAdapter(n.baseLog, "raft")

	stores, err := openRaftStores(n.cfg.DataDir, n.cfg.SnapshotRetain, hcl)
	if err != nil {
		return err
	}
	n.stores = stores
	n.disk.maintainReserveFile()
	if err := ctx.Err(); err != nil {
		return err
	}
	restored, err := restoreIfBehind(n.sm, stores.snaps)
	if err != nil {
		return err
	}
	n.restoredOnStart = restored
	if restored {
		n.logger.Info("restored snapshot into state machine", keyIndex, n.sm.AppliedIndex())
	}

	n.loadNonces()
	n.gossip = newGossip(n)
	if err := n.listen(ctx, hcl); err != nil {
		return err
	}
	hasState, err := raft.HasExistingState(stores.bolt, stores.bolt, stores.snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if err := n.startRaft(hcl); err != nil {
		return err
	}
	if err := n.startGossip(hasState); err != nil {
		return err
	}
	n.startLoops(hasState)
	if n.tls == nil && !isLoopback(string(n.advertise)) {
		n.logger.Warn("cluster transport is plain TCP on a non-loopback address; anyone who reaches it can write to the cluster",
			"raft_addr", string(n.advertise))
	}
	n.logger.Info("node started", "raft_addr", string(n.advertise), "gossip_addr", n.gossip.advertise(),
		"existing_state", hasState)
	return nil
}

// listen binds the shared port and sets up the stream layer, the transport
// and the forwarding client.
func (n *Node) listen(ctx context.Context, hcl *hclogAdapter) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", n.cfg.RaftBindAddr)
	if err != nil {
		return fmt.Errorf("listen on raft-addr %s: %w", n.cfg.RaftBindAddr, err)
	}
	n.advertise = raft.ServerAddress(n.cfg.RaftAdvertiseAddr)
	if n.advertise == "" {
		n.advertise = raft.ServerAddress(ln.Addr().String())
	}
	d := &dialer{tls: n.tls, timeout: n.cfg.DialTimeout}
	n.forwarder = newForwardClient(d)
	server := &forwardServer{handle: n.handleForward, logger: n.logger}
	n.mux = newMuxListener(ln, n.tls, n.cfg.DialTimeout, server.serve, n.logger)
	n.mux.start()

	layer := &raftLayer{mux: n.mux, dialer: d, advertise: addr(n.advertise), closed: make(chan struct{})}
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:                layer,
		ServerAddressProvider: n.gossip,
		MaxPool:               n.cfg.TransportMaxPool,
		Timeout:               n.cfg.TransportTimeout,
		Logger:                hcl.Named("transport"),
	})
	return nil
}

func (n *Node) raftConfig(hcl *hclogAdapter) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.Logger = hcl
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.MaxAppendEntries = n.cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.TrailingLogs = n.cfg.TrailingLogs
	// The state machine is persistent: Start restores a snapshot itself
	// only when the state machine is behind it (see restoreIfBehind).
	rc.NoSnapshotRestoreOnStart = true
	rc.NotifyCh = n.notifyCh
	return rc
}

func (n *Node) startRaft(hcl *hclogAdapter) error {
	n.notifyCh = make(chan bool, 16)
	rc := n.raftConfig(hcl)
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	store := &monitoredStore{BoltStore: n.stores.bolt, disk: n.disk}
	r, err := raft.NewRaft(rc, n.sm, store, store, n.stores.snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	n.leaderLookup = r.LeaderWithID
	if f := r.GetConfiguration(); f.Error() == nil {
		n.gossip.learnRaftAddrs(f.Configuration().Servers)
	}
	return nil
}

func (n *Node) startLoops(hasState bool) {
	n.goBackground(n.watchLeadership)
	n.goBackground(n.catchUpOnStart)
	n.goBackground(n.watchStaleness)
	n.goBackground(n.watchClock)
	n.goBackground(n.runPeerEvents)
	n.goBackground(n.syncNoncesOnStart)
	n.goBackground(n.watchDisk)
	n.goBackground(n.snapshotIfLogLong)
	if len(n.cfg.Join) > 0 {
		n.goBackground(n.joinLoop)
		n.goBackground(n.rejoinOnConflict)
	}
	if n.cfg.BootstrapExpect > 0 && !hasState {
		n.goBackground(n.bootstrapLoop)
	}
	if !hasState {
		n.goBackground(n.markStateWhenJoined)
	}
}

func (n *Node) goBackground(loop func(ctx context.Context)) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		loop(n.bgCtx)
	}()
}

// Close leaves gossip, hands leadership to another voter when this node
// leads, shuts Raft down and releases the port, the pools and the stores,
// then flushes the nonce journal to disk. It waits for writes in flight,
// the leadership transfer and the gossip leave until ctx ends. With a
// context that is already done it skips all of that, the flush included,
// and stops at once, which peers see as a crash. Calling it again, or
// before Start, returns nil.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.state != stateRunning {
		n.state = stateClosed
		n.mu.Unlock()
		return nil
	}
	n.state = stateClosed
	n.mu.Unlock()

	n.waitOps(ctx)
	n.transferOnClose(ctx)
	return n.teardown(ctx)
}

// waitOps waits for Apply calls and forwarded requests in flight.
func (n *Node) waitOps(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		n.ops.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		n.logger.Warn("closing with writes still in flight", keyErr, ctx.Err())
	}
}

// transferOnClose moves leadership away before shutdown, so a planned
// restart of the leader costs a transfer instead of an election timeout. A
// context that is already done skips it.
func (n *Node) transferOnClose(ctx context.Context) {
	if ctx.Err() != nil || n.raft == nil || n.raft.State() != raft.Leader || n.voterCount() < 2 {
		return
	}
	f := n.raft.LeadershipTransfer()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			n.logger.Warn("leadership transfer before close failed", keyErr, err)
		}
	case <-ctx.Done():
	}
}

// teardown stops every part that Start created, in reverse order, and
// returns the first error.
func (n *Node) teardown(ctx context.Context) error {
	var errs []error
	if n.gossip != nil {
		errs = append(errs, n.gossip.leave(ctx))
	}
	if n.bgCancel != nil {
		n.bgCancel()
	}
	n.bg.Wait()
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
	}
	if n.transport != nil {
		n.transport.CloseStreams()
		n.transport.Close()
	}
	if n.mux != nil {
		if err := n.mux.close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close raft listener: %w", err))
		}
	}
	if n.forwarder != nil {
		n.forwarder.close()
	}
	if n.stores != nil {
		if err := n.stores.close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
	}
	// Last, because the forwarding server and the peer-event loop append
	// to the journal until they stop.
	n.closeNonceJournal(ctx.Err() == nil)
	n.logger.Info("node stopped")
	return errors.Join(errs...)
}

// beginOp registers a request in flight; it returns false once Close began.
func (n *Node) beginOp() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != stateRunning {
		return false
	}
	n.ops.Add(1)
	return true
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NodeID returns this node's id.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// RaftAddr returns the advertised Raft address, known after Start.
func (n *Node) RaftAddr() string { return string(n.advertise) }

// GossipAddr returns the advertised gossip address, known after Start.
func (n *Node) GossipAddr() string {
	if n.gossip == nil {
		return ""
	}
	return n.gossip.advertise()
}

// IsLeader reports whether this node is the Raft leader.
func (n *Node) IsLeader() bool {
	return n.raft != nil && n.raft.State() == raft.Leader
}

// LeaderID returns the id of the leader as this node last heard, or "".
func (n *Node) LeaderID() string {
	if n.raft == nil {
		return ""
	}
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// State returns "leader", "follower", "candidate" or "shutdown"; a node that
// is not started reports "shutdown".
func (n *Node) State() string {
	if n.raft == nil {
		return "shutdown"
	}
	return strings.ToLower(n.raft.State().String())
}

// LastContact returns when this node last heard from a leader, or the zero
// time when it never has. On the leader it is the time it last stepped
// down, as Raft reports it.
func (n *Node) LastContact() time.Time {
	if n.raft == nil {
		return time.Time{}
	}
	return n.raft.LastContact()
}

// Staleness returns how far behind the cluster this node may be. A leader
// returns 0: Raft steps a leader down when it loses contact with a quorum
// for LeaderLeaseTimeout, so while it is leader its state is current. Any
// other node returns the time since it last heard from a leader, or since
// Start when it never has.
func (n *Node) Staleness() time.Duration {
	if n.raft == nil {
		return time.Since(n.started)
	}
	if n.raft.State() == raft.Leader {
		return 0
	}
	last := n.raft.LastContact()
	if last.IsZero() {
		return time.Since(n.started)
	}
	return time.Since(last)
}

// AppliedIndex returns the index of the last entry the state machine
// applied on this node.
func (n *Node) AppliedIndex() uint64 { return n.sm.AppliedIndex() }
