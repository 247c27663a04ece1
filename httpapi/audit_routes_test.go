package httpapi

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/cluster/audit"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard/geo"
)

// auditEnv is a real single-node cluster whose server writes audit events
// through a real Recorder and delivers webhooks through a real
// Dispatcher, as keyward server wires them.
type auditEnv struct {
	*testEnv
	recorder   *audit.Recorder
	dispatcher *audit.Dispatcher
}

func startAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "keyward-audit-")
	if err != nil {
		t.Fatal(err)
	}
	e := &auditEnv{testEnv: &testEnv{dir: dir, clock: &testClock{}, audit: newRecordingAuditor()}}
	t.Cleanup(e.close)
	if err := e.startCluster(); err != nil {
		t.Fatal(err)
	}

	rcfg := audit.DefaultRecorderConfig()
	rcfg.NodeID, rcfg.FlushInterval = "node-1", 20*time.Millisecond
	if e.recorder, err = audit.NewRecorder(rcfg, e.node, nil, testLogger()); err != nil {
		t.Fatal(err)
	}
	dcfg := audit.DefaultDeliveryConfig()
	dcfg.NodeID, dcfg.AllowLoopback, dcfg.AttemptTimeout = "node-1", true, 2*time.Second
	if e.dispatcher, err = audit.NewDispatcher(dcfg, e.node, e.sm, e.keyring, nil, testLogger()); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Now = e.clock.Now
	cfg.Dev = true
	cfg.Lockout = testLockout
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(proxySource + "/32")}
	cfg.Auditor = RecorderAuditor(e.recorder)
	cfg.Delivery = e.dispatcher
	if e.srv, err = New(cfg, e.node, e.sm, e.keyring, geo.NewEmbedded(), testLogger()); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	e.addr = e.srv.Addr()
	if err := e.initialize(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the node to be ready for machine requests", e.node.Ready)
	return e
}

func (e *auditEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.srv != nil {
		_ = e.srv.Close(ctx)
		e.srv = nil
	}
	if e.recorder != nil {
		_ = e.recorder.Close(ctx)
	}
	e.testEnv.close()
}

// page is the body of an audit query.
type page struct {
	Entries    []fsm.AuditEntry `json:"entries"`
	NextCursor *string          `json:"nextCursor"`
}

func (e *auditEnv) query(t *testing.T, vault, params string) page {
	t.Helper()
	var p page
	e.adminOK(t, http.StatusOK, "GET", "/v1/admin/vaults/"+vault+"/audit?"+params, nil, &p)
	return p
}

func actions(entries []fsm.AuditEntry) []string {
	out := make([]string, len(entries))
	for i, en := range entries {
		out[i] = en.Action
	}
	return out
}

func TestAuditRoutes_QueryFiltersAndCursor(t *testing.T) {
	e := startAuditEnv(t)
	f, m := e.readyMachine(t)
	for range 3 {
		expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil), http.StatusOK)
	}
	waitFor(t, 5*time.Second, "the secret read entry", func() bool {
		return len(e.query(t, f.vault, "action=secret_read").Entries) == 1
	})

	all := e.query(t, f.vault, "order=asc&limit=1000").Entries
	want := []string{"vault_create", "project_create", "secret_create", "secret_create", "bootstrap_token_create",
		"machine_register", "machine_approve", "machine_project_attach", "permission_grant", "secret_read"}
	if strings.Join(actions(all), ",") != strings.Join(want, ",") {
		t.Fatalf("actions %v, want %v", actions(all), want)
	}
	read := e.query(t, f.vault, "action=secret_read").Entries[0]
	if read.MachineID != fsm.MachineID(m.id) || read.SecretID != fsm.SecretID(f.secret) || read.SourceIP != defaultSource ||
		read.ActorKind != fsm.ActorMachine || read.Node != "node-1" || read.UUID == "" {
		t.Fatalf("secret read entry %+v", read)
	}
	approve := e.query(t, f.vault, "action=machine_approve").Entries[0]
	if approve.ActorKind != fsm.ActorUser || approve.SourceIP != defaultSource || approve.ActorID == "" {
		t.Fatalf("approve entry does not name the operator: %+v", approve)
	}

	t.Run("filters", func(t *testing.T) {
		cases := map[string]int{
			"machineId=" + m.id:                            5,
			"secretId=" + f.secret + "&action=secret_read": 1,
			"severity=info&action=vault_create":            1,
			"q=DB-PASSWORD":                                1,
			"sourceIp=198.51.100.99":                       0,
			"since=" + strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10): 0,
			"until=2000-01-01T00:00:00Z": 0,
		}
		for params, n := range cases {
			if got := len(e.query(t, f.vault, params).Entries); got != n {
				t.Errorf("%s: %d entries, want %d", params, got, n)
			}
		}
	})
	t.Run("cursor walks every entry once", func(t *testing.T) {
		var seen []uint64
		params := "limit=3"
		for range 10 {
			p := e.query(t, f.vault, params)
			for _, en := range p.Entries {
				seen = append(seen, en.ID)
			}
			if p.NextCursor == nil {
				break
			}
			params = "limit=3&cursor=" + *p.NextCursor
		}
		if len(seen) != len(all) || seen[0] != all[len(all)-1].ID {
			t.Fatalf("pages gave %v for %d entries, newest first", seen, len(all))
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, params := range []string{"limit=0", "limit=5000", "severity=urgent", "since=yesterday", "cursor=-1", "order=up"} {
			resp := e.admin(t, "GET", "/v1/admin/vaults/"+f.vault+"/audit?"+params, nil)
			expectStatus(t, resp, http.StatusBadRequest)
		}
	})
}

func TestAuditRoutes_ExportFormats(t *testing.T) {
	e := startAuditEnv(t)
	f := e.newFixture(t)
	total := len(e.query(t, f.vault, "limit=1000").Entries)

	resp := e.admin(t, "GET", "/v1/admin/vaults/"+f.vault+"/audit/export?format=csv", nil)
	expectStatus(t, resp, http.StatusOK)
	rows, err := csv.NewReader(strings.NewReader(string(resp.body))).ReadAll()
	if err != nil {
		t.Fatalf("csv export: %v\n%s", err, resp.body)
	}
	if len(rows) != total+1 || rows[0][0] != "id" || rows[1][5] != "vault_create" {
		t.Fatalf("csv has %d rows (want header and %d), first %v", len(rows), total, rows[:2])
	}

	resp = e.admin(t, "GET", "/v1/admin/vaults/"+f.vault+"/audit/export?format=jsonl&action=secret_create", nil)
	expectStatus(t, resp, http.StatusOK)
	lines := strings.Split(strings.TrimSpace(string(resp.body)), "\n")
	if len(lines) != 2 || resp.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("jsonl export of two secret_create entries: %q (%s)", resp.body, resp.header.Get("Content-Type"))
	}
	for _, line := range lines {
		var en fsm.AuditEntry
		if err := json.Unmarshal([]byte(line), &en); err != nil || en.Action != "secret_create" {
			t.Fatalf("jsonl line %q: %v", line, err)
		}
	}
	expectStatus(t, e.admin(t, "GET", "/v1/admin/vaults/"+f.vault+"/audit/export?format=xml", nil), http.StatusBadRequest)
}

// TestAuditRoutes_StreamTailsNewEntries opens the live tail and sees
// entries that are written after it started, with their ids.
func TestAuditRoutes_StreamTailsNewEntries(t *testing.T) {
	e := startAuditEnv(t)
	vault := e.newVault(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+e.addr+"/v1/admin/vaults/"+vault+"/audit/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.root)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Scan() // the opening comment

	e.newProject(t, vault, "streamed")
	var id, data string
	for lines.Scan() {
		line := lines.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
		if data != "" {
			break
		}
	}
	var en fsm.AuditEntry
	if err := json.Unmarshal([]byte(data), &en); err != nil || en.Action != "project_create" || strconv.FormatUint(en.ID, 10) != id {
		t.Fatalf("streamed event id %q data %q (%v); want the project_create entry", id, data, err)
	}
}

func TestAuditRoutes_RolesAndSettings(t *testing.T) {
	e := startAuditEnv(t)
	vault := e.newVault(t)
	tokens := map[string]string{}
	for _, role := range []string{fsm.RoleAuditor, fsm.RoleOperator} {
		var out struct{ Token string }
		e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/tokens", map[string]any{"name": role, "role": role, "vaults": []string{vault}}, &out)
		tokens[role] = out.Token
	}
	base := "/v1/admin/vaults/" + vault
	cases := []struct {
		role, method, path string
		body               any
		want               int
	}{
		{fsm.RoleAuditor, "GET", base + "/audit", nil, http.StatusOK},
		{fsm.RoleAuditor, "GET", base + "/audit/export", nil, http.StatusOK},
		{fsm.RoleAuditor, "PUT", base + "/audit/retention", map[string]int{"days": 30}, http.StatusForbidden},
		{fsm.RoleOperator, "PUT", base + "/alerts/email", map[string]any{"to": []string{"ops@example.com"}, "actions": []string{"*"}}, http.StatusForbidden},
		{fsm.RoleOperator, "POST", base + "/webhooks", map[string]any{"url": "http://127.0.0.1:9/x", "actions": []string{"*"}}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.role+" "+tc.method+" "+tc.path[len(base):], func(t *testing.T) {
			expectStatus(t, e.adminAs(t, tokens[tc.role], tc.method, tc.path, tc.body), tc.want)
		})
	}

	var settings alertSettingsView
	e.adminOK(t, http.StatusOK, "PUT", base+"/audit/retention", map[string]int{"days": 30}, &settings)
	resp := e.admin(t, "PUT", base+"/alerts/email", map[string]any{"to": []string{"ops@example.com"}, "actions": []string{"temp_machine_blocked"}})
	expectStatus(t, resp, http.StatusOK)
	// This test node runs no delivery, so it has no mail relay.
	if !strings.Contains(string(resp.body), "--smtp-addr") {
		t.Errorf("email settings response %s, want a warning that this node has no --smtp-addr", resp.body)
	}
	e.adminOK(t, http.StatusOK, "PUT", base+"/alerts/expiry-warnings", map[string]any{"offsets": []string{"1h", "7d", "1d"}}, &settings)
	e.adminOK(t, http.StatusOK, "GET", base+"/alerts", nil, &settings)
	if settings.RetentionDays != 30 || settings.Email.To[0] != "ops@example.com" || strings.Join(settings.ExpiryWarnings, ",") != "7d,1d,1h" {
		t.Fatalf("settings %+v", settings)
	}
	for _, bad := range []any{
		map[string]any{"to": []string{"Ops <ops@example.com>"}, "actions": []string{"*"}},
		map[string]any{"to": []string{"ops@example.com"}, "actions": []string{"Not An Action"}},
	} {
		expectStatus(t, e.admin(t, "PUT", base+"/alerts/email", bad), http.StatusBadRequest)
	}
	expectStatus(t, e.admin(t, "PUT", base+"/alerts/expiry-warnings", map[string]any{"offsets": []string{"soon"}}), http.StatusBadRequest)
	expectStatus(t, e.admin(t, "PUT", base+"/audit/retention", map[string]int{"days": 0}), http.StatusBadRequest)
}
