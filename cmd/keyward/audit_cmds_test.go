package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookReceiver is a webhook receiver on loopback that records the delivery
// ids under which each event arrived.
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	ids      map[string]map[string]bool // event id -> delivery ids
	requests int
	tests    int // webhook_test events, kept apart from the log's events
}

func newHookReceiver(t *testing.T, delay time.Duration) *hookReceiver {
	h := &hookReceiver{ids: map[string]map[string]bool{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &p)
		time.Sleep(delay)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get("X-Keyward-Event") == "webhook_test" {
			h.tests++
			return
		}
		if h.ids[p.ID] == nil {
			h.ids[p.ID] = map[string]bool{}
		}
		h.ids[p.ID][r.Header.Get("X-Keyward-Delivery-Id")] = true
		h.requests++
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) events() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ids)
}

// cliAgainst runs the CLI against node n with the cluster's token.
func (c *testCluster) cli(n *testNode, args ...string) cliResult {
	c.t.Helper()
	return cliRun(c.t, map[string]string{"KEYWARD_ADDR": n.url(), "KEYWARD_TOKEN": c.token}, "", args...)
}

// TestAuditCLI_ClusterLogWebhooksAndFailover runs three real servers: the
// audit log reads the same from every node through the CLI, exports as CSV,
// and a webhook receives every event under one delivery id each, also
// when the leader is killed while deliveries are pending.
func TestAuditCLI_ClusterLogWebhooksAndFailover(t *testing.T) {
	c := startCluster(t, 3, "--webhook-allow-private")
	f := c.setup(c.nodes[0])
	rcv := newHookReceiver(t, 40*time.Millisecond)

	created := c.cli(c.nodes[1], "webhook", "create", "--vault", f.vaultID, "--url", rcv.URL+"/hook",
		"--actions", "project_create", "--output", "json")
	assertCode(t, created, 0)
	var hook struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(created.stdout), &hook); err != nil || !strings.HasPrefix(hook.Secret, "whsec_") {
		t.Fatalf("webhook create printed %q (%v)", created.stdout, err)
	}
	// node3 may apply the new webhook a moment after the leader.
	eventually(t, 10*time.Second, func() string {
		if r := c.cli(c.nodes[2], "webhook", "test", hook.ID, "--vault", f.vaultID); r.code != 0 {
			return "webhook test: " + r.stderr
		}
		return ""
	})
	rcv.mu.Lock()
	if rcv.tests != 1 {
		t.Errorf("the receiver got %d test events, want 1", rcv.tests)
	}
	rcv.mu.Unlock()

	for i := range 20 {
		c.mustAdmin(c.nodes[i%3], http.StatusCreated, "POST", "/v1/admin/vaults/"+f.vaultID+"/projects",
			map[string]string{"name": fmt.Sprintf("team-%02d", i)}, nil)
	}
	eventually(t, 20*time.Second, func() string {
		if n := rcv.events(); n < 3 {
			return fmt.Sprintf("%d events delivered before the kill", n)
		}
		return ""
	})
	leader := c.waitLeader()
	c.kill(leader)
	survivor := c.running([]*testNode{leader})[0]
	c.waitLeader(leader)
	for i := range 10 {
		// Right after an election a write may get 503; clients retry it, and
		// a retry of a write that did commit meets the unique project name.
		name := fmt.Sprintf("after-%02d", i)
		eventually(t, 15*time.Second, func() string {
			status := c.admin(survivor, "POST", "/v1/admin/vaults/"+f.vaultID+"/projects", map[string]string{"name": name}, nil)
			if status != http.StatusCreated && status != http.StatusConflict {
				return fmt.Sprintf("create project %s: status %d", name, status)
			}
			return ""
		})
	}
	eventually(t, 30*time.Second, func() string {
		if n := rcv.events(); n != 30 {
			return fmt.Sprintf("%d of 30 project_create events delivered", n)
		}
		return ""
	})
	rcv.mu.Lock()
	for event, ids := range rcv.ids {
		if len(ids) != 1 {
			t.Errorf("event %s arrived under %d delivery ids: %v", event, len(ids), ids)
		}
	}
	t.Logf("%d requests for 30 events", rcv.requests)
	rcv.mu.Unlock()

	t.Run("every node answers the same log", func(t *testing.T) {
		var first string
		for _, n := range c.running([]*testNode{leader}) {
			eventually(t, 10*time.Second, func() string {
				r := c.cli(n, "audit", "query", "--vault", f.vaultID, "--limit", "1000", "--output", "json")
				if r.code != 0 {
					return r.stderr
				}
				if first == "" {
					first = r.stdout
				}
				if r.stdout != first {
					return n.id + " answers a different log"
				}
				return ""
			})
		}
		var page struct {
			Entries []struct{ Action string }
		}
		json.Unmarshal([]byte(first), &page)
		if len(page.Entries) < 30+4 {
			t.Fatalf("%d entries, want the setup and 30 project creations", len(page.Entries))
		}
	})
	t.Run("export csv", func(t *testing.T) {
		r := c.cli(survivor, "audit", "export", "--vault", f.vaultID, "--format", "csv", "--action", "project_create")
		assertCode(t, r, 0)
		rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil || len(rows) != 32 {
			t.Fatalf("csv export: %d rows (%v), want a header, the setup project and 30 more", len(rows), err)
		}
	})
	t.Run("deliveries and alerts", func(t *testing.T) {
		eventually(t, 10*time.Second, func() string {
			r := c.cli(survivor, "webhook", "deliveries", hook.ID, "--vault", f.vaultID, "--limit", "100", "--output", "json")
			var out struct{ Deliveries []struct{ Status string } }
			json.Unmarshal([]byte(r.stdout), &out)
			if len(out.Deliveries) != 30 {
				return fmt.Sprintf("%d deliveries logged, want 30", len(out.Deliveries))
			}
			return ""
		})
		r := c.cli(survivor, "alerts", "email", "set", "--vault", f.vaultID, "--to", "ops@example.com", "--actions", "temp_machine_blocked", "--output", "json")
		assertCode(t, r, 0)
		if !strings.Contains(r.stdout, `"ops@example.com"`) {
			t.Fatalf("alerts email set printed %s", r.stdout)
		}
	})
}
