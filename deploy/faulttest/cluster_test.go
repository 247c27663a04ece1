package faulttest

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Ports inside every container; see deploy/Dockerfile.
const (
	containerHTTPPort   = 8200
	containerRaftPort   = 8201
	containerGossipPort = 8202
)

// maxStaleness is the --max-staleness of the test clusters: short, so that
// a partitioned node turns stale quickly, and still above the Raft election
// time (about 1 to 2 s), so that survivors of a leader crash stay fresh.
const maxStaleness = 3 * time.Second

// clusterTimeout bounds waiting for a cluster to form, elect a leader or
// converge.
const clusterTimeout = 60 * time.Second

// node is one Keyward container.
type node struct {
	name      string // Keyward node id, also the suffix of the container name
	container string
	clusterIP string // address on the cluster network
	url       string // base URL of the published API on 127.0.0.1
	// client trusts the CA of the node's cluster.
	client *http.Client
}

// testCluster is three Keyward containers on two Docker networks that the
// test creates: a cluster network (internal, fixed subnet) for Raft and
// gossip, and an API network through which Docker publishes each node's
// HTTPS port on 127.0.0.1. Disconnecting a node from the cluster network
// partitions it from its peers while the test can still reach its API.
// The nodes run as deploy/compose.yaml configures them: HTTPS API, mutual
// TLS between nodes and encrypted gossip, with the secrets that
// deploy/cluster-secrets.sh generates.
type testCluster struct {
	t             *testing.T
	runID         string
	image         string
	clusterNet    string
	apiNet        string
	secretsVolume string
	nodes         []*node
	dataVols      []string
	// token is the owner token from POST /v1/sys/init.
	token string
}

// startCluster creates the networks, the root key and three nodes that form
// a cluster with --bootstrap-expect 3, and waits until they agree on a
// leader. Everything it creates is removed in t.Cleanup, also on failure.
func startCluster(t *testing.T) *testCluster {
	t.Helper()
	requireDocker(t)
	c := &testCluster{t: t, runID: "kwft-" + randomHex(4), image: buildImage(t)}
	t.Cleanup(c.remove)
	label := "--label=keyward-faulttest=" + c.runID

	c.apiNet = c.runID + "-api"
	c.createNetwork(c.apiNet, label)
	c.clusterNet = c.runID + "-cluster"
	subnetPrefix := c.createNetwork(c.clusterNet, label, "--internal")

	ports := freeLoopbackPorts(t, 3)
	var ips []string
	for i := range 3 {
		n := &node{
			name:      fmt.Sprintf("node%d", i+1),
			clusterIP: fmt.Sprintf("%s.%d", subnetPrefix, 11+i),
			url:       "https://127.0.0.1:" + strconv.Itoa(ports[i]),
		}
		n.container = c.runID + "-" + n.name
		c.nodes = append(c.nodes, n)
		ips = append(ips, n.clusterIP)
	}
	c.secretsVolume = c.runID + "-secrets"
	client := c.createSecrets(strings.Join(ips, ","))
	for _, n := range c.nodes {
		n.client = client
	}

	seed := c.nodes[0].clusterIP + ":" + strconv.Itoa(containerGossipPort)
	for i, n := range c.nodes {
		dataVol := n.container + "-data"
		mustDocker(t, "volume", "create", label, dataVol)
		c.dataVols = append(c.dataVols, dataVol)
		tlsFile := func(name string) string { return "/run/keyward/tls/" + name }
		mustDocker(t, "create", label,
			"--name", n.container,
			"--network", c.apiNet,
			"--publish", fmt.Sprintf("127.0.0.1:%d:%d", ports[i], containerHTTPPort),
			"--volume", c.secretsVolume+":/run/keyward:ro",
			"--volume", dataVol+":/data",
			"--read-only",
			c.image, "server",
			"--node-id", n.name,
			"--data-dir", "/data",
			"--root-key-file", "/run/keyward/root-key",
			"--http-addr", "0.0.0.0:"+strconv.Itoa(containerHTTPPort),
			"--tls-cert-file", tlsFile(n.name+".pem"),
			"--tls-key-file", tlsFile(n.name+"-key.pem"),
			"--raft-addr", n.clusterIP+":"+strconv.Itoa(containerRaftPort),
			"--gossip-addr", n.clusterIP+":"+strconv.Itoa(containerGossipPort),
			"--cluster-ca-file", tlsFile("ca.pem"),
			"--cluster-cert-file", tlsFile(n.name+".pem"),
			"--cluster-key-file", tlsFile(n.name+"-key.pem"),
			"--gossip-key-file", tlsFile("gossip.key"),
			"--join", seed,
			"--bootstrap-expect", "3",
			"--max-staleness", maxStaleness.String(),
			"--log-level", "info",
		)
		mustDocker(t, "network", "connect", "--ip", n.clusterIP, c.clusterNet, n.container)
	}
	for _, n := range c.nodes {
		mustDocker(t, "start", n.container)
	}
	c.waitLeader(c.nodes...)
	return c
}

// createSecrets runs deploy/cluster-secrets.sh to fill the secrets volume
// with the root key, node certificates that cover hosts, and the gossip
// key, and returns an HTTP client that trusts the new CA.
func (c *testCluster) createSecrets(hosts string) *http.Client {
	c.t.Helper()
	root, err := repoRoot()
	if err != nil {
		c.t.Fatal(err)
	}
	caFile := filepath.Join(c.t.TempDir(), "ca.pem")
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy", "cluster-secrets.sh"), c.secretsVolume, c.image)
	cmd.Env = append(os.Environ(), "KEYWARD_TLS_HOSTS="+hosts, "KEYWARD_CA_OUT="+caFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("deploy/cluster-secrets.sh: %v\n%s", err, out)
	}
	client, err := trustingClient(caFile)
	if err != nil {
		c.t.Fatal(err)
	}
	return client
}

// createNetwork creates a bridge network on a random /24, trying other
// subnets when Docker reports an overlap with an existing network, and
// returns the first three octets of the subnet. The subnets are set
// explicitly because Docker would otherwise take a whole /16 from its
// default pools for each network. 172.28.0.0/24 is left to
// deploy/compose.yaml.
func (c *testCluster) createNetwork(name string, flags ...string) string {
	c.t.Helper()
	var lastErr error
	for range 16 {
		var prefix string
		if mathrand.IntN(2) == 0 {
			prefix = fmt.Sprintf("172.28.%d", 16+mathrand.IntN(240))
		} else {
			prefix = fmt.Sprintf("10.213.%d", mathrand.IntN(256))
		}
		args := append(append([]string{"network", "create"}, flags...), "--subnet", prefix+".0/24", name)
		ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
		_, err := docker(ctx, args...)
		cancel()
		if err == nil {
			return prefix
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	c.t.Fatalf("create network %s: %v", name, lastErr)
	return ""
}

// remove deletes the containers, networks and volumes of the cluster. When
// the test failed it first logs the tail of each node's log.
func (c *testCluster) remove() {
	for _, n := range c.nodes {
		if c.t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
			logs, err := dockerCombined(ctx, "logs", "--tail", "60", n.container)
			cancel()
			if err == nil {
				c.t.Logf("--- last log lines of %s ---\n%s", n.name, logs)
			}
		}
		bestEffortDocker(c.t, "rm", "--force", "--volumes", n.container)
	}
	for _, v := range c.dataVols {
		bestEffortDocker(c.t, "volume", "rm", v)
	}
	if c.secretsVolume != "" {
		bestEffortDocker(c.t, "volume", "rm", c.secretsVolume)
	}
	for _, netName := range []string{c.clusterNet, c.apiNet} {
		if netName != "" {
			bestEffortDocker(c.t, "network", "rm", netName)
		}
	}
}

// partition disconnects n from the cluster network: it keeps running and
// serving its API, but reaches no peer.
func (c *testCluster) partition(n *node) {
	c.t.Helper()
	mustDocker(c.t, "network", "disconnect", c.clusterNet, n.container)
}

// heal reconnects n to the cluster network with its old address.
func (c *testCluster) heal(n *node) {
	c.t.Helper()
	mustDocker(c.t, "network", "connect", "--ip", n.clusterIP, c.clusterNet, n.container)
}

// kill sends SIGKILL to the node process, as a crash would.
func (c *testCluster) kill(n *node) {
	c.t.Helper()
	mustDocker(c.t, "kill", "--signal", "KILL", n.container)
}

// stop sends SIGTERM and waits up to 30 s for a clean exit, as an operator
// restart would.
func (c *testCluster) stop(n *node) {
	c.t.Helper()
	mustDocker(c.t, "stop", "--time", "30", n.container)
}

// start starts a stopped or killed node with its data volume and address.
func (c *testCluster) start(n *node) {
	c.t.Helper()
	mustDocker(c.t, "start", n.container)
}

// health is the body of GET /v1/sys/health.
type health struct {
	NodeID       string `json:"nodeId"`
	State        string `json:"state"`
	LeaderID     string `json:"leaderId"`
	AppliedIndex uint64 `json:"appliedIndex"`
	StalenessMs  int64  `json:"stalenessMs"`
	Healthy      bool   `json:"healthy"`
}

// health returns the node's health. A 503 with a body is a valid response,
// from a node that is stale or catching up.
func (c *testCluster) health(n *node) (health, error) {
	var h health
	status, body, err := doJSON(context.Background(), n, http.MethodGet, "/v1/sys/health", "", nil)
	if err != nil {
		return h, err
	}
	if status != http.StatusOK && status != http.StatusServiceUnavailable {
		return h, fmt.Errorf("health of %s: status %d %s", n.name, status, body)
	}
	return h, decode(body, &h)
}

// waitLeader waits until every node in among is healthy and names the same
// leader, which is one of them and reports itself as leader. It returns the
// leader.
func (c *testCluster) waitLeader(among ...*node) *node {
	c.t.Helper()
	var leader *node
	c.eventually(clusterTimeout, "the nodes agree on a leader", func() string {
		leader = nil
		leaderID := ""
		for _, n := range among {
			h, err := c.health(n)
			switch {
			case err != nil:
				return err.Error()
			case !h.Healthy:
				return fmt.Sprintf("%s is not healthy: %+v", n.name, h)
			case h.LeaderID == "":
				return fmt.Sprintf("%s knows no leader", n.name)
			case leaderID != "" && h.LeaderID != leaderID:
				return fmt.Sprintf("%s names leader %s, another node names %s", n.name, h.LeaderID, leaderID)
			}
			leaderID = h.LeaderID
		}
		for _, n := range among {
			if n.name == leaderID {
				leader = n
			}
		}
		if leader == nil {
			return fmt.Sprintf("leader %s is not among the nodes waited for", leaderID)
		}
		if h, err := c.health(leader); err != nil || h.State != "leader" {
			return fmt.Sprintf("%s is named leader but reports %+v (%v)", leader.name, h, err)
		}
		return ""
	})
	return leader
}

// followers returns the nodes other than leader.
func (c *testCluster) followers(leader *node) []*node {
	var out []*node
	for _, n := range c.nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// stateSum is the body of GET /v1/sys/checksum.
type stateSum struct {
	AppliedIndex uint64 `json:"appliedIndex"`
	Checksum     string `json:"checksum"`
}

// waitConverged waits until every node reports the same state checksum and
// returns it.
func (c *testCluster) waitConverged() string {
	c.t.Helper()
	var sum string
	c.eventually(clusterTimeout, "every node reports the same state checksum", func() string {
		sums := make(map[string]stateSum, len(c.nodes))
		for _, n := range c.nodes {
			var s stateSum
			status, body, err := c.admin(context.Background(), n, http.MethodGet, "/v1/sys/checksum", nil)
			if err != nil || status != http.StatusOK {
				return fmt.Sprintf("checksum on %s: status %d %s %v", n.name, status, body, err)
			}
			if err := decode(body, &s); err != nil {
				return err.Error()
			}
			sums[n.name] = s
		}
		first := sums[c.nodes[0].name]
		for name, s := range sums {
			if s.Checksum != first.Checksum {
				return fmt.Sprintf("checksums differ: %s has %+v, %s has %+v", c.nodes[0].name, first, name, s)
			}
		}
		sum = first.Checksum
		return ""
	})
	return sum
}

// eventually polls cond every 100 ms until it returns "" and fails the test
// with the last message when timeout passes first.
func (c *testCluster) eventually(timeout time.Duration, what string, cond func() string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting until %s: %s", timeout, what, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
