package main

import (
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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in this package run the real keyward binary: it is built once
// per test run into a temporary folder.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func keywardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyward-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "keyward")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePorts reserves n distinct TCP ports on 127.0.0.1 that are also free
// for UDP, since memberlist listens on both.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var holds []io.Closer
	defer func() {
		for _, h := range holds {
			h.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			l.Close()
			continue
		}
		holds = append(holds, l, u)
		ports = append(ports, port)
	}
	return ports
}

// testNode is one keyward server process.
type testNode struct {
	id         string
	dir        string
	httpAddr   string
	raftAddr   string
	gossipAddr string
	args       []string
	cmd        *exec.Cmd
	log        *bytes.Buffer
	done       chan struct{}
}

func (n *testNode) url() string { return "http://" + n.httpAddr }

// testCluster is a set of keyward server processes on loopback.
type testCluster struct {
	t       *testing.T
	bin     string
	rootKey string
	nodes   []*testNode
	token   string
}

// startCluster starts n nodes that form one cluster with --bootstrap-expect.
// extra flags are given to every node.
func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: keywardBinary(t)}
	base := t.TempDir()
	c.rootKey = filepath.Join(base, "root-key")
	out, err := exec.Command(c.bin, "root-key", "new", c.rootKey).CombinedOutput()
	if err != nil {
		t.Fatalf("keyward root-key new: %v\n%s", err, out)
	}

	ports := freePorts(t, 3*n)
	for i := 0; i < n; i++ {
		node := &testNode{
			id:         fmt.Sprintf("node%d", i+1),
			dir:        filepath.Join(base, fmt.Sprintf("node%d", i+1)),
			httpAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			raftAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			gossipAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
		}
		c.nodes = append(c.nodes, node)
	}
	for _, node := range c.nodes {
		node.args = []string{"server",
			"--node-id", node.id,
			"--data-dir", node.dir,
			"--http-addr", node.httpAddr,
			"--raft-addr", node.raftAddr,
			"--gossip-addr", node.gossipAddr,
			"--bootstrap-expect", strconv.Itoa(n),
			"--root-key-file", c.rootKey,
			"--log-level", "debug",
		}
		if n > 1 {
			node.args = append(node.args, "--join", c.nodes[0].gossipAddr)
		}
		node.args = append(node.args, extra...)
		c.start(node)
	}
	t.Cleanup(c.stopAll)
	c.waitLeader()
	return c
}

func (c *testCluster) start(n *testNode) {
	c.t.Helper()
	n.log = &bytes.Buffer{}
	n.cmd = exec.Command(c.bin, n.args...)
	n.cmd.Stdout = n.log
	n.cmd.Stderr = n.log
	if err := n.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.id, err)
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(n.cmd, n.done)
}

// kill stops a node with SIGKILL and waits for the process to exit.
func (c *testCluster) kill(n *testNode) {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// stop stops a node with SIGTERM, the way an operator would.
func (c *testCluster) stop(n *testNode) {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		c.t.Errorf("%s did not stop within 20 s after SIGTERM", n.id)
		c.kill(n)
	}
}

func (c *testCluster) stopAll() {
	for _, n := range c.nodes {
		if n.cmd != nil && n.cmd.ProcessState == nil {
			c.kill(n)
		}
		if c.t.Failed() {
			c.t.Logf("--- log of %s ---\n%s", n.id, tail(n.log.String(), 60))
		}
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

type health struct {
	NodeID       string `json:"nodeId"`
	State        string `json:"state"`
	LeaderID     string `json:"leaderId"`
	AppliedIndex uint64 `json:"appliedIndex"`
	Ready        bool   `json:"ready"`
}

func (c *testCluster) health(n *testNode) (health, error) {
	var h health
	resp, err := httpClient.Get(n.url() + "/v1/sys/health")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}

// waitLeader waits until every running node names the same leader and
// returns the leader's node.
func (c *testCluster) waitLeader(skip ...*testNode) *testNode {
	c.t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		leader, ok := c.agreedLeader(skip)
		if ok {
			return leader
		}
		last = "the running nodes do not name one leader"
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("waiting for a leader: %s", last)
	return nil
}

func (c *testCluster) agreedLeader(skip []*testNode) (*testNode, bool) {
	leaderID := ""
	for _, n := range c.running(skip) {
		h, err := c.health(n)
		// A node serves admin and machine requests only once ready.
		if err != nil || h.LeaderID == "" || !h.Ready {
			return nil, false
		}
		if leaderID != "" && h.LeaderID != leaderID {
			return nil, false
		}
		leaderID = h.LeaderID
	}
	for _, n := range c.nodes {
		if n.id == leaderID {
			return n, true
		}
	}
	return nil, false
}

func (c *testCluster) running(skip []*testNode) []*testNode {
	var out []*testNode
	for _, n := range c.nodes {
		skipped := false
		for _, s := range skip {
			skipped = skipped || s == n
		}
		if !skipped {
			out = append(out, n)
		}
	}
	return out
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

// admin sends an operator request and decodes the JSON response into out when
// out is not nil. It returns the status code.
func (c *testCluster) admin(n *testNode, method, path string, in, out any) int {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.url()+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, n.id, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// mustAdmin is admin that fails the test unless the status is want.
func (c *testCluster) mustAdmin(n *testNode, want int, method, path string, in, out any) {
	c.t.Helper()
	if got := c.admin(n, method, path, in, out); got != want {
		c.t.Fatalf("%s %s on %s: status %d, want %d", method, path, n.id, got, want)
	}
}

// machineKey is a workload identity used by the tests to sign requests.
type machineKey struct {
	id   string
	priv ed25519.PrivateKey
}

// newMachineKey generates a keypair; the caller sets id after registration.
func newMachineKey(t *testing.T) machineKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return machineKey{priv: priv}
}

// publicKeyBase64 is the raw public key in standard base64, as registration
// takes it.
func (m machineKey) publicKeyBase64() string {
	return base64.StdEncoding.EncodeToString(m.priv.Public().(ed25519.PublicKey))
}

// readFileTrim returns a file's content without surrounding white space.
func readFileTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// signedGet sends a signed GET of path to node and returns the status and
// body.
func signedGet(t *testing.T, n *testNode, m machineKey, path string) (int, []byte) {
	t.Helper()
	return signedDo(t, n, m, http.MethodGet, path, nil)
}

func signedDo(t *testing.T, n *testNode, m machineKey, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, n.url()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range signHeaders(m, method, path, body, time.Now()) {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// signHeaders builds the four signature headers over
// METHOD:PATH:TIMESTAMP:NONCE:hex(sha256(body)).
func signHeaders(m machineKey, method, path string, body []byte, now time.Time) map[string]string {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonceBytes := make([]byte, 12)
	_, _ = rand.Read(nonceBytes)
	nonce := hex.EncodeToString(nonceBytes)
	sum := sha256.Sum256(body)
	msg := method + ":" + path + ":" + ts + ":" + nonce + ":" + hex.EncodeToString(sum[:])
	sig := ed25519.Sign(m.priv, []byte(msg))
	return map[string]string{
		"X-Machine-Id": m.id,
		"X-Timestamp":  ts,
		"X-Nonce":      nonce,
		"X-Signature":  base64.StdEncoding.EncodeToString(sig),
	}
}

// eventually polls cond until it returns "" or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	msg := ""
	for time.Now().Before(deadline) {
		if msg = cond(); msg == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s: %s", timeout, msg)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
