package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/guard"
)

// Server is the HTTP API of one node. It reads the local FSM for every
// request and proposes writes through the cluster node.
type Server struct {
	cfg     Config
	node    *cluster.Node
	sm      *fsm.FSM
	keyring *seal.Keyring
	geo     guard.GeoLookup
	logger  *slog.Logger
	nodeID  string

	auditor        Auditor
	metrics        *metrics
	metricsHandler fasthttp.RequestHandler
	series         *requestSeries
	replay         *guard.ReplayCache
	keyCache       *guard.KeyCache
	verifier       *guard.BatchVerifier
	lockout        *guard.Lockout
	polls          *pollTracker
	routes         []*route
	httpServer     *fasthttp.Server

	// blockThrottle is nil when Config.DisableBlockThrottle is set.
	blockThrottle *guard.BlockThrottle

	lastSeen *lastSeenTracker
	// stopLastSeen ends the last-seen loop; lastSeenDone closes when the
	// loop has written its final batch.
	stopLastSeen context.CancelFunc
	lastSeenDone chan struct{}

	// untrustedForwardLogged makes the warning about X-Forwarded-For from
	// an untrusted peer appear once per process, not once per request.
	untrustedForwardLogged atomic.Bool

	mu sync.Mutex
	// listener is set by Start.
	listener net.Listener
}

// New builds a Server. node, sm and keyring are required; a nil geo means
// no address has a known country, so a country guardrail blocks every
// request.
func New(cfg Config, node *cluster.Node, sm *fsm.FSM, keyring *seal.Keyring, geo guard.GeoLookup, logger *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if node == nil || sm == nil || keyring == nil {
		return nil, errors.New("httpapi: New needs a cluster node, an FSM and a keyring; one of them is nil")
	}
	if geo == nil {
		geo = noGeo{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	s := &Server{
		cfg:      cfg,
		node:     node,
		sm:       sm,
		keyring:  keyring,
		geo:      geo,
		logger:   logger.With("component", "httpapi"),
		nodeID:   cfg.NodeID,
		auditor:  cfg.Auditor,
		metrics:  newMetrics(),
		lastSeen: newLastSeenTracker(),
		replay:   cfg.ReplayCache,
		lockout:  node.Lockout(),
		polls:    newPollTracker(defaultPollTrackerLimit),
	}
	if s.nodeID == "" {
		s.nodeID = node.NodeID()
	}
	if s.auditor == nil {
		s.auditor = logAuditor{logger: logger.With("component", "audit")}
	}
	if s.replay == nil {
		s.replay = node.ReplayCache()
	}
	if s.replay == nil {
		s.replay = guard.NewReplayCache(cfg.TimestampWindow)
	}
	if s.lockout == nil {
		s.lockout = guard.NewLockout(cfg.Lockout)
	}
	s.keyCache = cfg.KeyCache
	if s.keyCache == nil {
		s.keyCache = guard.NewKeyCache(guard.DefaultKeyCacheBytes)
	}
	s.verifier = cfg.Verifier
	if s.verifier == nil {
		s.verifier = guard.NewBatchVerifier(guard.DefaultMaxBatch, 0)
	}
	if !cfg.DisableBlockThrottle {
		s.blockThrottle = guard.NewBlockThrottle(cfg.BlockThrottle)
	}
	if err := s.setUpMetrics(); err != nil {
		return nil, err
	}

	s.routes = s.buildRoutes()
	s.httpServer = s.newFastHTTPServer()
	return s, nil
}

func (s *Server) setUpMetrics() error {
	reg := s.cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := s.metrics.register(reg); err != nil {
		return err
	}
	if err := registerVerifyMetrics(reg, s.keyCache, s.verifier); err != nil {
		return err
	}
	if err := registerMachineCacheMetrics(reg, s.sm); err != nil {
		return err
	}
	s.series = newRequestSeries(s.metrics)
	s.metricsHandler = newMetricsHandler(reg)
	return nil
}

// newFastHTTPServer configures fasthttp. Header names are normalised, so
// PeekAll finds a header whatever case the client used. Routing never uses
// ctx.Path(), which fasthttp decodes and normalises; it uses the raw
// request-target, so no path-normalisation option matters here.
func (s *Server) newFastHTTPServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       s.serveHTTP,
		ErrorHandler:                  s.handleTransportError,
		NoDefaultServerHeader:         true,
		DisableHeaderNamesNormalizing: false,
		DisablePreParseMultipartForm:  true,
		ReadBufferSize:                s.cfg.ReadBufferSize,
		MaxRequestBodySize:            s.cfg.MaxBodyBytes,
		ReadTimeout:                   s.cfg.ReadTimeout,
		WriteTimeout:                  s.cfg.WriteTimeout,
		IdleTimeout:                   s.cfg.IdleTimeout,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{s.logger},
		HeaderReceived:                s.requestConfig,
	}
}

// Start listens on Config.Addr and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("httpapi: listen on %s: %w", s.cfg.Addr, err)
	}
	if tlsConfig := s.cfg.serverTLS(); tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}

	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()

	s.logger.Info("http api listening", "addr", ln.Addr().String(), "tls", s.cfg.TLS != nil)
	s.startLastSeen()
	go func() {
		if err := s.httpServer.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			s.logger.Error("http api stopped", "err", err)
		}
	}()
	return nil
}

// Close stops accepting connections and waits, until ctx ends, for
// requests in flight to finish.
func (s *Server) Close(ctx context.Context) error {
	if err := s.httpServer.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("httpapi: shut down: %w", err)
	}
	s.stopLastSeenLoop(ctx)
	s.logger.Info("http api stopped")
	return nil
}

// Addr returns the address the server listens on, with the port chosen by
// the system when Config.Addr asked for port 0. Before Start it returns
// Config.Addr.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return s.cfg.Addr
	}
	return s.listener.Addr().String()
}

// Handler returns the request handler, for serving the API on a listener
// of the caller's choice (fasthttp.Server.Serve). For requests that fasthttp
// cannot read (body or headers too large), the ErrorHandler of the caller's
// server responds, not this handler. See TransportErrorHandler.
func (s *Server) Handler() fasthttp.RequestHandler {
	return s.serveHTTP
}

// TransportErrorHandler returns the fasthttp ErrorHandler that responds to
// requests fasthttp could not read with 413, 431, 408 or 400.
func (s *Server) TransportErrorHandler() func(*fasthttp.RequestCtx, error) {
	return s.handleTransportError
}

// serveHTTP is the entry point of every request.
func (s *Server) serveHTTP(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	rc := s.newRequest(ctx)
	defer releaseRequest(rc)
	defer s.finish(rc, start)
	defer s.recoverPanic(rc)

	if err := s.dispatch(rc); err != nil {
		s.writeError(rc, err)
	}
}

// newRequest starts the per-request state and the headers that every
// response carries.
func (s *Server) newRequest(ctx *fasthttp.RequestCtx) *request {
	rc := acquireRequest()
	rc.ctx, rc.now = ctx, s.cfg.Now()
	ctx.Response.Header.Set("X-Request-Id", rc.id)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	return rc
}

// finish records the request's metrics.
func (s *Server) finish(rc *request, start time.Time) {
	status := rc.ctx.Response.StatusCode()
	s.series.requestCounter(rc.plane, status).Inc()
	s.series.duration[rc.plane].Observe(time.Since(start).Seconds())
	if rc.signed {
		result := rc.result
		if result == "" {
			result = machineResult(status)
		}
		s.series.machineCounter(result).Inc()
	}
}

// recoverPanic turns a handler panic into a logged 500, as a last resort:
// handlers return errors for every input they reject.
func (s *Server) recoverPanic(rc *request) {
	r := recover()
	if r == nil {
		return
	}
	s.metrics.panics.Inc()
	s.logger.Error("handler panic", "request_id", rc.id, "route", rc.routeName(),
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))

	rc.ctx.Response.Reset()
	rc.ctx.Response.Header.Set("X-Request-Id", rc.id)
	s.writeError(rc, fmt.Errorf("httpapi: panic: %v", r))
}

// noGeo is the GeoLookup used when none is configured: no address has a
// known country.
type noGeo struct{}

func (noGeo) Country(netip.Addr) (string, bool) { return "", false }

// fasthttpLogger sends fasthttp's own messages (connection errors) to slog
// at debug level, since they are per-connection detail.
type fasthttpLogger struct{ logger *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.logger.Debug("fasthttp", "message", fmt.Sprintf(format, args...))
}
