package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/keyward/keyward/guard"
)

// Config configures one node. Start from DefaultConfig and set the
// addresses. Each field documents its unit, its default and its flag; the
// flag, the config-file key and the KEYWARD_ environment variable share one
// kebab-case name.
type Config struct {
	// NodeID names this node in Raft and in gossip (node-id). It must be
	// unique and stable across restarts, also when the addresses change.
	NodeID string

	// DataDir holds raft/raft.db (log and stable store) and raft/snapshots
	// (data-dir). It must exist or be creatable.
	DataDir string

	// RaftBindAddr is the TCP host:port that carries both the Raft
	// transport and the write-forwarding channel (raft-addr). Port 0 picks
	// a free port at Start.
	RaftBindAddr string

	// RaftAdvertiseAddr is the host:port that peers dial to reach
	// RaftBindAddr (raft-advertise-addr). Empty means the bound address,
	// which must then not be a wildcard such as 0.0.0.0.
	RaftAdvertiseAddr string

	// GossipBindAddr is the host:port for memberlist, TCP and UDP
	// (gossip-addr). Port 0 picks a free port at Start.
	GossipBindAddr string

	// GossipAdvertiseAddr is the IP:port that other members use to reach
	// this node's gossip (gossip-advertise-addr). Empty means the bound
	// address, or a private IP of this host when bound to a wildcard.
	GossipAdvertiseAddr string

	// Join lists gossip addresses of any existing members (join). The node
	// retries in the background until one join succeeds.
	Join []string

	// BootstrapExpect is the number of voter-capable nodes, started with
	// the same value, that form a new cluster together (bootstrap-expect).
	// 1 forms a single-node cluster. 0 never bootstraps: the node waits for
	// a leader to add it. A node with existing Raft state never bootstraps.
	BootstrapExpect int

	// HTTPAdvertiseURL is this node's API URL, carried in gossip metadata so
	// that operators and peers can find it (api-url). At most 256 bytes.
	HTTPAdvertiseURL string

	// GeoBuild names the IP-to-country database build that this node's
	// country guardrails use; it travels in gossip metadata. Empty when
	// unknown.
	GeoBuild string

	// Voters is the number of voting members the leader keeps (voters).
	// Further nodes join as non-voters that replicate and serve reads.
	// Default 3; must be at least 1 and at least BootstrapExpect.
	Voters int

	// NonVoter marks this node as never voting (non-voter). The zero value
	// lets the leader make it a voter while fewer than Voters exist.
	NonVoter bool

	// TLS, when set, wraps the Raft transport and the forwarding channel in
	// mutual TLS. Certificates holds this node's certificate, which needs
	// both the server and the client extended key usage. RootCAs verifies
	// peers' server certificates and ClientCAs (RootCAs when nil) verifies
	// their client certificates. When ServerName is empty the dialled host
	// is verified. Nil means plain TCP, for development only.
	TLS *tls.Config

	// GossipKey encrypts memberlist traffic with AES (16, 24 or 32 bytes,
	// gossip-key-file). Nil means unencrypted gossip.
	GossipKey []byte

	// ReplayCache receives the nonces that peers accepted, so that a
	// request accepted by one node is rejected by every other. Give the
	// HTTP layer the same cache. Nil ignores peers' nonces.
	ReplayCache *guard.ReplayCache

	// Lockout receives the failed authentications that peers saw, so the
	// lockout of a source address counts failures on every node. Give the
	// HTTP layer the same Lockout. Nil ignores peers' failures.
	Lockout *guard.Lockout

	// NonceLogBytes bounds the log of recent nonces that a restarting peer
	// pulls (nonce-log-bytes). Default 256 MiB: a record of a UUID machine
	// id and a 24-character nonce takes 71 bytes, so about 3.8 million
	// nonces. When it is full the oldest nonces leave the log first; they
	// stay in the replay caches of running nodes. The same bound applies to
	// the nonce journal under DataDir/nonce-journal.
	NonceLogBytes int

	// LeaderJobs run, each in its own goroutine, only while this node is
	// the leader and its state machine has applied every committed entry.
	// Their context is cancelled when leadership is lost and on Close; a
	// job must return promptly then. A job of a previous term may still be
	// returning when the next term's copy starts.
	LeaderJobs []func(ctx context.Context)

	// HeartbeatTimeout is how long a follower waits without contact from
	// the leader before it starts an election (raft-heartbeat-timeout).
	// Default 1 s, minimum 5 ms.
	HeartbeatTimeout time.Duration

	// ElectionTimeout is how long a candidate waits for votes
	// (raft-election-timeout). Default 1 s; at least HeartbeatTimeout.
	ElectionTimeout time.Duration

	// LeaderLeaseTimeout is how long a leader stays leader without contact
	// from a quorum (raft-leader-lease-timeout). Default 500 ms; at most
	// HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration

	// CommitTimeout is the idle time after which the leader sends an
	// otherwise empty append so that followers learn the commit index
	// (raft-commit-timeout). A write sent to a follower returns only once
	// that follower applied it, so with no other writes in flight it waits
	// about this long. Default 5 ms, minimum 1 ms.
	CommitTimeout time.Duration

	// MaxAppendEntries is the number of entries batched into one append
	// and one state-machine batch (raft-max-append-entries). Default 256,
	// between 1 and 1024.
	MaxAppendEntries int

	// SnapshotInterval is how often Raft checks whether to snapshot
	// (snapshot-interval). Default 2 min.
	SnapshotInterval time.Duration

	// SnapshotThreshold is the number of new log entries that triggers a
	// snapshot (snapshot-threshold). Default 8192.
	SnapshotThreshold uint64

	// TrailingLogs is the number of entries kept after a snapshot so that
	// a slow follower catches up from the log (trailing-logs). Default 10240.
	TrailingLogs uint64

	// SnapshotRetain is the number of snapshots kept on disk
	// (snapshot-retain). Default 2.
	SnapshotRetain int

	// MaxStaleness is how long a follower may go without contact from a
	// leader before it counts as stale (max-staleness). A node that was
	// stale is not Ready again until it has applied everything the leader
	// held when contact came back. Default 5 s.
	MaxStaleness time.Duration

	// MaxClockSkew is the largest difference between this node's clock and
	// its peers' before the node counts as skewed and refuses machine
	// requests (max-clock-skew). Zero turns the check off. Default 5 s.
	MaxClockSkew time.Duration

	// DiskStallThreshold is how long one write to raft.db (a log append or
	// a term and vote update, each ending with fsync) may take before the
	// node counts its disk as stalled (disk-stall-threshold). A stalled
	// node reports unhealthy and, when it leads, hands leadership to
	// another voter. Zero turns the check off. Default 1 s.
	DiskStallThreshold time.Duration

	// DiskReserveBytes is the free space on the data volume below which the
	// node rejects commands for its Raft log (disk-reserve-bytes), so that
	// the rest stays for the state machine, Raft's term and vote updates
	// and a restart. A leader below it rejects writes with ErrDiskFull and
	// hands leadership away. Zero turns the check off. Default 32 MiB.
	DiskReserveBytes int64

	// Clock is the node's wall clock (default time.Now). Tests replace it
	// to give one node a wrong clock.
	Clock func() time.Time

	// ApplyTimeout bounds Apply when its context has no deadline
	// (apply-timeout). Default 10 s.
	ApplyTimeout time.Duration

	// LeaderWait is how long Apply polls for a leader after the first
	// attempt found none, before its one retry (leader-wait). Default 2 s.
	LeaderWait time.Duration

	// DialTimeout bounds connecting and the TLS handshake to a peer
	// (dial-timeout). Default 2 s.
	DialTimeout time.Duration

	// TransportTimeout is the I/O deadline of Raft RPCs
	// (raft-transport-timeout). Default 10 s.
	TransportTimeout time.Duration

	// TransportMaxPool is the number of idle Raft connections kept per peer
	// (raft-transport-pool). Default 3.
	TransportMaxPool int

	// ReconcileInterval is how often the leader compares gossip membership
	// with the Raft configuration, besides doing so on every membership
	// event (reconcile-interval). Default 10 s.
	ReconcileInterval time.Duration

	// DeadNodeTimeout is how long a Raft member must stay absent from
	// gossip before the leader removes it from the configuration
	// (dead-node-timeout). Default 10 min. Zero never removes automatically.
	DeadNodeTimeout time.Duration

	// JoinRetryInterval is the first wait between join attempts; it doubles
	// up to 30 s (join-retry-interval). Default 1 s.
	JoinRetryInterval time.Duration

	// DeadNodeReclaimTime is how long a dead gossip member's name is held
	// before a node with the same name and a new address may take it over
	// (gossip-reclaim-time). Default 10 s.
	DeadNodeReclaimTime time.Duration
}

// Limits that Validate enforces.
const (
	maxNodeIDBytes      = 128
	maxHTTPURLBytes     = 256
	maxAppendEntriesCap = 1024
)

// DefaultConfig returns a Config with the documented defaults and no
// addresses or identity.
func DefaultConfig() Config {
	return Config{
		Voters:              3,
		HeartbeatTimeout:    time.Second,
		ElectionTimeout:     time.Second,
		LeaderLeaseTimeout:  500 * time.Millisecond,
		CommitTimeout:       5 * time.Millisecond,
		MaxAppendEntries:    256,
		SnapshotInterval:    2 * time.Minute,
		SnapshotThreshold:   8192,
		TrailingLogs:        10240,
		SnapshotRetain:      2,
		ApplyTimeout:        10 * time.Second,
		MaxStaleness:        5 * time.Second,
		MaxClockSkew:        5 * time.Second,
		Clock:               time.Now,
		LeaderWait:          2 * time.Second,
		DialTimeout:         2 * time.Second,
		TransportTimeout:    10 * time.Second,
		TransportMaxPool:    3,
		ReconcileInterval:   10 * time.Second,
		DeadNodeTimeout:     10 * time.Minute,
		JoinRetryInterval:   time.Second,
		DeadNodeReclaimTime: 10 * time.Second,
		NonceLogBytes:       256 << 20,
		DiskStallThreshold:  time.Second,
		DiskReserveBytes:    32 << 20,
	}
}

// Validate checks every field and returns an ErrInvalidConfig error naming
// the first invalid field by its flag name.
func (c Config) Validate() error {
	checks := []func() error{
		c.validateIdentity,
		c.validateAddresses,
		c.validateMembership,
		c.validateSecurity,
		c.validateRaftTimes,
		c.validateTimes,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

func (c Config) validateIdentity() error {
	if c.NodeID == "" {
		return invalid("node-id", "missing; set a name that is unique in the cluster")
	}
	if len(c.NodeID) > maxNodeIDBytes {
		return invalid("node-id", "%d bytes is longer than %d", len(c.NodeID), maxNodeIDBytes)
	}
	for _, r := range c.NodeID {
		if r <= ' ' || r > '~' {
			return invalid("node-id", "%q contains a space or a non-printable or non-ASCII character", c.NodeID)
		}
	}
	if c.DataDir == "" {
		return invalid("data-dir", "missing; set the directory for Raft state")
	}
	return nil
}

func (c Config) validateAddresses() error {
	if err := checkHostPort("raft-addr", c.RaftBindAddr, true); err != nil {
		return err
	}
	if c.RaftAdvertiseAddr != "" {
		if err := checkAdvertise("raft-advertise-addr", c.RaftAdvertiseAddr); err != nil {
			return err
		}
	} else if isWildcard(c.RaftBindAddr) {
		return invalid("raft-advertise-addr", "missing while raft-addr %q is a wildcard; set the address peers dial", c.RaftBindAddr)
	}
	if err := checkHostPort("gossip-addr", c.GossipBindAddr, true); err != nil {
		return err
	}
	if c.GossipAdvertiseAddr != "" {
		if err := checkGossipAdvertise(c.GossipAdvertiseAddr); err != nil {
			return err
		}
	}
	for _, addr := range c.Join {
		if err := checkHostPort("join", addr, false); err != nil {
			return err
		}
	}
	return c.validateHTTPURL()
}

func (c Config) validateHTTPURL() error {
	if c.HTTPAdvertiseURL == "" {
		return nil
	}
	if len(c.HTTPAdvertiseURL) > maxHTTPURLBytes {
		return invalid("api-url", "%d bytes is longer than %d", len(c.HTTPAdvertiseURL), maxHTTPURLBytes)
	}
	u, err := url.Parse(c.HTTPAdvertiseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("api-url", "%q is not an http:// or https:// URL with a host", c.HTTPAdvertiseURL)
	}
	return nil
}

func (c Config) validateMembership() error {
	if c.Voters < 1 || c.Voters > 7 {
		return invalid("voters", "%d is outside 1..7; use 3 or 5 for a fault-tolerant cluster", c.Voters)
	}
	if c.Voters%2 == 0 {
		// A quorum is Voters/2+1, so an even count survives no more
		// failures than one voter fewer.
		return invalid("voters", "%d is even; use an odd number from 1 to 7, because an even count adds no fault tolerance", c.Voters)
	}
	if c.BootstrapExpect < 0 {
		return invalid("bootstrap-expect", "%d is negative; use 0 to join an existing cluster", c.BootstrapExpect)
	}
	if c.BootstrapExpect > c.Voters {
		return invalid("bootstrap-expect", "%d is more than voters (%d); raise voters or lower bootstrap-expect", c.BootstrapExpect, c.Voters)
	}
	if c.BootstrapExpect == 1 && len(c.Join) > 0 {
		// A node expecting only itself would bootstrap a cluster of its own
		// before the join reaches the others.
		return invalid("bootstrap-expect", "1 forms a single-node cluster and cannot be combined with join; use 0 to join %v", c.Join)
	}
	if c.BootstrapExpect > 0 && c.NonVoter {
		return invalid("bootstrap-expect", "%d is set on a non-voter; only voters bootstrap a cluster", c.BootstrapExpect)
	}
	return nil
}

func (c Config) validateSecurity() error {
	switch len(c.GossipKey) {
	case 0, 16, 24, 32:
	default:
		return invalid("gossip-key-file", "key is %d bytes; use 16, 24 or 32 random bytes", len(c.GossipKey))
	}
	if c.TLS == nil {
		return nil
	}
	if len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil {
		return invalid("cluster-cert-file", "TLS is enabled but no node certificate is loaded")
	}
	if c.TLS.RootCAs == nil {
		return invalid("cluster-ca-file", "TLS is enabled but no CA pool is loaded to verify peers")
	}
	return nil
}

func (c Config) validateRaftTimes() error {
	if c.HeartbeatTimeout < 5*time.Millisecond {
		return invalid("raft-heartbeat-timeout", "%s is below 5ms", c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return invalid("raft-election-timeout", "%s is below raft-heartbeat-timeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return invalid("raft-leader-lease-timeout", "%s must be between 5ms and raft-heartbeat-timeout (%s)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.CommitTimeout < time.Millisecond {
		return invalid("raft-commit-timeout", "%s is below 1ms", c.CommitTimeout)
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > maxAppendEntriesCap {
		return invalid("raft-max-append-entries", "%d is outside 1..%d", c.MaxAppendEntries, maxAppendEntriesCap)
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		return invalid("snapshot-interval", "%s is below 5ms", c.SnapshotInterval)
	}
	if c.SnapshotThreshold < 1 {
		return invalid("snapshot-threshold", "must be at least 1")
	}
	if c.SnapshotRetain < 1 {
		return invalid("snapshot-retain", "%d is below 1", c.SnapshotRetain)
	}
	return nil
}

func (c Config) validateTimes() error {
	positive := []struct {
		name  string
		value time.Duration
	}{
		{"apply-timeout", c.ApplyTimeout},
		{"leader-wait", c.LeaderWait},
		{"dial-timeout", c.DialTimeout},
		{"raft-transport-timeout", c.TransportTimeout},
		{"reconcile-interval", c.ReconcileInterval},
		{"join-retry-interval", c.JoinRetryInterval},
		{"gossip-reclaim-time", c.DeadNodeReclaimTime},
	}
	for _, p := range positive {
		if p.value <= 0 {
			return invalid(p.name, "%s must be positive", p.value)
		}
	}
	if c.DeadNodeTimeout < 0 {
		return invalid("dead-node-timeout", "%s is negative; use 0 to never remove nodes automatically", c.DeadNodeTimeout)
	}
	if c.TransportMaxPool < 1 {
		return invalid("raft-transport-pool", "%d is below 1", c.TransportMaxPool)
	}
	if c.DiskStallThreshold < 0 {
		return invalid("disk-stall-threshold", "%s is negative; use 0 to turn the check off", c.DiskStallThreshold)
	}
	if c.DiskReserveBytes < 0 {
		return invalid("disk-reserve-bytes", "%d is negative; use 0 to turn the check off", c.DiskReserveBytes)
	}
	if c.NonceLogBytes < 1<<20 {
		return invalid("nonce-log-bytes", "%d is below the minimum of 1048576 (1 MiB); the default is 268435456 (256 MiB), about 3.8 million nonces", c.NonceLogBytes)
	}
	return nil
}

func checkHostPort(field, addr string, allowZeroPort bool) error {
	if addr == "" {
		return invalid(field, "missing; set host:port")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return invalid(field, "%q is not host:port: %v", addr, err)
	}
	n, err := net.LookupPort("tcp", port)
	if err != nil || n > 65535 || (n == 0 && !allowZeroPort) {
		return invalid(field, "%q has an invalid port", addr)
	}
	return nil
}

func checkAdvertise(field, addr string) error {
	if err := checkHostPort(field, addr, false); err != nil {
		return err
	}
	if isWildcard(addr) {
		return invalid(field, "%q is a wildcard; set an address that peers can dial", addr)
	}
	return nil
}

// checkGossipAdvertise also requires an IP literal, because memberlist
// advertises an IP and does not resolve names for it.
func checkGossipAdvertise(addr string) error {
	if err := checkAdvertise("gossip-advertise-addr", addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	if net.ParseIP(host) == nil {
		return invalid("gossip-advertise-addr", "%q must use an IP address, not a host name", addr)
	}
	return nil
}

func isWildcard(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
