package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"
)

// registerTempDirect issues a temp token through n and registers a machine
// with a key generated here, through the same call the served script makes.
func (c *testCluster) registerTempDirect(n *testNode, vaultID string, guardrails map[string]any) machineKey {
	c.t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	body := map[string]any{
		"name": "runner", "lifetime": map[string]int{"days": 1}, "tokenTtl": "1h",
	}
	if guardrails != nil {
		body["guardrails"] = guardrails
	}
	c.mustAdmin(n, http.StatusCreated, "POST", "/v1/admin/vaults/"+vaultID+"/temp-tokens", body, &tok)
	key := newMachineKey(c.t)
	var reg struct {
		MachineID string `json:"machineId"`
	}
	saved := c.token
	c.token = ""
	c.mustAdmin(n, http.StatusCreated, "POST", "/v1/"+vaultID+"/temp-bootstrap/"+tok.Token+"/register",
		map[string]any{"publicKey": key.publicKeyBase64(), "hostname": "runner-1"}, &reg)
	c.token = saved
	key.id = reg.MachineID
	return key
}

type extension struct {
	ID                string `json:"id"`
	PreviousExpiresAt int64  `json:"previousExpiresAt"`
	NewExpiresAt      int64  `json:"newExpiresAt"`
	Reason            string `json:"reason"`
	RevertedAt        int64  `json:"revertedAt"`
}

func TestCluster_ConcurrentExtendRevertSameHistory(t *testing.T) {
	c := startCluster(t, 3)
	f := c.setup(c.nodes[0])
	m := c.registerTempDirect(c.nodes[0], f.vaultID, nil)
	base := "/v1/admin/vaults/" + f.vaultID + "/machines/" + m.id
	for _, n := range c.nodes {
		eventually(t, 10*time.Second, func() string {
			if status := c.admin(n, "GET", base, nil, nil); status != http.StatusOK {
				return fmt.Sprintf("machine on %s: status %d", n.id, status)
			}
			return ""
		})
	}

	// Each node's client extends and reverts at the same time. The state
	// machine orders them; each request either applies or is rejected by
	// the rules, never half-applied.
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func(i int, n *testNode) {
			defer wg.Done()
			for j := 0; j < 6; j++ {
				if j%3 == 2 {
					c.admin(n, "POST", base+"/revert", map[string]any{"reason": "undo " + strconv.Itoa(i)}, nil)
					continue
				}
				hours := 24*(i+2) + j
				c.admin(n, "POST", base+"/extend", map[string]any{
					"duration": strconv.Itoa(hours) + "h", "reason": fmt.Sprintf("client %d step %d", i, j),
				}, nil)
			}
		}(i, n)
	}
	wg.Wait()
	c.waitConverged()

	var first []extension
	for _, n := range c.nodes {
		var out struct {
			Extensions []extension `json:"extensions"`
		}
		c.mustAdmin(n, http.StatusOK, "GET", base+"/extensions", nil, &out)
		if len(out.Extensions) == 0 {
			t.Fatalf("%s: no extension recorded", n.id)
		}
		if first == nil {
			first = out.Extensions
			continue
		}
		if !reflect.DeepEqual(out.Extensions, first) {
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(out.Extensions)
			t.Fatalf("extension history differs between nodes:\n%s\n%s", a, b)
		}
	}

	// The history is a stack: the expiry in force is the newest
	// un-reverted extension's, and each extension starts where the one in
	// force before it ended.
	var machine struct {
		ExpiresAt int64 `json:"expiresAt"`
	}
	c.mustAdmin(c.nodes[1], http.StatusOK, "GET", base, nil, &machine)
	var stack []extension
	for _, e := range first {
		if e.RevertedAt == 0 {
			stack = append(stack, e)
		}
	}
	if len(stack) > 0 && stack[len(stack)-1].NewExpiresAt != machine.ExpiresAt {
		t.Fatalf("expiresAt %d is not the newest un-reverted extension's %d", machine.ExpiresAt, stack[len(stack)-1].NewExpiresAt)
	}
	for i := 1; i < len(stack); i++ {
		if stack[i].PreviousExpiresAt != stack[i-1].NewExpiresAt {
			t.Fatalf("un-reverted extension %d starts at %d, want %d", i, stack[i].PreviousExpiresAt, stack[i-1].NewExpiresAt)
		}
	}
}

func TestServer_DualStackListenerUnmapsIPv4(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Fatalf("this host has no IPv6 loopback, which the dual-stack test needs: %v", err)
	} else {
		ln.Close()
	}
	ports := freePorts(t, 3)
	c := &testCluster{t: t, bin: keywardBinary(t)}
	dir := t.TempDir()
	node := &testNode{
		id:       "dual",
		dir:      dir,
		httpAddr: "127.0.0.1:" + strconv.Itoa(ports[0]),
	}
	node.args = []string{"server", "--dev", "--node-id", "dual", "--data-dir", dir,
		"--http-addr", "[::]:" + strconv.Itoa(ports[0]), "--insecure-plain-http",
		"--raft-addr", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--gossip-addr", "127.0.0.1:" + strconv.Itoa(ports[2])}
	c.nodes = []*testNode{node}
	c.start(node)
	t.Cleanup(c.stopAll)
	c.waitLeader()
	eventually(t, 15*time.Second, func() string {
		if _, err := readFileTrim(dir + "/root-token"); err != nil {
			return err.Error()
		}
		return ""
	})
	token, _ := readFileTrim(dir + "/root-token")
	c.token = token

	var f fixture
	var obj struct {
		ID string `json:"id"`
	}
	c.mustAdmin(node, http.StatusCreated, "POST", "/v1/admin/vaults", map[string]any{"name": "dual"}, &obj)
	f.vaultID = obj.ID
	c.mustAdmin(node, http.StatusCreated, "POST", "/v1/admin/vaults/"+f.vaultID+"/projects", map[string]any{"name": "p"}, &obj)
	f.projectID = obj.ID
	c.mustAdmin(node, http.StatusCreated, "POST", "/v1/admin/vaults/"+f.vaultID+"/projects/"+f.projectID+"/secrets",
		map[string]any{"name": "s", "value": "v4-ok"}, &obj)
	f.secretID = obj.ID

	// The listener is IPv6 and sees an IPv4 client as ::ffff:127.0.0.1; an
	// IPv4 CIDR must still match it.
	m := c.registerTempDirect(node, f.vaultID, map[string]any{
		"ipAllowlist": map[string]any{"cidrs": []string{"127.0.0.0/8"}},
	})
	c.grantRead(node, f, m, f.secretID)
	waitRead(t, node, m, f.secretID, "v4-ok")

	c.mustAdmin(node, http.StatusOK, "PUT", "/v1/admin/vaults/"+f.vaultID+"/machines/"+m.id+"/guardrails",
		map[string]any{"ipAllowlist": map[string]any{"cidrs": []string{"10.0.0.0/8"}}}, nil)
	eventually(t, 10*time.Second, func() string {
		if status, body := signedGet(t, node, m, "/v1/secret/"+f.secretID); status != http.StatusForbidden {
			return fmt.Sprintf("127.0.0.1 outside the allowlist: %d %s, want 403", status, body)
		}
		return ""
	})
}

// TestCluster_ExtendByDurationOnEveryNode extends one machine by a day
// through each node of the cluster in turn, without waiting for the
// others to apply the previous extension. Each duration counts from the
// expiry the leader applies, so every extension succeeds and the expiry
// moves by three days on every node.
func TestCluster_ExtendByDurationOnEveryNode(t *testing.T) {
	c := startCluster(t, 3)
	f := c.setup(c.nodes[0])
	m := c.registerTempDirect(c.nodes[0], f.vaultID, nil)
	base := "/v1/admin/vaults/" + f.vaultID + "/machines/" + m.id
	var before struct {
		ExpiresAt int64 `json:"expiresAt"`
	}
	for _, n := range c.nodes {
		eventually(t, 10*time.Second, func() string {
			if status := c.admin(n, "GET", base, nil, &before); status != http.StatusOK {
				return fmt.Sprintf("machine on %s: status %d", n.id, status)
			}
			return ""
		})
	}

	for i, n := range c.nodes {
		c.mustAdmin(n, http.StatusOK, "POST", base+"/extend",
			map[string]any{"duration": "24h", "reason": "step " + strconv.Itoa(i)}, nil)
	}
	c.waitConverged()
	want := before.ExpiresAt + 3*24*time.Hour.Milliseconds()
	for _, n := range c.nodes {
		var after struct {
			ExpiresAt  int64       `json:"expiresAt"`
			Extensions []extension `json:"extensions"`
		}
		c.mustAdmin(n, http.StatusOK, "GET", base, nil, &after)
		if after.ExpiresAt != want {
			t.Errorf("%s: expiry %d after three one-day extensions, want %d", n.id, after.ExpiresAt, want)
		}
	}
}
