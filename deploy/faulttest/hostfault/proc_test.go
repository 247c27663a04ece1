package hostfault

import (
	"bytes"
	"context"
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

// maxStaleness is the --max-staleness of the test clusters, as in the
// container fault tests: above the Raft election time (1 to 2 s), so that
// healthy followers stay fresh through an election.
const maxStaleness = 3 * time.Second

// clusterTimeout bounds forming a cluster, electing a leader or converging.
const clusterTimeout = 60 * time.Second

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary that the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// keywardBinary builds cmd/keyward once per test run.
func keywardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyward-hostfault-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "keyward")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/keyward/keyward/cmd/keyward").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/keyward: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// requireRoot skips the test unless it runs as root, which mounting needs.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to mount the data volumes; running as uid %d", os.Geteuid())
	}
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// node is one keyward server process.
type node struct {
	id         string
	dataDir    string
	httpAddr   string
	raftAddr   string
	gossipAddr string
	args       []string

	cmd  *exec.Cmd
	done chan struct{}
	// logs keeps the output of every run of the process.
	logs syncBuffer
	// starts counts the runs.
	starts int
}

func (n *node) url() string { return "http://" + n.httpAddr }

// exited reports whether the current run of the process has ended.
func (n *node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// cluster is a set of keyward processes on loopback.
type cluster struct {
	t       *testing.T
	bin     string
	rootKey string
	nodes   []*node
	token   string
}

// newCluster prepares n nodes whose data directories are dataDirs, without
// starting them. extra flags go to every node.
func newCluster(t *testing.T, dataDirs []string, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: keywardBinary(t)}
	c.rootKey = filepath.Join(t.TempDir(), "root-key")
	if out, err := exec.Command(c.bin, "root-key", "new", c.rootKey).CombinedOutput(); err != nil {
		t.Fatalf("keyward root-key new: %v\n%s", err, out)
	}
	ports := freePorts(t, 3*len(dataDirs))
	for i, dir := range dataDirs {
		c.nodes = append(c.nodes, &node{
			id:         fmt.Sprintf("node%d", i+1),
			dataDir:    dir,
			httpAddr:   "127.0.0.1:" + strconv.Itoa(ports[3*i]),
			raftAddr:   "127.0.0.1:" + strconv.Itoa(ports[3*i+1]),
			gossipAddr: "127.0.0.1:" + strconv.Itoa(ports[3*i+2]),
		})
	}
	for _, n := range c.nodes {
		n.args = []string{"server",
			"--node-id", n.id,
			"--data-dir", n.dataDir,
			"--http-addr", n.httpAddr,
			"--raft-addr", n.raftAddr,
			"--gossip-addr", n.gossipAddr,
			"--bootstrap-expect", strconv.Itoa(len(c.nodes)),
			"--root-key-file", c.rootKey,
			"--max-staleness", maxStaleness.String(),
			"--log-level", "info",
		}
		if len(c.nodes) > 1 {
			n.args = append(n.args, "--join", c.nodes[0].gossipAddr)
		}
		n.args = append(n.args, extra...)
	}
	t.Cleanup(c.killAll)
	return c
}

// freePorts reserves n distinct loopback ports that are free for TCP and
// UDP, since memberlist listens on both.
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

func (c *cluster) startAll() {
	c.t.Helper()
	for _, n := range c.nodes {
		c.start(n)
	}
}

// start runs n's process.
func (c *cluster) start(n *node) {
	c.t.Helper()
	n.starts++
	fmt.Fprintf(&n.logs, "=== run %d of %s\n", n.starts, n.id)
	n.cmd = exec.Command(c.bin, n.args...)
	n.cmd.Stdout = &n.logs
	n.cmd.Stderr = &n.logs
	if err := n.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.id, err)
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(n.cmd, n.done)
}

// kill stops n with SIGKILL and waits for the process to end.
func (c *cluster) kill(n *node) {
	if n.cmd == nil || n.exited() {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// stop stops n with SIGTERM, as an operator would, and waits up to 20 s.
func (c *cluster) stop(n *node) {
	c.t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		c.t.Errorf("%s did not stop within 20 s after SIGTERM", n.id)
		c.kill(n)
	}
}

func (c *cluster) killAll() {
	for _, n := range c.nodes {
		c.kill(n)
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			c.t.Logf("--- last lines of %s ---\n%s", n.id, tail(n.logs.String(), 40))
		}
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// health is the part of GET /v1/sys/health that the tests read.
type health struct {
	NodeID            string `json:"nodeId"`
	State             string `json:"state"`
	LeaderID          string `json:"leaderId"`
	Ready             bool   `json:"ready"`
	Healthy           bool   `json:"healthy"`
	DiskStalled       bool   `json:"diskStalled"`
	FsyncLatencyMs    int64  `json:"fsyncLatencyMs"`
	FsyncLatencyMaxMs int64  `json:"fsyncLatencyMaxMs"`
	DiskFreeBytes     uint64 `json:"diskFreeBytes"`
	DiskLow           bool   `json:"diskLow"`
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func (c *cluster) health(n *node) (health, error) {
	var h health
	resp, err := httpClient.Get(n.url() + "/v1/sys/health")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}

// waitLeader waits until every node in among names the same leader, and
// returns it.
func (c *cluster) waitLeader(among ...*node) *node {
	c.t.Helper()
	if len(among) == 0 {
		among = c.nodes
	}
	var leader *node
	eventually(c.t, clusterTimeout, "the nodes to agree on a leader", func() string {
		leaderID := ""
		for _, n := range among {
			if n.exited() {
				c.t.Fatalf("%s exited while waiting for a leader:\n%s", n.id, tail(n.logs.String(), 20))
			}
			h, err := c.health(n)
			if err != nil || h.LeaderID == "" {
				return fmt.Sprintf("%s names no leader (%v)", n.id, err)
			}
			if leaderID != "" && h.LeaderID != leaderID {
				return fmt.Sprintf("%s names %s, another node names %s", n.id, h.LeaderID, leaderID)
			}
			leaderID = h.LeaderID
		}
		leader = c.byID(leaderID)
		if leader == nil {
			return "the leader " + leaderID + " is not a test node"
		}
		return ""
	})
	return leader
}

// waitReady waits until n reports itself ready to serve.
func (c *cluster) waitReady(n *node) {
	c.t.Helper()
	eventually(c.t, clusterTimeout, n.id+" to be ready", func() string {
		h, err := c.health(n)
		if err != nil || !h.Ready {
			return fmt.Sprintf("%s is not ready (%v)", n.id, err)
		}
		return ""
	})
}

func (c *cluster) byID(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// admin sends an admin-plane request with the root token and returns the
// status and body. err is set only when no response arrived.
func (c *cluster) admin(ctx context.Context, n *node, method, path string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.url()+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, raw, err
}

// mustAdmin sends an admin request, fails the test unless the status is
// want, and decodes the body into out when out is not nil.
func (c *cluster) mustAdmin(n *node, want int, method, path string, in, out any) {
	c.t.Helper()
	status, body, err := c.admin(context.Background(), n, method, path, in)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, n.id, err)
	}
	if status != want {
		c.t.Fatalf("%s %s on %s: status %d %s, want %d", method, path, n.id, status, body, want)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			c.t.Fatalf("%s %s on %s: decode %s: %v", method, path, n.id, body, err)
		}
	}
}

// metric returns the value of an unlabelled metric from n's /metrics.
func (c *cluster) metric(n *node, name string) (float64, error) {
	resp, err := httpClient.Get(n.url() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if value, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(value), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not in the /metrics output of %s", name, n.id)
}

// eventually polls cond every 100 ms until it returns "" or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	msg := ""
	for time.Now().Before(deadline) {
		if msg = cond(); msg == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, msg)
}
