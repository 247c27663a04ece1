package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/guard/geo"
	"github.com/keyward/keyward/httpapi"
)

// Default ports of a node: HTTP API, Raft (and forwarding), gossip.
const (
	defaultHTTPPort   = 8200
	defaultRaftPort   = 8201
	defaultGossipPort = 8202
)

// serverOptions are the flags of `keyward server`. Every flag is also read
// from KEYWARD_<NAME> by the root command.
type serverOptions struct {
	nodeID            string
	dataDir           string
	httpAddr          string
	raftAddr          string
	raftAdvertise     string
	gossipAddr        string
	gossipAdvertise   string
	join              []string
	bootstrapExpect   int
	voters            int
	rootKeyFile       string
	apiURL            string
	dev               bool
	insecurePlainHTTP bool
	trustedProxies    []string
	geoipDB           string
	timestampWindow   time.Duration
	maxStaleness      time.Duration
	maxClockSkew      time.Duration
	// geoBuild is the build of the IP-to-country database in use, filled
	// in at start.
	geoBuild        string
	deadNodeTimeout time.Duration
	nonceLogBytes   int
	logLevel        string
	tls             tlsOptions
	alerts          alertOptions

	// blockThrottle holds the --block-throttle-* flags. A MaxBlocks of 0
	// turns the throttle off.
	blockThrottle guard.BlockThrottleConfig

	// keyCacheBytes and verifyBatch are --key-cache-bytes and
	// --verify-batch-size.
	keyCacheBytes int64
	verifyBatch   int
	// machineCache is --machine-cache-entries.
	machineCache int
	// pprofAddr is --pprof-addr, empty when profiling is off.
	pprofAddr string

	// allowBroadTrustedProxies accepts --trusted-proxies prefixes shorter
	// than /8 (IPv4) or /32 (IPv6).
	allowBroadTrustedProxies bool
}

func newServerCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Keyward node",
		Long: "Run a Keyward node. With --dev it starts a single node with embedded defaults:\n" +
			"data in ./keyward-data, plain HTTP on 127.0.0.1:8200, a generated root key and\n" +
			"the root token written to <data-dir>/root-token.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServer(ctx, o)
		},
	}

	f := cmd.Flags()
	f.StringVar(&o.nodeID, "node-id", "", "Unique name of this node in the cluster (default: the host name).")
	f.StringVar(&o.dataDir, "data-dir", "", "Folder for the Raft log, snapshots and the Pebble store (default ./keyward-data with --dev).")
	f.StringVar(&o.httpAddr, "http-addr", "", "Address the HTTP API listens on, host:port (default 127.0.0.1:8200 with --dev, else :8200).")
	f.StringVar(&o.raftAddr, "raft-addr", "", "Address for Raft and write forwarding between nodes, host:port (default 127.0.0.1:8201).")
	f.StringVar(&o.raftAdvertise, "raft-advertise-addr", "", "Raft address other nodes dial, when it differs from --raft-addr.")
	f.StringVar(&o.gossipAddr, "gossip-addr", "", "Address for memberlist discovery, host:port (default 127.0.0.1:8202).")
	f.StringVar(&o.gossipAdvertise, "gossip-advertise-addr", "", "Gossip address other nodes dial, when it differs from --gossip-addr.")
	f.StringSliceVar(&o.join, "join", nil, "Comma-separated gossip addresses of any existing members to join.")
	f.IntVar(&o.bootstrapExpect, "bootstrap-expect", 0, "Number of nodes that form a new cluster together; 0 joins an existing one (1 with --dev).")
	f.IntVar(&o.voters, "voters", 3, "Number of Raft voters, an odd number from 1 to 7; further nodes join as non-voters that serve reads.")
	f.StringVar(&o.rootKeyFile, "root-key-file", "", "File with the root key: one line, standard base64 of 32 bytes (generated in the data dir with --dev).")
	f.StringVar(&o.apiURL, "api-url", "", "Public URL of the API written into registration scripts (default: the origin that served the script).")
	f.BoolVar(&o.dev, "dev", false, "Start a single development node with embedded defaults; never use it in production.")
	f.BoolVar(&o.insecurePlainHTTP, "insecure-plain-http", false, "Allow plain HTTP on a non-loopback --http-addr.")
	f.StringSliceVar(&o.trustedProxies, "trusted-proxies", nil, "Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is read; each at least /8 (IPv4) or /32 (IPv6).")
	f.BoolVar(&o.allowBroadTrustedProxies, "allow-broad-trusted-proxies", false,
		"Accept --trusted-proxies prefixes shorter than /8 (IPv4) or /32 (IPv6); clients inside them can choose the address that IP allowlists and lockout see.")
	f.StringVar(&o.geoipDB, "geoip-db", "", "Path to a GeoLite2/DB-IP country .mmdb file (default: the embedded table).")
	f.DurationVar(&o.timestampWindow, "timestamp-window", 300*time.Second, "Maximum difference between a signed request's X-Timestamp and this node's clock, from 1s to 1h.")
	f.DurationVar(&o.maxStaleness, "max-staleness", 5*time.Second, "Time without contact with a leader after which machine requests get 503.")
	f.DurationVar(&o.maxClockSkew, "max-clock-skew", 5*time.Second, "Largest difference between this node's clock and most peers' before machine requests get 503; 0 turns the check off.")
	f.DurationVar(&o.deadNodeTimeout, "dead-node-timeout", 10*time.Minute, "Time a node may stay absent from gossip before the leader removes it from the Raft configuration, at least 1m; 0 never removes.")
	f.StringVar(&o.logLevel, "log-level", "info", "Log level: debug, info, warn or error.")
	f.IntVar(&o.nonceLogBytes, "nonce-log-bytes", cluster.DefaultConfig().NonceLogBytes, "Bytes of recent nonces kept for peers that restart and in the nonce journal, about 65 per nonce; it must hold every nonce of twice --timestamp-window, so raise it above about 6,000 requests per second with the 5m window (530 with 1h).")
	f.Int64Var(&o.keyCacheBytes, "key-cache-bytes", guard.DefaultKeyCacheBytes,
		fmt.Sprintf("Bytes of memory for expanded Ed25519 keys of the machines that sign requests (%d bytes each); 0 expands none, which makes each verification about a quarter slower and turns batching off.", guard.KeyCacheEntryBytes))
	f.IntVar(&o.machineCache, "machine-cache-entries", fsm.DefaultMachineCacheEntries,
		"Machines held in memory, 1 to 100,000,000, about 600 bytes each, rounded up to a multiple of 64; a machine outside them costs one read of the data directory on its next request.")
	f.StringVar(&o.pprofAddr, "pprof-addr", "", "Loopback host:port that serves Go runtime profiles under /debug/pprof/, such as 127.0.0.1:6060; empty serves none.")
	f.IntVar(&o.verifyBatch, "verify-batch-size", guard.DefaultMaxBatch,
		"Most signatures of concurrent requests verified together, from 1 to 1024; 1 verifies each on its own.")
	throttle := guard.DefaultBlockThrottleConfig()
	f.IntVar(&o.blockThrottle.MaxBlocks, "block-throttle-blocks", throttle.MaxBlocks,
		"Guardrail blocks of one machine from one client address within --block-throttle-window after which its further requests get 403 before signature verification; 0 verifies every request.")
	f.DurationVar(&o.blockThrottle.Window, "block-throttle-window", throttle.Window, "Counting window of --block-throttle-blocks.")
	f.DurationVar(&o.blockThrottle.CoolDown, "block-throttle-cooldown", throttle.CoolDown,
		"Time during which a throttled machine and client address are rejected without signature verification. The next request after it is verified in full.")
	o.tls.addFlags(f)
	o.alerts.addFlags(f)
	return cmd
}

// applyDefaults fills the options that the user left empty, with the
// values that --dev implies when it is set.
func (o *serverOptions) applyDefaults() error {
	if o.nodeID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "node1"
		}
		o.nodeID = host
	}
	if o.dev {
		setDefault(&o.dataDir, "keyward-data")
		setDefault(&o.httpAddr, net.JoinHostPort("127.0.0.1", strconv.Itoa(defaultHTTPPort)))
		if o.bootstrapExpect == 0 && len(o.join) == 0 {
			o.bootstrapExpect = 1
		}
	}
	setDefault(&o.httpAddr, ":"+strconv.Itoa(defaultHTTPPort))
	setDefault(&o.raftAddr, net.JoinHostPort("127.0.0.1", strconv.Itoa(defaultRaftPort)))
	setDefault(&o.gossipAddr, net.JoinHostPort("127.0.0.1", strconv.Itoa(defaultGossipPort)))
	if o.dataDir == "" {
		return errors.New("--data-dir is required (or use --dev)")
	}
	if o.rootKeyFile == "" {
		if !o.dev {
			return errors.New("--root-key-file is required; create one with `keyward root-key new FILE` and give every node the same file")
		}
		o.rootKeyFile = filepath.Join(o.dataDir, "root-key")
	}
	if err := o.tls.validate(); err != nil {
		return err
	}
	return o.checkPlainHTTP()
}

// checkPlainHTTP rejects plain HTTP on an address reachable from other hosts
// unless --insecure-plain-http is set, because tokens and secret values
// would cross the network in clear text.
func (o *serverOptions) checkPlainHTTP() error {
	if o.insecurePlainHTTP || o.tls.apiTLSEnabled() {
		return nil
	}
	host, _, err := net.SplitHostPort(o.httpAddr)
	if err != nil {
		return fmt.Errorf("invalid --http-addr %q: %w", o.httpAddr, err)
	}
	if host == "localhost" {
		return nil
	}
	addr, err := netip.ParseAddr(host)
	if err == nil && addr.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--http-addr %q is not a loopback address and the API serves plain HTTP; "+
		"set --tls-cert-file and --tls-key-file, listen on 127.0.0.1, or pass --insecure-plain-http", o.httpAddr)
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func newLogger(level string, w *os.File) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func runServer(ctx context.Context, o serverOptions) error {
	if err := o.applyDefaults(); err != nil {
		return err
	}
	logger, err := newLogger(o.logLevel, os.Stderr)
	if err != nil {
		return err
	}
	logger = logger.With("node_id", o.nodeID)
	if err := o.checkFlags(logger); err != nil {
		return err
	}

	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", o.dataDir, err)
	}
	if err := o.prepareDevTLS(logger); err != nil {
		return err
	}
	// Profiles are bound before the node starts, so a taken port stops the
	// start before the node joins the cluster.
	if o.pprofAddr != "" {
		stopPprof, err := startPprof(o.pprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	keyring, err := loadKeyring(o)
	if err != nil {
		return err
	}
	if err := cluster.WaitForStartSpace(ctx, o.dataDir, cluster.DefaultConfig().DiskReserveBytes, logger); err != nil {
		return err
	}
	sm, err := fsm.Open(fsm.Config{Dir: filepath.Join(o.dataDir, "fsm"), Keyring: keyring, MachineCacheEntries: o.machineCache}, logger)
	if err != nil {
		return err
	}
	defer sm.Close()
	if err := checkLocalRootKey(o, sm, logger); err != nil {
		return err
	}

	lookup, err := newGeoLookup(o.geoipDB)
	if err != nil {
		return err
	}
	if b, ok := lookup.(interface{ Build() string }); ok {
		o.geoBuild = b.Build()
	}

	alerts, err := newAlertWiring(o, sm, keyring, logger)
	if err != nil {
		return err
	}
	node, err := newClusterNode(o, sm, logger, alerts.leaderJobs()...)
	if err != nil {
		return err
	}
	if err := alerts.start(node); err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		return err
	}
	defer closeWithTimeout(node.Close)
	// Deferred after the node, so it runs first: the recorder writes what
	// it holds while the node can still reach the leader.
	defer closeWithTimeout(alerts.close)

	srv, err := newHTTPServer(o, node, sm, keyring, lookup, logger, alerts.httpOptions)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer closeWithTimeout(srv.Close)
	rootKeyMismatch, stopRootKeyWatch := startRootKeyWatch(ctx, node, sm, logger)
	defer stopRootKeyWatch()
	logger.Info("node started", "http_addr", srv.Addr(), "raft_addr", o.raftAddr, "gossip_addr", o.gossipAddr)

	if o.dev {
		if err := initDev(ctx, o, srv, sm, logger); err != nil {
			return err
		}
	}
	// A node whose root key differs from the cluster's stops: every read
	// it served would fail, and restarting it with the same key cannot help
	// (see docs/operations.md). Until it has stopped, the HTTP API responds
	// with 503 because the state machine recorded the mismatch.
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		return nil
	case err := <-rootKeyMismatch:
		return rootKeyStopError(o, err, logger)
	}
}

func closeWithTimeout(closeFn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = closeFn(ctx)
}

// loadKeyring reads the root key; with --dev it creates the key file first
// when it does not exist.
func loadKeyring(o serverOptions) (*seal.Keyring, error) {
	if o.dev {
		if _, err := os.Stat(o.rootKeyFile); errors.Is(err, os.ErrNotExist) {
			if err := seal.WriteRootKeyFile(o.rootKeyFile); err != nil {
				return nil, err
			}
		}
	}
	root, err := seal.ReadRootKeyFile(o.rootKeyFile)
	if err != nil {
		return nil, err
	}
	return seal.NewKeyring(root)
}

func newClusterNode(o serverOptions, sm *fsm.FSM, logger *slog.Logger, jobs ...func(context.Context)) (*cluster.Node, error) {
	cfg := cluster.DefaultConfig()
	cfg.NodeID = o.nodeID
	cfg.DataDir = o.dataDir
	cfg.RaftBindAddr = o.raftAddr
	cfg.RaftAdvertiseAddr = o.raftAdvertise
	cfg.GossipBindAddr = o.gossipAddr
	cfg.GossipAdvertiseAddr = o.gossipAdvertise
	cfg.Join = o.join
	cfg.BootstrapExpect = o.bootstrapExpect
	cfg.Voters = o.voters
	cfg.MaxStaleness = o.maxStaleness
	cfg.MaxClockSkew = o.maxClockSkew
	cfg.GeoBuild = o.geoBuild
	cfg.HTTPAdvertiseURL = advertisedHTTPURL(o)

	// The leader jobs need the node, which exists only once New returns;
	// they start after Start, when node is set.
	var node *cluster.Node
	sweep := cluster.DefaultSweepConfig()
	sweep.NodeID = o.nodeID
	cfg.LeaderJobs = append(cfg.LeaderJobs, func(ctx context.Context) {
		cluster.RunExpirySweep(ctx, node, sm, sweep, logger)
	})
	cfg.LeaderJobs = append(cfg.LeaderJobs, jobs...)
	if err := o.secureCluster(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	node, err := cluster.New(cfg, sm, logger)
	return node, err
}

// advertisedHTTPURL is the API URL carried in gossip metadata, so that
// operators and tools can find every node's API.
func advertisedHTTPURL(o serverOptions) string {
	if o.apiURL != "" {
		return o.apiURL
	}
	host, port, _ := net.SplitHostPort(o.httpAddr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		raftHost, _, _ := net.SplitHostPort(o.raftAddr)
		host = raftHost
	}
	scheme := "http://"
	if o.tls.apiTLSEnabled() {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}

func newHTTPServer(o serverOptions, node *cluster.Node, sm *fsm.FSM, keyring *seal.Keyring, lookup guard.GeoLookup, logger *slog.Logger,
	options ...func(*httpapi.Config)) (*httpapi.Server, error) {
	proxies, err := guard.ParseTrustedProxies(o.trustedProxies)
	if err != nil {
		return nil, fmt.Errorf("invalid --trusted-proxies: %w", err)
	}
	cfg := httpapi.DefaultConfig()
	cfg.Addr = o.httpAddr
	cfg.APIURL = o.apiURL
	cfg.NodeID = o.nodeID
	cfg.TrustedProxies = proxies
	cfg.TimestampWindow = o.timestampWindow
	cfg.MaxStaleness = o.maxStaleness
	cfg.Dev = o.dev
	if err := o.setBlockThrottle(&cfg); err != nil {
		return nil, err
	}
	if err := o.setVerification(&cfg); err != nil {
		return nil, err
	}
	for _, option := range options {
		option(&cfg)
	}
	if err := o.secureAPI(&cfg, node); err != nil {
		return nil, err
	}
	return httpapi.New(cfg, node, sm, keyring, lookup, logger)
}

// setBlockThrottle copies the --block-throttle-* flags into cfg, with an
// error that names the flag of a value out of range.
func (o *serverOptions) setBlockThrottle(cfg *httpapi.Config) error {
	t := o.blockThrottle
	switch {
	case t.MaxBlocks < 0:
		return fmt.Errorf("invalid --block-throttle-blocks %d: use 0 to turn the throttle off, or a positive count", t.MaxBlocks)
	case t.MaxBlocks == 0:
		cfg.DisableBlockThrottle = true
		return nil
	}
	t.MaxPairs = cfg.BlockThrottle.MaxPairs
	if err := t.Validate(); err != nil {
		return fmt.Errorf("invalid --block-throttle-blocks, --block-throttle-window or --block-throttle-cooldown: %w", err)
	}
	cfg.BlockThrottle = t
	return nil
}

// setVerification builds the key cache and the batch verifier from
// --key-cache-bytes and --verify-batch-size.
func (o *serverOptions) setVerification(cfg *httpapi.Config) error {
	if o.keyCacheBytes < 0 {
		return fmt.Errorf("invalid --key-cache-bytes %d: use 0 to cache no keys, or a positive byte count such as %d", o.keyCacheBytes, int64(guard.DefaultKeyCacheBytes))
	}
	if o.verifyBatch < 1 || o.verifyBatch > maxVerifyBatch {
		return fmt.Errorf("invalid --verify-batch-size %d: use 1 to verify each signature on its own, or up to %d", o.verifyBatch, maxVerifyBatch)
	}
	cfg.KeyCache = guard.NewKeyCache(o.keyCacheBytes)
	cfg.Verifier = guard.NewBatchVerifier(o.verifyBatch, 0)
	return nil
}

// maxVerifyBatch bounds --verify-batch-size. Past about 64 signatures a
// batch saves little more per signature and holds its requests longer.
const maxVerifyBatch = 1024

func newGeoLookup(path string) (guard.GeoLookup, error) {
	if path == "" {
		return geo.NewEmbedded(), nil
	}
	db, err := geo.OpenMMDB(path)
	if err != nil {
		return nil, fmt.Errorf("open --geoip-db %s: %w", path, err)
	}
	return db, nil
}

// initDev initialises a fresh dev cluster and writes the root token to
// <data-dir>/root-token, so that a first run needs no further step.
func initDev(ctx context.Context, o serverOptions, srv *httpapi.Server, sm *fsm.FSM, logger *slog.Logger) error {
	tokenFile := filepath.Join(o.dataDir, "root-token")
	if sm.Initialized() {
		logger.Info("dev node already initialised", "root_token_file", tokenFile)
		return nil
	}
	initCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	token, err := srv.Init(initCtx)
	if err != nil {
		return fmt.Errorf("initialise dev node: %w", err)
	}
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tokenFile, err)
	}
	fmt.Fprintf(os.Stderr, "\nKeyward dev node is ready at http://%s\nRoot token: %s\n(also in %s)\n\n",
		srv.Addr(), token, tokenFile)
	return nil
}
