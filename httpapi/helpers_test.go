package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/guard/geo"
)

// Source addresses of test connections. Every address in 127.0.0.0/8 is
// local on Linux, so a test can choose the TCP peer address of its
// request. proxySource is configured as the one trusted proxy.
const (
	defaultSource = "127.0.0.1"
	proxySource   = "127.0.0.2"
)

// testLockout allows enough failures that tests sharing a source address
// do not lock each other out; the lockout test uses its own address.
var testLockout = guard.LockoutConfig{MaxFailures: 25, Window: time.Minute, Duration: 5 * time.Minute, MaxSources: 1000}

var (
	sharedOnce sync.Once
	shared     *testEnv
	sharedErr  error
)

// TestMain closes the shared environment after every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	os.Exit(code)
}

// testClock is the injected clock: real time unless a test freezes it.
type testClock struct {
	mu     sync.Mutex
	frozen time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen.IsZero() {
		return time.Now()
	}
	return c.frozen
}

// freeze sets the clock to at until the test ends.
func (c *testClock) freeze(t *testing.T, at time.Time) {
	t.Helper()
	c.mu.Lock()
	c.frozen = at
	c.mu.Unlock()
	t.Cleanup(func() {
		c.mu.Lock()
		c.frozen = time.Time{}
		c.mu.Unlock()
	})
}

// recordingAuditor hands events to a goroutine, as an asynchronous audit
// writer would, and keeps them for assertions.
type recordingAuditor struct {
	queue chan AuditEvent
	done  chan struct{}

	mu     sync.Mutex
	events []AuditEvent
}

func newRecordingAuditor() *recordingAuditor {
	a := &recordingAuditor{queue: make(chan AuditEvent, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for ev := range a.queue {
			a.mu.Lock()
			a.events = append(a.events, ev)
			a.mu.Unlock()
		}
	}()
	return a
}

func (a *recordingAuditor) Record(ev AuditEvent) { a.queue <- ev }

func (a *recordingAuditor) close() {
	close(a.queue)
	<-a.done
}

// byRequest waits until an event with the action exists for requestID.
func (a *recordingAuditor) byRequest(t *testing.T, requestID, action string) AuditEvent {
	t.Helper()
	var found AuditEvent
	waitFor(t, 5*time.Second, "audit event "+action+" for request "+requestID, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, ev := range a.events {
			if ev.RequestID == requestID && ev.Action == action {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// count returns the number of events with action for requestID.
func (a *recordingAuditor) count(requestID, action string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, ev := range a.events {
		if ev.RequestID == requestID && ev.Action == action {
			n++
		}
	}
	return n
}

// snapshot returns a copy of every event so far.
func (a *recordingAuditor) snapshot() []AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AuditEvent(nil), a.events...)
}

// testEnv is a real single-node cluster, a real FSM on disk and a real
// server on a loopback listener.
type testEnv struct {
	dir     string
	sm      *fsm.FSM
	node    *cluster.Node
	keyring *seal.Keyring
	srv     *Server
	addr    string
	clock   *testClock
	audit   *recordingAuditor
	root    string
}

// sharedEnv returns the environment that tests share; each test works in
// its own vault.
func sharedEnv(t *testing.T) *testEnv {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = startEnv() })
	if sharedErr != nil {
		t.Fatalf("start test environment: %v", sharedErr)
	}
	return shared
}

func testLogger() *slog.Logger {
	if os.Getenv("KEYWARD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startEnv() (*testEnv, error) {
	dir, err := os.MkdirTemp("", "keyward-httpapi-")
	if err != nil {
		return nil, err
	}
	e := &testEnv{dir: dir, clock: &testClock{}, audit: newRecordingAuditor()}
	if err := e.startCluster(); err != nil {
		e.close()
		return nil, err
	}
	if err := e.startServer(); err != nil {
		e.close()
		return nil, err
	}
	if err := e.initialize(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *testEnv) startCluster() error {
	root := make([]byte, 32)
	if _, err := rand.Read(root); err != nil {
		return err
	}
	keyring, err := seal.NewKeyring(root)
	if err != nil {
		return err
	}
	e.keyring = keyring

	fcfg := fsm.DefaultConfig()
	fcfg.Dir = filepath.Join(e.dir, "fsm")
	fcfg.Keyring = keyring
	if e.sm, err = fsm.Open(fcfg, testLogger()); err != nil {
		return err
	}

	ccfg := cluster.DefaultConfig()
	ccfg.NodeID = "node-1"
	ccfg.DataDir = filepath.Join(e.dir, "data")
	ccfg.RaftBindAddr = "127.0.0.1:0"
	ccfg.GossipBindAddr = "127.0.0.1:0"
	ccfg.BootstrapExpect = 1
	if e.node, err = cluster.New(ccfg, e.sm, testLogger()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.node.Start(ctx); err != nil {
		return err
	}
	// Ready also covers the nonce pull and the catch-up after a start;
	// machine requests before it get 503.
	for !e.node.IsLeader() || !e.node.Ready() {
		if ctx.Err() != nil {
			return fmt.Errorf("not the ready leader after 20s (leader %v, ready %v)", e.node.IsLeader(), e.node.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (e *testEnv) startServer() error {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Now = e.clock.Now
	cfg.Auditor = e.audit
	cfg.Lockout = testLockout
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(proxySource + "/32")}
	srv, err := New(cfg, e.node, e.sm, e.keyring, geo.NewEmbedded(), testLogger())
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	e.srv, e.addr = srv, srv.Addr()
	return nil
}

func (e *testEnv) initialize() error {
	resp, err := e.send(defaultSource, "POST", "/v1/sys/init", nil, []byte(`{}`))
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("init: status %d: %s", resp.status, resp.body)
	}
	var out struct {
		RootToken string `json:"rootToken"`
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return err
	}
	e.root = out.RootToken
	return nil
}

func (e *testEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.srv != nil {
		_ = e.srv.Close(ctx)
	}
	if e.node != nil {
		_ = e.node.Close(ctx)
	}
	if e.sm != nil {
		_ = e.sm.Close()
	}
	e.audit.close()
	_ = os.RemoveAll(e.dir)
}

// response is a parsed HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// header is one request header line, kept in order so that tests can send
// duplicates and any letter case.
type header struct{ name, value string }

// send writes one raw HTTP/1.1 request from the loopback address src and
// reads the response. target is sent exactly as given, so tests control
// every byte of the request-target. A nil body sends no Content-Length.
func (e *testEnv) send(src, method, target string, headers []header, body []byte) (response, error) {
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, e.addr)
	hasLength := false
	for _, h := range headers {
		fmt.Fprintf(&req, "%s: %s\r\n", h.name, h.value)
		lower := strings.ToLower(h.name)
		hasLength = hasLength || lower == "content-length" || lower == "transfer-encoding"
	}
	if body != nil && !hasLength {
		fmt.Fprintf(&req, "Content-Length: %d\r\n", len(body))
	}
	req.WriteString("\r\n")
	req.Write(body)
	return e.sendRaw(src, req.Bytes())
}

// sendRaw writes request bytes as they are and reads one response.
func (e *testEnv) sendRaw(src string, request []byte) (response, error) {
	dialer := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := dialer.Dial("tcp", e.addr)
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write(request); err != nil {
		return response{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// mustSend is send that fails the test on a transport error.
func (e *testEnv) mustSend(t *testing.T, src, method, target string, headers []header, body []byte) response {
	t.Helper()
	resp, err := e.send(src, method, target, headers, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

// admin sends an admin request with the root token.
func (e *testEnv) admin(t *testing.T, method, path string, in any) response {
	t.Helper()
	return e.adminAs(t, e.root, method, path, in)
}

// adminAs sends an admin request with token; in is marshalled to JSON
// unless it is nil or already bytes.
func (e *testEnv) adminAs(t *testing.T, token, method, path string, in any) response {
	t.Helper()
	var body []byte
	switch v := in.(type) {
	case nil:
	case []byte:
		body = v
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatalf("encode request: %v", err)
		}
	}
	headers := []header{{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}}
	return e.mustSend(t, defaultSource, method, path, headers, body)
}

// adminOK sends an admin request, requires want and decodes the body.
func (e *testEnv) adminOK(t *testing.T, want int, method, path string, in, out any) {
	t.Helper()
	resp := e.admin(t, method, path, in)
	if resp.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.status, want, resp.body)
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, resp.body, err)
		}
	}
}

// testMachine is a registered machine identity with its private key.
type testMachine struct {
	id    string
	vault string
	key   ed25519.PrivateKey
}

// canonical builds the signed bytes independently of guard, so the tests
// check the server against the protocol text, not against itself.
func canonical(method, path, timestamp, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return []byte(method + ":" + path + ":" + timestamp + ":" + nonce + ":" + hex.EncodeToString(sum[:]))
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// signedHeaders returns the four signed-request headers for a request at
// the Unix second ts.
func (m testMachine) signedHeaders(method, path string, body []byte, ts int64) []header {
	timestamp := strconv.FormatInt(ts, 10)
	nonce := newNonce()
	sig := ed25519.Sign(m.key, canonical(method, path, timestamp, nonce, body))
	return []header{
		{"X-Machine-Id", m.id},
		{"X-Timestamp", timestamp},
		{"X-Nonce", nonce},
		{"X-Signature", base64.StdEncoding.EncodeToString(sig)},
	}
}

// signed sends a correctly signed request at the clock's current time.
func (e *testEnv) signed(t *testing.T, src string, m testMachine, method, path string, body []byte) response {
	t.Helper()
	headers := m.signedHeaders(method, path, body, e.clock.Now().Unix())
	if body != nil {
		headers = append(headers, header{"Content-Type", "application/json"})
	}
	return e.mustSend(t, src, method, path, headers, body)
}

// fixture is a vault with one project, one plain and one structured secret.
type fixture struct {
	vault, project       string
	secret, structured   string
	value                string
	structuredFieldsJSON string
}

func (e *testEnv) newFixture(t *testing.T) fixture {
	t.Helper()
	var f fixture
	f.vault = e.newVault(t)
	f.project = e.newProject(t, f.vault, "payments")
	f.value = "s3cr3t-" + newNonce()
	f.secret = e.newSecret(t, f.vault, f.project, map[string]any{"name": "db-password", "value": f.value})
	f.structured = e.newSecret(t, f.vault, f.project, map[string]any{
		"name": "db", "fields": map[string]string{"user": "app", "host": "db.internal"},
	})
	f.structuredFieldsJSON = `{"host":"db.internal","user":"app"}`
	return f
}

func (e *testEnv) newVault(t *testing.T) string {
	t.Helper()
	var v struct{ ID string }
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults", map[string]string{"name": "vault " + newNonce()[:8]}, &v)
	return v.ID
}

func (e *testEnv) newProject(t *testing.T, vault, name string) string {
	t.Helper()
	var p struct{ ID string }
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults/"+vault+"/projects", map[string]string{"name": name}, &p)
	return p.ID
}

func (e *testEnv) newSecret(t *testing.T, vault, project string, in map[string]any) string {
	t.Helper()
	var s struct{ ID string }
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults/"+vault+"/projects/"+project+"/secrets", in, &s)
	return s.ID
}

// issuedToken returns a new standard bootstrap token of vault.
func (e *testEnv) bootstrapToken(t *testing.T, vault string) string {
	t.Helper()
	var out issuedToken
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults/"+vault+"/bootstrap-tokens", map[string]any{}, &out)
	return out.Token
}

// register creates a key pair and registers it at path (a register route).
func (e *testEnv) register(t *testing.T, path, hostname string) (testMachine, registerResponse, response) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(registerRequest{PublicKey: base64.StdEncoding.EncodeToString(pub), Hostname: hostname})
	resp := e.mustSend(t, defaultSource, "POST", path, []header{{"Content-Type", "application/json"}}, body)
	var out registerResponse
	if resp.status == http.StatusCreated {
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatalf("decode registration %s: %v", resp.body, err)
		}
	}
	return testMachine{id: out.MachineID, vault: out.VaultID, key: priv}, out, resp
}

// newMachine registers a standard machine in vault; it stays pending.
func (e *testEnv) newMachine(t *testing.T, vault string) testMachine {
	t.Helper()
	token := e.bootstrapToken(t, vault)
	m, _, resp := e.register(t, "/v1/bootstrap/"+token+"/register", "host-"+newNonce()[:6])
	if resp.status != http.StatusCreated {
		t.Fatalf("register: status %d: %s", resp.status, resp.body)
	}
	return m
}

func (e *testEnv) machinePath(m testMachine) string {
	return "/v1/admin/vaults/" + m.vault + "/machines/" + m.id
}

func (e *testEnv) approve(t *testing.T, m testMachine) {
	t.Helper()
	e.adminOK(t, http.StatusOK, "POST", e.machinePath(m)+"/approve", map[string]any{}, nil)
}

func (e *testEnv) attach(t *testing.T, m testMachine, project string) {
	t.Helper()
	e.adminOK(t, http.StatusOK, "POST", e.machinePath(m)+"/projects", map[string]string{"projectId": project}, nil)
}

func (e *testEnv) grant(t *testing.T, m testMachine, secrets ...string) {
	t.Helper()
	if secrets == nil {
		secrets = []string{}
	}
	e.adminOK(t, http.StatusOK, "PUT", e.machinePath(m)+"/grants", map[string]any{"secretIds": secrets}, nil)
}

// readyMachine returns a fixture and an approved machine attached to its
// project with both secrets granted.
func (e *testEnv) readyMachine(t *testing.T) (fixture, testMachine) {
	t.Helper()
	f := e.newFixture(t)
	m := e.newMachine(t, f.vault)
	e.approve(t, m)
	e.attach(t, m, f.project)
	e.grant(t, m, f.secret, f.structured)
	return f, m
}

// machine returns the machine as the admin plane shows it.
func (e *testEnv) machine(t *testing.T, m testMachine) machineView {
	t.Helper()
	var v machineView
	e.adminOK(t, http.StatusOK, "GET", e.machinePath(m), nil, &v)
	return v
}

// errorText decodes {"error"} and fails unless the body has exactly that
// one key, which is the machine-plane error shape.
func machineError(t *testing.T, resp response) string {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(resp.body, &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", resp.body, err)
	}
	msg, ok := body["error"].(string)
	if !ok || len(body) != 1 {
		t.Fatalf("error body %s, want exactly {\"error\":\"…\"}", resp.body)
	}
	return msg
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectStatus fails the test when resp has another status.
func expectStatus(t *testing.T, resp response, want int) {
	t.Helper()
	if resp.status != want {
		t.Fatalf("status %d, want %d; body %s", resp.status, want, resp.body)
	}
}
