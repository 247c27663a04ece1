package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keyward/keyward/httpapi/client"
)

// Local cluster timing.
const (
	nodeStartTimeout = 60 * time.Second
	nodeStopTimeout  = 15 * time.Second
	nodePollInterval = 100 * time.Millisecond
	// nodeLogTail is how much of a failed node's log an error shows.
	nodeLogTail = 2048
)

// localNode is one keyward server process started by the bench.
type localNode struct {
	id      string
	url     string
	dataDir string
	logPath string
	cmd     *exec.Cmd
	// exited is closed when the process has exited, and err is set then.
	exited chan struct{}
	err    error
}

// localCluster is a set of server processes on loopback, in a temporary
// folder that close removes.
type localCluster struct {
	dir   string
	nodes []*localNode
	token string
}

// startLocalCluster starts n nodes of binary: one `server --dev` node, or
// n nodes that form a cluster with --bootstrap-expect and are initialised
// through POST /v1/sys/init. It returns when every node is healthy and
// the root token is known. Non-empty cpus pins every node to those CPUs.
func startLocalCluster(ctx context.Context, binary string, n int, cpus []int) (*localCluster, error) {
	dir, err := os.MkdirTemp("", "keyward-bench-")
	if err != nil {
		return nil, fmt.Errorf("%w: create data folder: %v", ErrNodeStart, err)
	}
	c := &localCluster{dir: dir}
	if err := c.start(ctx, binary, n, cpus); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *localCluster) start(ctx context.Context, binary string, n int, cpus []int) error {
	ports, err := freePorts(3 * n)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNodeStart, err)
	}
	rootKey := filepath.Join(c.dir, "root-key")
	if n > 1 {
		out, err := exec.CommandContext(ctx, binary, "root-key", "new", rootKey).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s root-key new: %v: %s", ErrNodeStart, binary, err, out)
		}
	}

	gossip := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[3*i+2]) }
	for i := range n {
		node := &localNode{
			id:      fmt.Sprintf("bench%d", i+1),
			url:     "http://127.0.0.1:" + strconv.Itoa(ports[3*i]),
			dataDir: filepath.Join(c.dir, fmt.Sprintf("node%d", i+1)),
			logPath: filepath.Join(c.dir, fmt.Sprintf("node%d.log", i+1)),
		}
		args := []string{"server",
			"--node-id", node.id,
			"--data-dir", node.dataDir,
			"--http-addr", strings.TrimPrefix(node.url, "http://"),
			"--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[3*i+1]),
			"--gossip-addr", gossip(i),
			"--log-level", "warn",
		}
		if n == 1 {
			args = append(args, "--dev")
		} else {
			args = append(args, "--join", gossip(0), "--bootstrap-expect", strconv.Itoa(n), "--root-key-file", rootKey)
		}
		if err := node.start(binary, args, cpus); err != nil {
			return err
		}
		c.nodes = append(c.nodes, node)
	}
	return c.waitReady(ctx)
}

// waitReady waits for every node to be healthy and obtains the root token.
func (c *localCluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, nodeStartTimeout)
	defer cancel()
	for _, node := range c.nodes {
		if err := node.waitHealthy(ctx); err != nil {
			return err
		}
	}
	if len(c.nodes) == 1 {
		token, err := c.nodes[0].waitRootToken(ctx)
		c.token = token
		return err
	}
	token, err := c.initCluster(ctx)
	c.token = token
	return err
}

// initCluster calls POST /v1/sys/init on the first node until a leader has
// been elected and the call succeeds.
func (c *localCluster) initCluster(ctx context.Context) (string, error) {
	api, err := client.New(c.nodes[0].url, client.WithTimeout(10*time.Second))
	if err != nil {
		return "", err
	}
	for {
		res, err := api.Init(ctx)
		if err == nil {
			return res.RootToken, nil
		}
		if !errors.Is(err, client.ErrUnavailable) {
			return "", fmt.Errorf("%w: init cluster at %s: %v", ErrNodeStart, c.nodes[0].url, err)
		}
		if err := sleepCtx(ctx, nodePollInterval); err != nil {
			return "", fmt.Errorf("%w: init cluster at %s: %v", ErrNodeStart, c.nodes[0].url, err)
		}
	}
}

// urls returns the API URL of every node.
func (c *localCluster) urls() []string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.url
	}
	return urls
}

// close stops every node and removes the cluster's folder.
func (c *localCluster) close() error {
	var errs []error
	for _, node := range c.nodes {
		if err := node.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// start starts the node's process, pinned to cpus with GOMAXPROCS set to
// their count when cpus is not empty.
func (n *localNode) start(binary string, args []string, cpus []int) error {
	logFile, err := os.Create(n.logPath)
	if err != nil {
		return fmt.Errorf("%w: create log %s: %v", ErrNodeStart, n.logPath, err)
	}
	n.cmd = exec.Command(binary, args...)
	n.cmd.Stdout = logFile
	n.cmd.Stderr = logFile
	n.cmd.Env = childEnv(os.Environ())
	if len(cpus) > 0 {
		n.cmd.Env = withGOMAXPROCS(n.cmd.Env, len(cpus))
	}
	n.cmd.SysProcAttr = childProcAttr()
	n.exited = make(chan struct{})
	if err := startProcess(n.cmd, cpus, n.exited); err != nil {
		logFile.Close()
		return fmt.Errorf("%w: start %s: %v", ErrNodeStart, binary, err)
	}
	go func() {
		n.err = n.cmd.Wait()
		logFile.Close()
		close(n.exited)
	}()
	return nil
}

// childEnv drops the KEYWARD_ variables of the bench's own environment, so
// that flags meant for the bench (KEYWARD_TOKEN, KEYWARD_DATA_DIR, …) do
// not configure the nodes it starts.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			out = append(out, kv)
		}
	}
	return out
}

// withGOMAXPROCS returns env with GOMAXPROCS set to procs, replacing any
// value it had.
func withGOMAXPROCS(env []string, procs int) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	return append(out, "GOMAXPROCS="+strconv.Itoa(procs))
}

// waitHealthy polls GET /v1/sys/health until it returns 200.
func (n *localNode) waitHealthy(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/v1/sys/health", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := n.pause(ctx); err != nil {
			return err
		}
	}
}

// waitRootToken waits for a --dev node to write <data-dir>/root-token.
func (n *localNode) waitRootToken(ctx context.Context) (string, error) {
	path := filepath.Join(n.dataDir, "root-token")
	for {
		if data, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(data), "\n") {
			return strings.TrimSpace(string(data)), nil
		}
		if err := n.pause(ctx); err != nil {
			return "", err
		}
	}
}

// pause waits one poll interval and fails when the process has exited or
// ctx is done, with the end of the node's log in the error.
func (n *localNode) pause(ctx context.Context) error {
	select {
	case <-n.exited:
		return fmt.Errorf("%w: node %s exited (%v); log %s ends with:\n%s", ErrNodeStart, n.id, n.err, n.logPath, n.logTail())
	case <-ctx.Done():
		return fmt.Errorf("%w: node %s at %s not ready: %v; log %s ends with:\n%s", ErrNodeStart, n.id, n.url, ctx.Err(), n.logPath, n.logTail())
	case <-time.After(nodePollInterval):
		return nil
	}
}

func (n *localNode) logTail() string {
	f, err := os.Open(n.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > nodeLogTail {
		f.Seek(info.Size()-nodeLogTail, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	return string(data)
}

// stop sends SIGTERM, waits for a clean shutdown, and kills the process
// if it is still running after nodeStopTimeout.
func (n *localNode) stop() error {
	if n.cmd == nil || n.cmd.Process == nil {
		return nil
	}
	select {
	case <-n.exited:
		return nil
	default:
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop node %s: %w", n.id, err)
	}
	select {
	case <-n.exited:
		return nil
	case <-time.After(nodeStopTimeout):
		n.cmd.Process.Kill()
		<-n.exited
		return fmt.Errorf("node %s did not stop within %s after SIGTERM and was killed", n.id, nodeStopTimeout)
	}
}

// freePorts returns n distinct loopback ports that were free for TCP and
// UDP (memberlist listens on both) when checked.
func freePorts(n int) ([]int, error) {
	var ports []int
	var held []io.Closer
	defer func() {
		for _, h := range held {
			h.Close()
		}
	}()
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 100*n {
			return nil, errors.New("no free loopback ports found")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a loopback port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, l, u)
		ports = append(ports, port)
	}
	return ports, nil
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
