package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// registerDirect registers a machine with a key generated here, through the
// same unsigned call the served scripts make.
func (c *testCluster) registerDirect(n *testNode, vaultID string) machineKey {
	c.t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	c.mustAdmin(n, http.StatusCreated, "POST", "/v1/admin/vaults/"+vaultID+"/bootstrap-tokens",
		map[string]any{}, &tok)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	var reg struct {
		MachineID string `json:"machineId"`
	}
	saved := c.token
	c.token = ""
	c.mustAdmin(n, http.StatusCreated, "POST", "/v1/bootstrap/"+tok.Token+"/register",
		map[string]any{"publicKey": base64.StdEncoding.EncodeToString(pub), "hostname": "worker-1"}, &reg)
	c.token = saved
	return machineKey{id: reg.MachineID, priv: priv}
}

type stateSum struct {
	AppliedIndex uint64 `json:"appliedIndex"`
	Checksum     string `json:"checksum"`
}

func (c *testCluster) checksum(n *testNode) stateSum {
	c.t.Helper()
	var s stateSum
	c.mustAdmin(n, http.StatusOK, "GET", "/v1/sys/checksum", nil, &s)
	return s
}

// waitConverged waits until every running node reports the same state
// checksum and returns it.
func (c *testCluster) waitConverged(skip ...*testNode) string {
	c.t.Helper()
	var sum string
	eventually(c.t, 30*time.Second, func() string {
		sums := map[string]string{}
		for _, n := range c.running(skip) {
			var s stateSum
			if status := c.admin(n, "GET", "/v1/sys/checksum", nil, &s); status != http.StatusOK {
				return fmt.Sprintf("%s: checksum status %d", n.id, status)
			}
			sums[n.id] = s.Checksum
		}
		first := ""
		for _, v := range sums {
			if first == "" {
				first = v
			}
			if v != first {
				return fmt.Sprintf("checksums differ: %v", sums)
			}
		}
		sum = first
		return ""
	})
	return sum
}

// waitSettled is waitConverged until two checksums taken 600 ms apart
// agree. Nodes record some audit events in batches written up to 200 ms
// later, so a checksum taken right after a write may miss its last entry.
func (c *testCluster) waitSettled() string {
	c.t.Helper()
	sum := c.waitConverged()
	for range 50 {
		time.Sleep(600 * time.Millisecond)
		next := c.waitConverged()
		if next == sum {
			return sum
		}
		sum = next
	}
	c.t.Fatal("the state checksum kept changing for 30 s after the last write")
	return ""
}

func TestCluster_KillLeaderKeepsReadsAndRejoins(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.waitLeader()
	f := c.setup(leader)
	m := c.registerDirect(leader, f.vaultID)
	c.grantRead(leader, f, m, f.secretID)
	for _, n := range c.nodes {
		waitRead(t, n, m, f.secretID, "s3cr3t-value")
	}
	c.waitConverged()

	c.kill(leader)
	survivors := c.running([]*testNode{leader})

	// Reads are served from each node's local state: they must keep working
	// while the survivors elect a new leader.
	until := time.Now().Add(3 * time.Second)
	for time.Now().Before(until) {
		for _, n := range survivors {
			if status, body := signedGet(t, n, m, "/v1/secret/"+f.secretID); status != http.StatusOK {
				t.Fatalf("read on %s during election: status %d %s", n.id, status, body)
			}
		}
	}

	newLeader := c.waitLeader(leader)
	if newLeader == leader {
		t.Fatalf("killed node %s still named leader", leader.id)
	}
	var created struct {
		ID string `json:"id"`
	}
	c.mustAdmin(survivors[0], http.StatusCreated, "POST",
		"/v1/admin/vaults/"+f.vaultID+"/projects/"+f.projectID+"/secrets",
		map[string]any{"name": "after-failover", "value": "v2"}, &created)

	c.start(leader)
	c.waitLeader()
	c.waitConverged()
	var secrets struct {
		Secrets []struct {
			ID string `json:"id"`
		} `json:"secrets"`
	}
	c.mustAdmin(leader, http.StatusOK, "GET",
		"/v1/admin/vaults/"+f.vaultID+"/projects/"+f.projectID+"/secrets", nil, &secrets)
	found := false
	for _, s := range secrets.Secrets {
		found = found || s.ID == created.ID
	}
	if !found {
		t.Fatalf("rejoined node lacks the secret written while it was down: %+v", secrets)
	}
}

func TestCluster_RestartAllKeepsState(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.waitLeader()
	f := c.setup(leader)
	m := c.registerDirect(leader, f.vaultID)
	c.grantRead(leader, f, m, f.secretID)
	c.mustAdmin(leader, http.StatusOK, "PUT", "/v1/admin/vaults/"+f.vaultID+"/secrets/"+f.secretID,
		map[string]any{"value": "rotated"}, nil)

	// A graceful stop may write what a node still holds (audit events of
	// open windows, last-seen times), so the first restart can add
	// entries. A second restart, with nothing left to write, must not
	// change the state.
	restartAll := func() string {
		for _, n := range c.nodes {
			c.stop(n)
		}
		for _, n := range c.nodes {
			c.start(n)
		}
		c.waitLeader()
		return c.waitSettled()
	}
	before := restartAll()
	after := restartAll()
	if after != before {
		t.Fatalf("state checksum changed across a restart of every node with nothing to write: %s → %s", before, after)
	}
	for _, n := range c.nodes {
		waitRead(t, n, m, f.secretID, "rotated")
	}

	var versions struct {
		Version int `json:"version"`
	}
	c.mustAdmin(c.nodes[2], http.StatusOK, "GET",
		"/v1/admin/vaults/"+f.vaultID+"/secrets/"+f.secretID, nil, &versions)
	if versions.Version != 2 {
		t.Fatalf("secret version after restart = %d, want 2 (an entry was applied twice or lost)", versions.Version)
	}
}
