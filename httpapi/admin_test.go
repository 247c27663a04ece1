package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

func TestAdmin_InitOnlyOnce(t *testing.T) {
	e := sharedEnv(t)
	resp := e.mustSend(t, defaultSource, "POST", "/v1/sys/init", nil, []byte(`{}`))
	expectStatus(t, resp, http.StatusConflict)
	var body errorBody
	if err := json.Unmarshal(resp.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.RequestID == "" || body.RequestID != resp.header.Get("X-Request-Id") {
		t.Errorf("409 body %s, want requestId equal to X-Request-Id %q", resp.body, resp.header.Get("X-Request-Id"))
	}
	if !strings.HasPrefix(e.root, "kwt_") || len(e.root) != 36 {
		t.Errorf("root token %q is not kwt_ + 32 characters", e.root)
	}
}

func TestAdmin_RolesAndVaultScopes(t *testing.T) {
	e := sharedEnv(t)
	vaultA, vaultB := e.newVault(t), e.newVault(t)
	newToken := func(role string, vaults []string, ttl string) string {
		t.Helper()
		var out struct{ Token string }
		e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/tokens",
			map[string]any{"name": role + " token", "role": role, "vaults": vaults, "ttl": ttl}, &out)
		return out.Token
	}
	operatorA := newToken("operator", []string{vaultA}, "")
	auditor := newToken("auditor", []string{"*"}, "")
	ownerA := newToken("owner", []string{vaultA}, "")

	cases := []struct {
		name, token, method, path string
		body                      any
		want                      int
	}{
		{"operator reads its vault", operatorA, "GET", "/v1/admin/vaults/" + vaultA, nil, http.StatusOK},
		{"operator writes in its vault", operatorA, "POST", "/v1/admin/vaults/" + vaultA + "/projects", map[string]string{"name": "p"}, http.StatusCreated},
		{"operator outside its scope", operatorA, "GET", "/v1/admin/vaults/" + vaultB, nil, http.StatusForbidden},
		{"operator cannot create vaults", operatorA, "POST", "/v1/admin/vaults", map[string]string{"name": "v"}, http.StatusForbidden},
		{"operator cannot manage tokens", operatorA, "POST", "/v1/admin/tokens", map[string]any{"name": "x", "role": "auditor", "vaults": []string{vaultA}}, http.StatusForbidden},
		{"operator lists only its vault", operatorA, "GET", "/v1/admin/vaults", nil, http.StatusOK},
		{"auditor reads", auditor, "GET", "/v1/admin/vaults/" + vaultB + "/machines", nil, http.StatusOK},
		{"auditor cannot write", auditor, "POST", "/v1/admin/vaults/" + vaultB + "/projects", map[string]string{"name": "p"}, http.StatusForbidden},
		{"auditor reads cluster status", auditor, "GET", "/v1/sys/cluster", nil, http.StatusOK},
		{"scoped owner cannot widen scope", ownerA, "POST", "/v1/admin/tokens", map[string]any{"name": "x", "role": "owner", "vaults": []string{"*"}}, http.StatusForbidden},
		{"scoped owner issues within scope", ownerA, "POST", "/v1/admin/tokens", map[string]any{"name": "x", "role": "auditor", "vaults": []string{vaultA}}, http.StatusCreated},
		{"unknown token", "kwt_" + strings.Repeat("A", 32), "GET", "/v1/admin/vaults", nil, http.StatusUnauthorized},
		{"malformed token", "not-a-token", "GET", "/v1/admin/vaults", nil, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.adminAs(t, tc.token, tc.method, tc.path, tc.body)
			expectStatus(t, resp, tc.want)
			if tc.want == http.StatusUnauthorized && resp.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("operator listing is filtered", func(t *testing.T) {
		var out struct{ Vaults []vaultView }
		resp := e.adminAs(t, operatorA, "GET", "/v1/admin/vaults", nil)
		_ = json.Unmarshal(resp.body, &out)
		if len(out.Vaults) != 1 || out.Vaults[0].ID != vaultA {
			t.Errorf("vaults = %+v, want only %s", out.Vaults, vaultA)
		}
	})

	t.Run("missing and non-Bearer authorization", func(t *testing.T) {
		expectStatus(t, e.mustSend(t, defaultSource, "GET", "/v1/admin/vaults", nil, nil), http.StatusUnauthorized)
		resp := e.mustSend(t, defaultSource, "GET", "/v1/admin/vaults", []header{{"Authorization", "Basic " + e.root}}, nil)
		expectStatus(t, resp, http.StatusUnauthorized)
	})

	t.Run("expired token", func(t *testing.T) {
		short := newToken("auditor", []string{"*"}, "1m")
		expectStatus(t, e.adminAs(t, short, "GET", "/v1/admin/vaults", nil), http.StatusOK)
		e.clock.freeze(t, time.Now().Add(time.Minute))
		expectStatus(t, e.adminAs(t, short, "GET", "/v1/admin/vaults", nil), http.StatusUnauthorized)
	})
}

func TestAdmin_IdempotencyKeyAppliesOnce(t *testing.T) {
	e := sharedEnv(t)
	key := "create-vault-" + newNonce()
	create := func() string {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"name": "idempotent"})
		resp := e.mustSend(t, defaultSource, "POST", "/v1/admin/vaults",
			[]header{{"Authorization", "Bearer " + e.root}, {"Idempotency-Key", key}}, body)
		expectStatus(t, resp, http.StatusCreated)
		var v vaultView
		_ = json.Unmarshal(resp.body, &v)
		return v.ID
	}
	before := len(e.sm.Vaults())
	first, second := create(), create()
	if first != second {
		t.Errorf("retried create returned %s, first %s", second, first)
	}
	if got := len(e.sm.Vaults()) - before; got != 1 {
		t.Errorf("%d vaults created by a retried request, want 1", got)
	}
}

func TestAdmin_IdempotencyKeyReusedForOtherRequest(t *testing.T) {
	e := sharedEnv(t)
	f := e.newFixture(t)
	key := "rotate-" + newNonce()
	update := func(value string) response {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"value": value})
		return e.mustSend(t, defaultSource, "PUT", "/v1/admin/vaults/"+f.vault+"/secrets/"+f.secret,
			[]header{{"Authorization", "Bearer " + e.root}, {"Idempotency-Key", key}}, body)
	}
	expectStatus(t, update("first"), http.StatusOK)
	expectStatus(t, update("first"), http.StatusOK) // a retry of the same request

	resp := update("second")
	expectStatus(t, resp, http.StatusConflict)
	if !strings.Contains(string(resp.body), "different request") {
		t.Errorf("body %s, want it to say the key was used for a different request", resp.body)
	}
	if got, err := e.sm.SecretValue(fsm.SecretID(f.secret)); err != nil || string(got) != "first" {
		t.Errorf("stored value %q (%v), want first", got, err)
	}
}

func TestAdmin_SecretsAreSealedBeforeProposing(t *testing.T) {
	e := sharedEnv(t)
	f := e.newFixture(t)
	marker := "plaintext-marker-" + strings.Repeat("q", 12) + newNonce()[:8]
	id := e.newSecret(t, f.vault, f.project, map[string]any{"name": "marker", "value": marker})

	if got, err := e.sm.SecretValue(fsm.SecretID(id)); err != nil || string(got) != marker {
		t.Fatalf("SecretValue = %q, %v; want the value back", got, err)
	}
	needles := [][]byte{[]byte(marker), []byte(base64.StdEncoding.EncodeToString([]byte(marker)))}
	err := filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s holds the plaintext (%q)", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAdmin_SecretUpdates(t *testing.T) {
	e := sharedEnv(t)
	f := e.newFixture(t)
	secretPath := "/v1/admin/vaults/" + f.vault + "/secrets/" + f.secret

	var updated secretView
	e.adminOK(t, http.StatusOK, "PUT", secretPath, map[string]string{"value": "v2"}, &updated)
	if updated.Version != 2 || updated.ID != f.secret {
		t.Errorf("updated secret = %+v, want version 2", updated)
	}
	if got, _ := e.sm.SecretValue(fsm.SecretID(f.secret)); string(got) != "v2" {
		t.Errorf("value after update = %q", got)
	}

	cases := []struct {
		name string
		body string
		want int
	}{
		{"fields for a plain secret", `{"fields":{"a":"b"}}`, http.StatusBadRequest},
		{"both value and fields", `{"value":"x","fields":{"a":"b"}}`, http.StatusBadRequest},
		{"rename", `{"name":"other","value":"x"}`, http.StatusBadRequest},
		{"nothing", `{}`, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectStatus(t, e.admin(t, "PUT", secretPath, []byte(tc.body)), tc.want)
		})
	}

	var versions struct{ Versions []secretVersionView }
	e.adminOK(t, http.StatusOK, "GET", secretPath+"/versions", nil, &versions)
	if len(versions.Versions) != 2 {
		t.Errorf("versions = %+v, want 2", versions.Versions)
	}
}

func TestAdmin_VaultAllowlistIsCheckedThird(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	allowlist := "/v1/admin/vaults/" + f.vault + "/ip-allowlist"

	for name, body := range map[string]string{
		"invalid CIDR":            `{"enabled":true,"entries":[{"cidr":"300.1.2.3/8","label":"x"}]}`,
		"enabled without entries": `{"enabled":true,"entries":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			expectStatus(t, e.admin(t, "PUT", allowlist, []byte(body)), http.StatusBadRequest)
		})
	}

	e.adminOK(t, http.StatusOK, "PUT", allowlist, []byte(`{"enabled":true,"entries":[{"cidr":"192.0.2.0/24","label":"office"}]}`), nil)
	resp := e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil)
	expectStatus(t, resp, http.StatusForbidden)
	if msg := machineError(t, resp); msg != msgAccessDenied {
		t.Errorf("allowlist block message = %q", msg)
	}
	ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionVaultIPBlocked)
	if ev.SourceIP != defaultSource || ev.MachineID != m.id {
		t.Errorf("vault_ip_blocked event = %+v", ev)
	}

	h := m.signedHeaders("GET", "/v1/secret/"+f.secret, nil, e.clock.Now().Unix())
	h = append(h, header{"X-Forwarded-For", "192.0.2.44"})
	expectStatus(t, e.mustSend(t, proxySource, "GET", "/v1/secret/"+f.secret, h, nil), http.StatusOK)

	e.adminOK(t, http.StatusOK, "PUT", allowlist, []byte(`{"enabled":false,"entries":[]}`), nil)
	expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil), http.StatusOK)
}

func TestSys_HealthClusterAndMetrics(t *testing.T) {
	e := sharedEnv(t)

	resp := e.mustSend(t, defaultSource, "GET", "/v1/sys/health", nil, nil)
	expectStatus(t, resp, http.StatusOK)
	var h healthResponse
	if err := json.Unmarshal(resp.body, &h); err != nil {
		t.Fatal(err)
	}
	if h.NodeID != "node-1" || h.State != "leader" || h.LeaderID != "node-1" || h.AppliedIndex == 0 || !h.Healthy || !h.Initialized {
		t.Errorf("health = %+v", h)
	}

	var c struct {
		Members []memberView
	}
	e.adminOK(t, http.StatusOK, "GET", "/v1/sys/cluster", nil, &c)
	if len(c.Members) != 1 || c.Members[0].ID != "node-1" || !c.Members[0].Leader {
		t.Errorf("cluster members = %+v", c.Members)
	}

	resp = e.mustSend(t, defaultSource, "GET", "/metrics", nil, nil)
	expectStatus(t, resp, http.StatusOK)
	for _, name := range []string{"keyward_http_request_duration_seconds", "keyward_http_requests_total", "keyward_audit_events_total"} {
		if !strings.Contains(string(resp.body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestErrors_StatusTable(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("apply: %w", cluster.ErrNoLeader), 503, "no_leader"},
		{fmt.Errorf("apply: %w", cluster.ErrIndeterminate), 503, "commit_indeterminate"},
		{context.DeadlineExceeded, 503, "timeout"},
		{fsm.ErrorFromCode("not_found", "x"), 404, "not_found"},
		{fsm.ErrorFromCode("already_exists", "x"), 409, "already_exists"},
		{fsm.ErrorFromCode("already_initialized", "x"), 409, "already_initialized"},
		{fsm.ErrorFromCode("conflict", "x"), 409, "conflict"},
		{fsm.ErrorFromCode("invalid", "x"), 400, "invalid"},
		{fsm.ErrorFromCode("token_invalid", "x"), 401, "token_invalid"},
		{fsm.ErrorFromCode("over_cap", "x"), 422, "over_cap"},
		{fsm.ErrorFromCode("not_allowed", "x"), 409, "not_allowed"},
		{guard.ErrBadPath, 400, "bad_path"},
		{guard.ErrDuplicateHeader, 400, "duplicate_header"},
		{guard.ErrMissingHeader, 401, "missing_header"},
		{guard.ErrTimestampSkew, 401, "timestamp_skew"},
		{guard.ErrInvalidPublicKey, 400, "invalid_public_key"},
		{guard.ErrInvalidGuardrails, 400, "invalid_guardrails"},
		{fail(ErrLocked, "x"), 429, "locked"},
		{fail(ErrGone, "x"), 410, "gone"},
		{fail(ErrOverCap, "x"), 422, "over_cap"},
		{fail(ErrBodyTooLarge, "x"), 413, "body_too_large"},
		{fail(ErrHeadersTooLarge, "x"), 431, "headers_too_large"},
		{errors.New("anything else"), 500, "internal"},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			status, code := statusFor(tc.err)
			if status != tc.status || code != tc.code {
				t.Errorf("statusFor = %d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
}

func TestErrors_WriteErrorBodies(t *testing.T) {
	e := sharedEnv(t)
	cases := []struct {
		name       string
		plane      plane
		err        error
		wantBody   string
		retryAfter string
	}{
		{"indeterminate commit on the admin plane", planeAdmin,
			applyError(fmt.Errorf("x: %w", cluster.ErrIndeterminate), time.Second),
			`{"error":"The write may or may not have been applied because leadership changed; retry with the same Idempotency-Key","requestId":"rid","code":"commit_indeterminate"}`, "1"},
		{"indeterminate commit on registration", planeRegistration,
			applyError(cluster.ErrIndeterminate, time.Second),
			`{"error":"The write may or may not have been applied because leadership changed; retry with the same Idempotency-Key","code":"commit_indeterminate"}`, "1"},
		{"no leader on the machine plane", planeMachine,
			applyError(cluster.ErrNoLeader, time.Second), `{"error":"No cluster leader is available; retry in a moment"}`, "1"},
		{"internal error hides its cause", planeMachine,
			errors.New("disk on fire"), `{"error":"Internal server error"}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			rc := &request{ctx: &ctx, id: "rid", plane: tc.plane}
			e.srv.writeError(rc, tc.err)
			if got := string(ctx.Response.Body()); got != tc.wantBody {
				t.Errorf("body %s, want %s", got, tc.wantBody)
			}
			if got := string(ctx.Response.Header.Peek("Retry-After")); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
		})
	}
}

func TestServer_PanicBecomes500(t *testing.T) {
	e := sharedEnv(t)
	cfg := DefaultConfig()
	cfg.Now = e.clock.Now
	srv, err := New(cfg, e.node, e.sm, e.keyring, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv.routes = append(srv.routes, newRoute("GET", "/v1/sys/panic", planeAdmin, func(*request) error {
		panic("broken handler")
	}))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &fasthttp.Server{Handler: srv.Handler(), ErrorHandler: srv.TransportErrorHandler()}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Shutdown() })
	own := &testEnv{addr: ln.Addr().String()}

	resp := own.mustSend(t, defaultSource, "GET", "/v1/sys/panic", nil, nil)
	expectStatus(t, resp, http.StatusInternalServerError)
	var body errorBody
	_ = json.Unmarshal(resp.body, &body)
	if body.Error != "Internal server error" || body.RequestID != resp.header.Get("X-Request-Id") {
		t.Errorf("500 body %s", resp.body)
	}
	expectStatus(t, own.mustSend(t, defaultSource, "GET", "/v1/sys/health", nil, nil), http.StatusOK)
}

func TestRouter_RoutesFitParamLimit(t *testing.T) {
	e := sharedEnv(t)
	seen := map[string]bool{}
	for _, r := range e.srv.routes {
		if len(r.params) > maxParams {
			t.Errorf("route %s has %d parameters, limit %d", r.pattern, len(r.params), maxParams)
		}
		key := r.method + " " + r.pattern
		if seen[key] {
			t.Errorf("route %s is registered twice", key)
		}
		seen[key] = true
	}
}
