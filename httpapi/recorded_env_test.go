package httpapi

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/cluster/audit"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/guard/geo"
)

// recordedEnv is a single-node cluster whose server writes audit events
// through a real audit.Recorder into the replicated log, as a production
// node does, optionally with the leader's webhook delivery running.
type recordedEnv struct {
	*testEnv
	rec        *audit.Recorder
	auditStats *audit.Metrics
	// gate holds the recorder's writes while it is closed.
	gate *applyGate
}

// recordedOptions adjust a recordedEnv before it starts.
type recordedOptions struct {
	server   func(*Config)
	recorder func(*audit.RecorderConfig)
	// delivery, when set, runs webhook delivery with this change to the
	// test delivery config.
	delivery func(*audit.DeliveryConfig)
}

// applyGate passes the recorder's proposals to the node, and holds them
// while closed, as a stalled disk or a lost quorum would.
type applyGate struct {
	node *cluster.Node
	mu   sync.Mutex
	open chan struct{}
}

func newApplyGate() *applyGate {
	g := &applyGate{open: make(chan struct{})}
	close(g.open)
	return g
}

// Apply waits for the gate to open, then proposes cmd.
func (g *applyGate) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.node.Apply(ctx, cmd)
}

// hold closes the gate until release is called.
func (g *applyGate) hold() (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	g.open = ch
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// startRecordedEnv starts a recordedEnv and stops it when the test ends.
func startRecordedEnv(t testing.TB, opts recordedOptions) *recordedEnv {
	t.Helper()
	e := &testEnv{dir: t.TempDir(), clock: &testClock{}, audit: newRecordingAuditor()}
	root := make([]byte, 32)
	if _, err := rand.Read(root); err != nil {
		t.Fatal(err)
	}
	keyring, err := seal.NewKeyring(root)
	if err != nil {
		t.Fatal(err)
	}
	e.keyring = keyring
	fcfg := fsm.DefaultConfig()
	fcfg.Dir = filepath.Join(e.dir, "fsm")
	fcfg.Keyring = keyring
	if e.sm, err = fsm.Open(fcfg, testLogger()); err != nil {
		t.Fatal(err)
	}
	re := &recordedEnv{testEnv: e, auditStats: audit.NewMetrics(), gate: newApplyGate()}
	t.Cleanup(re.close)

	var dispatcher *audit.Dispatcher
	// The dispatcher writes its outcomes through a gate that is never
	// held: only the recorder's writes can be stalled.
	deliveryApplier := newApplyGate()
	ccfg := cluster.DefaultConfig()
	if opts.delivery != nil {
		dcfg := audit.DefaultDeliveryConfig()
		dcfg.NodeID = "node-1"
		dcfg.AllowLoopback = true
		dcfg.PollInterval = 50 * time.Millisecond
		dcfg.FlushInterval = 50 * time.Millisecond
		dcfg.BackoffBase = 50 * time.Millisecond
		dcfg.BackoffMax = 200 * time.Millisecond
		opts.delivery(&dcfg)
		dispatcher, err = audit.NewDispatcher(dcfg, deliveryApplier, e.sm, keyring, re.auditStats, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		ccfg.LeaderJobs = []func(context.Context){dispatcher.RunWebhooks}
	}
	ccfg.NodeID = "node-1"
	ccfg.DataDir = filepath.Join(e.dir, "data")
	ccfg.RaftBindAddr = "127.0.0.1:0"
	ccfg.GossipBindAddr = "127.0.0.1:0"
	ccfg.BootstrapExpect = 1
	if e.node, err = cluster.New(ccfg, e.sm, testLogger()); err != nil {
		t.Fatal(err)
	}
	re.gate.node, deliveryApplier.node = e.node, e.node
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Ready also covers the nonce pull and the catch-up after a start;
	// machine requests before it get 503.
	for !e.node.IsLeader() || !e.node.Ready() {
		if ctx.Err() != nil {
			t.Fatalf("not the ready leader after 20s (leader %v, ready %v)", e.node.IsLeader(), e.node.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}

	rcfg := audit.DefaultRecorderConfig()
	rcfg.NodeID = "node-1"
	rcfg.FlushInterval = 20 * time.Millisecond
	if opts.recorder != nil {
		opts.recorder(&rcfg)
	}
	if re.rec, err = audit.NewRecorder(rcfg, re.gate, re.auditStats, testLogger()); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Now = e.clock.Now
	cfg.Auditor = RecorderAuditor(re.rec)
	cfg.Lockout = testLockout
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(proxySource + "/32")}
	cfg.Delivery = dispatcher
	cfg.Registry = prometheus.NewRegistry()
	if opts.server != nil {
		opts.server(&cfg)
	}
	if e.srv, err = New(cfg, e.node, e.sm, e.keyring, geo.NewEmbedded(), testLogger()); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	e.addr = e.srv.Addr()
	if err := e.initialize(); err != nil {
		t.Fatal(err)
	}
	return re
}

func (re *recordedEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if re.srv != nil {
		_ = re.srv.Close(ctx)
	}
	if re.rec != nil {
		_ = re.rec.Close(ctx)
	}
	if re.node != nil {
		_ = re.node.Close(ctx)
	}
	if re.sm != nil {
		_ = re.sm.Close()
	}
	re.audit.close()
}

// syncAudit writes every event the recorder holds, open windows included.
func (re *recordedEnv) syncAudit(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := re.rec.Sync(ctx, true); err != nil {
		t.Fatalf("sync the audit recorder: %v", err)
	}
}

// entries returns every entry of the vault with one of the actions,
// oldest first, paging through the log.
func (re *recordedEnv) entries(t *testing.T, vault string, actions ...string) []fsm.AuditEntry {
	t.Helper()
	var out []fsm.AuditEntry
	q := fsm.AuditQuery{VaultID: fsm.VaultID(vault), Actions: actions, Ascending: true, Limit: fsm.MaxAuditLimit, MaxScan: 1_000_000}
	for {
		page, err := re.sm.QueryAudit(q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Entries...)
		if page.NextCursor == 0 {
			return out
		}
		q.Cursor = page.NextCursor
	}
}

// counterValue reads a Prometheus counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// signedRequest is a request signed ahead of sending.
type signedRequest struct {
	path    string
	headers []header
}

// presign signs n reads of path by m, with X-Forwarded-For set by
// forwarded when it is not nil.
func (e *testEnv) presign(m testMachine, path string, n int, forwarded func(i int) string) []signedRequest {
	reqs := make([]signedRequest, n)
	ts := e.clock.Now().Unix()
	for i := range reqs {
		h := m.signedHeaders("GET", path, nil, ts)
		if forwarded != nil {
			h = append(h, header{"X-Forwarded-For", forwarded(i)})
		}
		reqs[i] = signedRequest{path: path, headers: h}
	}
	return reqs
}

// loopbackClient sends keep-alive requests from the local address src
// with up to conns connections.
type loopbackClient struct {
	base      string
	client    *http.Client
	transport *http.Transport
}

func newLoopbackClient(addr, src string, conns int) *loopbackClient {
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	tr := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	return &loopbackClient{base: "http://" + addr, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, transport: tr}
}

// do sends one request and returns its status and body.
func (c *loopbackClient) do(r signedRequest) (int, string, error) {
	req, err := http.NewRequest("GET", c.base+r.path, nil)
	if err != nil {
		return 0, "", err
	}
	for _, h := range r.headers {
		req.Header.Set(h.name, h.value)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, body.String(), nil
}

// close ends the client's idle connections.
func (c *loopbackClient) close() { c.transport.CloseIdleConnections() }

// burstResult sums up the responses of a burst.
type burstResult struct {
	statuses map[int]int
	bodies   map[string]int
	errors   int
	maxTime  time.Duration
}

// sendAll sends every request over conns workers and counts the responses.
func (c *loopbackClient) sendAll(reqs []signedRequest, conns int) burstResult {
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
		res  = burstResult{statuses: map[int]int{}, bodies: map[string]int{}}
	)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				start := time.Now()
				status, body, err := c.do(reqs[i])
				took := time.Since(start)
				mu.Lock()
				if err != nil {
					res.errors++
				} else {
					res.statuses[status]++
					res.bodies[strings.TrimSpace(body)]++
				}
				res.maxTime = max(res.maxTime, took)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// readLoop sends allowed reads of m from src every interval until stop is
// closed, and returns how many succeeded, the failures and the slowest.
func (e *testEnv) readLoop(m testMachine, path, src string, interval time.Duration, stop <-chan struct{}) (ok int, failures []string, slowest time.Duration) {
	c := newLoopbackClient(e.addr, src, 1)
	defer c.close()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return ok, failures, slowest
		case <-tick.C:
		}
		req := e.presign(m, path, 1, nil)[0]
		start := time.Now()
		status, body, err := c.do(req)
		slowest = max(slowest, time.Since(start))
		switch {
		case err != nil:
			failures = append(failures, err.Error())
		case status != http.StatusOK:
			failures = append(failures, fmt.Sprintf("status %d: %s", status, body))
		default:
			ok++
		}
	}
}
