package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// signedGetFrom sends a signed GET that a trusted proxy forwarded for the
// client address xff.
func signedGetFrom(t *testing.T, n *testNode, m machineKey, path, xff string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range signHeaders(m, http.MethodGet, path, nil, time.Now()) {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// registerTempByScript issues a temp token through n and runs the served
// temp-bootstrap script with sh.
func (c *testCluster) registerTempByScript(n *testNode, vaultID string) (machineKey, string) {
	c.t.Helper()
	var tok struct {
		ID       string            `json:"id"`
		Token    string            `json:"token"`
		Commands map[string]string `json:"commands"`
	}
	c.mustAdmin(n, http.StatusCreated, "POST", "/v1/admin/vaults/"+vaultID+"/temp-tokens", map[string]any{
		"name": "pentest-box", "purpose": "external pen test",
		"lifetime": map[string]int{"months": 0, "days": 2, "hours": 0}, "tokenTtl": "1h",
	}, &tok)
	if !strings.Contains(tok.Commands["sh"], "/v1/"+vaultID+"/temp-bootstrap/") {
		c.t.Fatalf("temp token sh command %q does not fetch the temp-bootstrap script", tok.Commands["sh"])
	}

	resp, err := httpClient.Get(n.url() + "/v1/" + vaultID + "/temp-bootstrap/" + tok.Token)
	if err != nil {
		c.t.Fatal(err)
	}
	script := readAll(c.t, resp)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET temp-bootstrap script: %d %s", resp.StatusCode, script)
	}
	home := c.t.TempDir()
	cmd := exec.Command("sh", "-s")
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "KEYWARD_HOME="+home, "HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("temp-bootstrap script failed: %v\n%s", err, out)
	}
	return loadIdentity(c.t, filepath.Join(home, "vaults", vaultID)), tok.Token
}

type auditEntry struct {
	Action    string         `json:"action"`
	MachineID string         `json:"machineId"`
	SourceIP  string         `json:"sourceIp"`
	Node      string         `json:"node"`
	Fields    map[string]any `json:"fields"`
	Count     int            `json:"count"`
}

// auditEntries returns the vault's audit entries of one action, as node
// reports them.
func (c *testCluster) auditEntries(n *testNode, vaultID, action string) []auditEntry {
	c.t.Helper()
	var out struct {
		Entries []auditEntry `json:"entries"`
	}
	c.mustAdmin(n, http.StatusOK, "GET",
		"/v1/admin/vaults/"+vaultID+"/audit?limit=500&action="+action, nil, &out)
	return out.Entries
}

func (c *testCluster) setGuardrails(n *testNode, f fixture, m machineKey, g map[string]any) {
	c.t.Helper()
	c.mustAdmin(n, http.StatusOK, "PUT", "/v1/admin/vaults/"+f.vaultID+"/machines/"+m.id+"/guardrails", g, nil)
}

func TestCluster_TempMachineGuardrailsOnEveryNode(t *testing.T) {
	// The test process is the trusted proxy: it sends the client address in
	// X-Forwarded-For, so one host can act as clients from several places.
	c := startCluster(t, 3, "--trusted-proxies", "127.0.0.1/32")
	f := c.setup(c.nodes[0])
	m, token := c.registerTempByScript(c.nodes[1], f.vaultID)

	var machine struct {
		Kind      string `json:"kind"`
		Status    string `json:"status"`
		Name      string `json:"name"`
		ExpiresAt int64  `json:"expiresAt"`
	}
	// Registration went through node 2; node 3 applies it a moment later.
	eventually(t, 10*time.Second, func() string {
		status := c.admin(c.nodes[2], "GET", "/v1/admin/vaults/"+f.vaultID+"/machines/"+m.id, nil, &machine)
		if status != http.StatusOK {
			return fmt.Sprintf("GET machine on node3: status %d", status)
		}
		return ""
	})
	if machine.Kind != "temp" || machine.Status != "pending" || machine.Name != "pentest-box" {
		t.Fatalf("registered machine = %+v, want a pending temp machine named pentest-box", machine)
	}
	if d := time.Until(time.UnixMilli(machine.ExpiresAt)); d < 47*time.Hour || d > 48*time.Hour {
		t.Fatalf("expiresAt is %s from now, want two days", d)
	}

	// The token was consumed through Raft: a second registration fails on
	// every node.
	for _, n := range c.nodes {
		body := bytes.NewReader([]byte(`{"publicKey":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=","hostname":"again"}`))
		resp, err := httpClient.Post(n.url()+"/v1/"+f.vaultID+"/temp-bootstrap/"+token+"/register", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("second registration with a used token on %s: status %d, want a 4xx", n.id, resp.StatusCode)
		}
	}

	path := "/v1/secret/" + f.secretID
	const norway, usa = "84.208.0.1", "8.8.8.8"
	for _, n := range c.nodes {
		eventually(t, 10*time.Second, func() string {
			if status, body := signedGetFrom(t, n, m, path, norway); status != http.StatusForbidden {
				return fmt.Sprintf("pending temp machine on %s: %d %s, want 403", n.id, status, body)
			}
			return ""
		})
	}
	c.grantRead(c.nodes[0], f, m, f.secretID)
	for _, n := range c.nodes {
		waitRead(t, n, m, f.secretID, "s3cr3t-value")
	}

	now := time.Now().UTC()
	closed := map[string]any{
		"start": now.Add(2 * time.Hour).Format("15:04"), "end": now.Add(3 * time.Hour).Format("15:04"),
		"timezone": "UTC",
	}
	axes := []struct {
		axis       string
		guardrails map[string]any
		client     string
	}{
		{"ip", map[string]any{"ipAllowlist": map[string]any{"cidrs": []string{"203.0.113.0/24"}}}, norway},
		{"country", map[string]any{"countries": map[string]any{"codes": []string{"NO"}}}, usa},
		{"time_window", map[string]any{"timeWindow": closed}, norway},
	}
	for _, tc := range axes {
		c.setGuardrails(c.nodes[0], f, m, tc.guardrails)
		for _, n := range c.nodes {
			eventually(t, 10*time.Second, func() string {
				status, body := signedGetFrom(t, n, m, path, tc.client)
				if status != http.StatusForbidden || !strings.Contains(string(body), "Access denied") {
					return fmt.Sprintf("%s axis on %s: %d %s, want 403 Access denied", tc.axis, n.id, status, body)
				}
				return ""
			})
		}
	}

	// Allowed through every axis at once.
	c.setGuardrails(c.nodes[0], f, m, map[string]any{
		"ipAllowlist": map[string]any{"cidrs": []string{"84.208.0.0/16"}},
		"countries":   map[string]any{"codes": []string{"NO"}},
	})
	for _, n := range c.nodes {
		waitReadFrom(t, n, m, path, norway)
	}

	// Observe mode: the request proceeds and is audited.
	c.setGuardrails(c.nodes[0], f, m, map[string]any{
		"ipAllowlist": map[string]any{"cidrs": []string{"203.0.113.0/24"}, "observe": true},
	})
	for _, n := range c.nodes {
		waitReadFrom(t, n, m, path, norway)
	}

	for _, n := range c.nodes {
		eventually(t, 15*time.Second, func() string {
			blocked := c.auditEntries(n, f.vaultID, "temp_machine_blocked")
			seen := map[string]bool{}
			for _, e := range blocked {
				if e.MachineID != m.id {
					continue
				}
				for _, axis := range axesOf(e.Fields) {
					seen[axis] = true
				}
			}
			for _, tc := range axes {
				if !seen[tc.axis] {
					return fmt.Sprintf("%s: no temp_machine_blocked entry names axis %s (entries: %+v)", n.id, tc.axis, blocked)
				}
			}
			if len(c.auditEntries(n, f.vaultID, "temp_machine_would_block")) == 0 {
				return n.id + ": no temp_machine_would_block entry for the observe-mode request"
			}
			return ""
		})
	}
}

// axesOf returns the axis names of an audit entry's fields, which list the
// failing axes under "axes" as objects with an "axis" key or as names.
func axesOf(fields map[string]any) []string {
	raw, _ := json.Marshal(fields["axes"])
	var objs []struct {
		Axis string `json:"axis"`
	}
	if json.Unmarshal(raw, &objs) == nil {
		var out []string
		for _, o := range objs {
			out = append(out, o.Axis)
		}
		return out
	}
	var names []string
	_ = json.Unmarshal(raw, &names)
	return names
}

func waitReadFrom(t *testing.T, n *testNode, m machineKey, path, client string) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		if status, body := signedGetFrom(t, n, m, path, client); status != http.StatusOK {
			return fmt.Sprintf("%s from %s: %d %s, want 200", n.id, client, status, body)
		}
		return ""
	})
}
