package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rootKeyHealth is the part of GET /v1/sys/health that the root key test
// reads.
type rootKeyHealth struct {
	Healthy         bool `json:"healthy"`
	RootKeyMismatch bool `json:"rootKeyMismatch"`
}

// tryAdmin sends an operator request and returns the status, or an error
// when the node cannot be reached (not listening yet, or exited).
func (c *testCluster) tryAdmin(n *testNode, method, path string, in any) (int, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(method, n.url()+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// tryHealth reads a node's health; err is set when it cannot be reached.
func tryHealth(n *testNode) (int, rootKeyHealth, error) {
	var h rootKeyHealth
	resp, err := httpClient.Get(n.url() + "/v1/sys/health")
	if err != nil {
		return 0, h, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h, err
}

// waitExit waits for a node's process to end and returns its exit code.
func waitExit(t *testing.T, n *testNode, timeout time.Duration) int {
	t.Helper()
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running %v after it started; log:\n%s", n.id, timeout, tail(n.log.String(), 40))
		return 0
	}
}

// TestRootKeyMismatch_JoiningNodeStops starts a fourth node with another
// root key file and checks that it never reports healthy, never creates a
// project, stops with exitConfig, stops again at once when restarted, and
// that the other nodes keep writing secrets.
func TestRootKeyMismatch_JoiningNodeStops(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.waitLeader()
	f := c.setup(leader)

	otherKey := filepath.Join(t.TempDir(), "other-key")
	if out, err := exec.Command(c.bin, "root-key", "new", otherKey).CombinedOutput(); err != nil {
		t.Fatalf("keyward root-key new: %v\n%s", err, out)
	}
	ports := freePorts(t, 3)
	node4 := &testNode{
		id:         "node4",
		dir:        filepath.Join(t.TempDir(), "node4"),
		httpAddr:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		raftAddr:   fmt.Sprintf("127.0.0.1:%d", ports[1]),
		gossipAddr: fmt.Sprintf("127.0.0.1:%d", ports[2]),
	}
	node4.args = []string{"server",
		"--node-id", node4.id,
		"--data-dir", node4.dir,
		"--http-addr", node4.httpAddr,
		"--raft-addr", node4.raftAddr,
		"--gossip-addr", node4.gossipAddr,
		"--root-key-file", otherKey,
		"--join", c.nodes[0].gossipAddr,
		"--log-level", "debug",
	}
	c.nodes = append(c.nodes, node4)
	c.start(node4)

	// Until it stops, node4 must never report healthy and never accept a
	// project, whose key it would seal under the wrong root key.
	projectPath := "/v1/admin/vaults/" + f.vaultID + "/projects"
	deadline := time.Now().Add(40 * time.Second)
	attempts := 0
running:
	for {
		select {
		case <-node4.done:
			break running
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("node4 still running 40 s after it started; log:\n%s", tail(node4.log.String(), 40))
		}
		if status, h, err := tryHealth(node4); err == nil {
			if h.Healthy || status == http.StatusOK {
				t.Errorf("node4 health: status %d, healthy %v; want 503 and false", status, h.Healthy)
			}
		}
		if status, err := c.tryAdmin(node4, "POST", projectPath, map[string]any{"name": "via-node4"}); err == nil {
			attempts++
			if status == http.StatusCreated {
				t.Fatalf("node4 created a project with another root key")
			}
		}
	}
	t.Logf("node4 rejected %d project creates before it stopped", attempts)

	if code := node4.cmd.ProcessState.ExitCode(); code != exitConfig {
		t.Errorf("node4 exit code %d, want %d", code, exitConfig)
	}
	firstLog := node4.log.String()
	if !strings.Contains(firstLog, "Start this node with the cluster's --root-key-file") {
		t.Errorf("node4 log lacks the instruction to use the cluster's root key file:\n%s", tail(firstLog, 30))
	}

	// Restarted with the same key file, node4 finds the check value in its
	// own state and stops before it starts the cluster node.
	c.start(node4)
	if code := waitExit(t, node4, 15*time.Second); code != exitConfig {
		t.Errorf("restarted node4 exit code %d, want %d", code, exitConfig)
	}
	if log := node4.log.String(); strings.Contains(log, "node started") {
		t.Errorf("restarted node4 started serving before it stopped:\n%s", tail(log, 30))
	}

	// The nodes with the cluster's key still seal and write.
	for i, n := range c.nodes[:3] {
		var created struct {
			ID string `json:"id"`
		}
		c.mustAdmin(n, http.StatusCreated, "POST", projectPath+"/"+f.projectID+"/secrets",
			map[string]any{"name": fmt.Sprintf("after-node4-%d", i), "value": "v"}, &created)
		if created.ID == "" {
			t.Errorf("secret create on %s returned no id", n.id)
		}
		status, h, err := tryHealth(n)
		if err != nil {
			t.Fatalf("health of %s: %v", n.id, err)
		}
		if h.RootKeyMismatch {
			t.Errorf("%s reports a root key mismatch (status %d)", n.id, status)
		}
	}
	var project struct {
		ID string `json:"id"`
	}
	follower := c.nodes[0]
	if follower == leader {
		follower = c.nodes[1]
	}
	c.mustAdmin(follower, http.StatusCreated, "POST", projectPath, map[string]any{"name": "after-node4"}, &project)
	c.mustAdmin(leader, http.StatusCreated, "POST", projectPath+"/"+project.ID+"/secrets",
		map[string]any{"name": "db-password", "value": "v"}, nil)
}
