package client

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

const testToken = "kwt_0123456789abcdefghijABCDEFGHIJ01"

func newTestClient(t *testing.T, f *fakeAPI, opts ...Option) *Client {
	t.Helper()
	c, err := New(f.url(), append([]Option{WithToken(testToken)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// TestClient_AdminWireFormat checks the method, path and JSON body of each
// admin call against the wire contract.
func TestClient_AdminWireFormat(t *testing.T) {
	ctx := context.Background()
	const v, m = "vault_0123456789abcdef", "6f1c2b9e-4a57-4e0b-9d2c-3b8a5f7e1d20"

	cases := []struct {
		name     string
		call     func(c *Client) error
		method   string
		path     string
		wantBody string
	}{
		{"init", func(c *Client) error { _, err := c.Init(ctx); return err },
			"POST", "/v1/sys/init", `{}`},
		{"health", func(c *Client) error { _, err := c.Health(ctx); return err },
			"GET", "/v1/sys/health", ``},
		{"create vault", func(c *Client) error { _, err := c.CreateVault(ctx, "prod"); return err },
			"POST", "/v1/admin/vaults", `{"name":"prod"}`},
		{"list vaults", func(c *Client) error { _, err := c.ListVaults(ctx); return err },
			"GET", "/v1/admin/vaults", ``},
		{"create project", func(c *Client) error { _, err := c.CreateProject(ctx, v, "api"); return err },
			"POST", "/v1/admin/vaults/" + v + "/projects", `{"name":"api"}`},
		{"list projects", func(c *Client) error { _, err := c.ListProjects(ctx, v); return err },
			"GET", "/v1/admin/vaults/" + v + "/projects", ``},
		{"create plain secret", func(c *Client) error {
			_, err := c.CreateSecret(ctx, v, "proj_0123456789", "db", SecretValue{Value: "hunter2"})
			return err
		}, "POST", "/v1/admin/vaults/" + v + "/projects/proj_0123456789/secrets", `{"name":"db","value":"hunter2"}`},
		{"create empty plain secret", func(c *Client) error {
			_, err := c.CreateSecret(ctx, v, "proj_0123456789", "empty", SecretValue{})
			return err
		}, "POST", "/v1/admin/vaults/" + v + "/projects/proj_0123456789/secrets", `{"name":"empty","value":""}`},
		{"create structured secret", func(c *Client) error {
			_, err := c.CreateSecret(ctx, v, "proj_0123456789", "db", SecretValue{Fields: map[string]string{"host": "h", "password": "p"}})
			return err
		}, "POST", "/v1/admin/vaults/" + v + "/projects/proj_0123456789/secrets",
			`{"name":"db","fields":{"host":"h","password":"p"}}`},
		{"update secret", func(c *Client) error {
			_, err := c.UpdateSecret(ctx, v, "sk_0123456789", SecretValue{Value: "new"})
			return err
		}, "PUT", "/v1/admin/vaults/" + v + "/secrets/sk_0123456789", `{"value":"new"}`},
		{"list secrets", func(c *Client) error { _, err := c.ListSecrets(ctx, v, "proj_0123456789"); return err },
			"GET", "/v1/admin/vaults/" + v + "/projects/proj_0123456789/secrets", ``},
		{"create bootstrap token", func(c *Client) error { _, err := c.CreateBootstrapToken(ctx, v); return err },
			"POST", "/v1/admin/vaults/" + v + "/bootstrap-tokens", `{}`},
		{"list machines", func(c *Client) error { _, err := c.ListMachines(ctx, v); return err },
			"GET", "/v1/admin/vaults/" + v + "/machines", ``},
		{"get machine", func(c *Client) error { _, err := c.GetMachine(ctx, v, m); return err },
			"GET", "/v1/admin/vaults/" + v + "/machines/" + m, ``},
		{"approve", func(c *Client) error { _, err := c.ApproveMachine(ctx, v, m); return err },
			"POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/approve", `{}`},
		{"deny", func(c *Client) error { _, err := c.DenyMachine(ctx, v, m); return err },
			"POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/deny", `{}`},
		{"revoke", func(c *Client) error { _, err := c.RevokeMachine(ctx, v, m); return err },
			"POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/revoke", `{}`},
		{"disable", func(c *Client) error { _, err := c.DisableMachine(ctx, v, m); return err },
			"POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/disable", `{}`},
		{"enable", func(c *Client) error { _, err := c.EnableMachine(ctx, v, m); return err },
			"POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/enable", `{}`},
		{"attach project", func(c *Client) error { _, err := c.AttachProject(ctx, v, m, "proj_0123456789"); return err },
			"POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/projects", `{"projectId":"proj_0123456789"}`},
		{"set grants", func(c *Client) error { _, err := c.SetGrants(ctx, v, m, []string{"sk_a", "sk_b"}); return err },
			"PUT", "/v1/admin/vaults/" + v + "/machines/" + m + "/grants", `{"secretIds":["sk_a","sk_b"]}`},
		{"clear grants", func(c *Client) error { _, err := c.SetGrants(ctx, v, m, nil); return err },
			"PUT", "/v1/admin/vaults/" + v + "/machines/" + m + "/grants", `{"secretIds":[]}`},
		{"issue temp token", func(c *Client) error {
			_, err := c.IssueTempToken(ctx, v, TempTokenRequest{
				Name: "pentest", Purpose: "INC-7", Lifetime: Lifetime{Months: 1, Days: 2, Hours: 3},
				TokenTTL:   2 * time.Hour,
				Guardrails: &guard.Guardrails{IPAllowlist: &guard.IPAxis{CIDRs: []string{"203.0.113.0/24"}}},
			})
			return err
		}, "POST", "/v1/admin/vaults/" + v + "/temp-tokens",
			`{"name":"pentest","purpose":"INC-7","lifetime":{"months":1,"days":2,"hours":3},"tokenTtl":"2h0m0s","guardrails":{"ipAllowlist":{"cidrs":["203.0.113.0/24"]}}}`},
		{"issue temp token defaults", func(c *Client) error {
			_, err := c.IssueTempToken(ctx, v, TempTokenRequest{Name: "ci", Lifetime: Lifetime{Hours: 12}})
			return err
		}, "POST", "/v1/admin/vaults/" + v + "/temp-tokens",
			`{"name":"ci","lifetime":{"months":0,"days":0,"hours":12}}`},
		{"list temp tokens", func(c *Client) error { _, err := c.ListTempTokens(ctx, v); return err },
			"GET", "/v1/admin/vaults/" + v + "/temp-tokens", ``},
		{"revoke temp token", func(c *Client) error { return c.RevokeTempToken(ctx, v, "tt_1") },
			"DELETE", "/v1/admin/vaults/" + v + "/temp-tokens/tt_1", ``},
		{"extend until", func(c *Client) error {
			_, err := c.Extend(ctx, v, m, ExtendRequest{ExpiresAt: 1782820800000, Reason: "audit"})
			return err
		}, "POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/extend", `{"expiresAt":1782820800000,"reason":"audit"}`},
		{"extend by", func(c *Client) error {
			_, err := c.Extend(ctx, v, m, ExtendRequest{Duration: 720 * time.Hour, Reason: "audit"})
			return err
		}, "POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/extend", `{"duration":"720h0m0s","reason":"audit"}`},
		{"revert", func(c *Client) error { _, err := c.Revert(ctx, v, m, "mistake"); return err },
			"POST", "/v1/admin/vaults/" + v + "/machines/" + m + "/revert", `{"reason":"mistake"}`},
		{"extensions", func(c *Client) error { _, err := c.Extensions(ctx, v, m); return err },
			"GET", "/v1/admin/vaults/" + v + "/machines/" + m + "/extensions", ``},
		{"set guardrails", func(c *Client) error {
			_, err := c.SetGuardrails(ctx, v, m, guard.Guardrails{
				Countries: &guard.CountryAxis{Codes: []string{"NO"}, Observe: true},
				TimeWindow: &guard.WindowAxis{Start: "22:00", End: "06:00", Timezone: "Europe/Oslo",
					Days: []string{"mon", "fri"}},
			})
			return err
		}, "PUT", "/v1/admin/vaults/" + v + "/machines/" + m + "/guardrails",
			`{"countries":{"codes":["NO"],"observe":true},"timeWindow":{"start":"22:00","end":"06:00","timezone":"Europe/Oslo","days":["mon","fri"]}}`},
		{"generic do", func(c *Client) error { return c.Do(ctx, "GET", "/v1/sys/cluster?verbose=1", nil, nil) },
			"GET", "/v1/sys/cluster?verbose=1", ``},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			c := newTestClient(t, f)

			if err := tc.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}

			got := f.last(t)
			if got.Method != tc.method {
				t.Errorf("method = %s, want %s", got.Method, tc.method)
			}
			if got.RequestURI != tc.path {
				t.Errorf("path = %s, want %s", got.RequestURI, tc.path)
			}
			if auth := got.Header.Get("Authorization"); auth != "Bearer "+testToken {
				t.Errorf("Authorization = %q, want the Bearer token", auth)
			}
			assertJSONEqual(t, got.Body, tc.wantBody)
			if tc.wantBody != "" && got.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got.Header.Get("Content-Type"))
			}
		})
	}
}

func TestClient_DecodesResponses(t *testing.T) {
	ctx := context.Background()
	f := newFakeAPI(t)
	c := newTestClient(t, f)

	f.respond(http.StatusCreated, `{"id":"tt_9","token":"`+strings.Repeat("ab", 32)+`","expiresAt":1700000000000,"commands":{"sh":"curl … | sh","ps":"iwr … | iex"}}`)
	tok, err := c.IssueTempToken(ctx, "vault_x", TempTokenRequest{Name: "n", Lifetime: Lifetime{Days: 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := TempToken{ID: "tt_9", Token: strings.Repeat("ab", 32), ExpiresAt: 1700000000000,
		Commands: Commands{Sh: "curl … | sh", PS: "iwr … | iex"}}
	if !reflect.DeepEqual(*tok, want) {
		t.Errorf("temp token = %+v, want %+v", *tok, want)
	}

	f.respond(http.StatusOK, `{"machines":[{"id":"m1","name":"ci","kind":"temp","status":"pending","expiresAt":5,"guardrails":{"ipAllowlist":{"cidrs":["10.0.0.0/8"],"observe":true}},"projects":[],"grants":["sk_1"]}]}`)
	machines, err := c.ListMachines(ctx, "vault_x")
	if err != nil {
		t.Fatal(err)
	}
	if len(machines) != 1 {
		t.Fatalf("got %d machines, want 1", len(machines))
	}
	got := machines[0]
	if got.Kind != "temp" || got.Status != "pending" || got.ExpiresAt != 5 {
		t.Errorf("machine = %+v", got)
	}
	if got.Guardrails == nil || got.Guardrails.IPAllowlist == nil || !got.Guardrails.IPAllowlist.Observe {
		t.Errorf("guardrails = %+v, want the observed ip axis", got.Guardrails)
	}
	if !reflect.DeepEqual(got.Grants, []string{"sk_1"}) {
		t.Errorf("grants = %v", got.Grants)
	}

	f.respond(http.StatusOK, "")
	m, err := c.ApproveMachine(ctx, "vault_x", "m1")
	if err != nil {
		t.Fatal(err)
	}
	if m != nil {
		t.Errorf("approve with an empty response returned %+v, want nil", m)
	}
}

func TestClient_APIErrors(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		header    string
		sentinel  error
		message   string
		requestID string
		code      string
		retryable bool
	}{
		{"not found", 404, `{"error":"machine not found","requestId":"r-1","code":"not_found"}`, "",
			ErrNotFound, "machine not found", "r-1", "not_found", false},
		{"conflict", 409, `{"error":"already initialized","requestId":"r-2"}`, "",
			ErrConflict, "already initialized", "r-2", "", false},
		{"over cap", 422, `{"error":"new expiry is after the cap 2027-01-10T00:00:00Z","requestId":"r-3","code":"over_cap"}`, "",
			ErrBadRequest, "new expiry is after the cap 2027-01-10T00:00:00Z", "r-3", "over_cap", false},
		{"unauthorized", 401, `{"error":"invalid token"}`, "",
			ErrUnauthorized, "invalid token", "", "", false},
		{"forbidden", 403, `{"error":"Access denied"}`, "",
			ErrForbidden, "Access denied", "", "", false},
		{"gone", 410, `{"error":"token already used"}`, "",
			ErrGone, "token already used", "", "", false},
		{"locked", 429, `{"error":"too many failed attempts"}`, "",
			ErrRateLimited, "too many failed attempts", "", "", false},
		{"indeterminate", 503, `{"error":"outcome unknown","code":"commit_indeterminate"}`, "",
			ErrUnavailable, "outcome unknown", "", "commit_indeterminate", true},
		{"proxy page", 502, "<html>Bad Gateway</html>\n", "req-proxy",
			ErrUnavailable, "<html>Bad Gateway</html>", "req-proxy", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			if tc.header != "" {
				f.header = http.Header{"X-Request-Id": {tc.header}}
			}
			f.respond(tc.status, tc.body)
			c := newTestClient(t, f)

			_, err := c.GetMachine(context.Background(), "vault_x", "m1")

			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if apiErr.Status != tc.status {
				t.Errorf("Status = %d, want %d", apiErr.Status, tc.status)
			}
			if apiErr.Message != tc.message {
				t.Errorf("Message = %q, want %q", apiErr.Message, tc.message)
			}
			if apiErr.RequestID != tc.requestID {
				t.Errorf("RequestID = %q, want %q", apiErr.RequestID, tc.requestID)
			}
			if apiErr.Code != tc.code {
				t.Errorf("Code = %q, want %q", apiErr.Code, tc.code)
			}
			if apiErr.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", apiErr.Retryable(), tc.retryable)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error text %q lacks the server message", err.Error())
			}
		})
	}
}

func TestClient_ErrorMessageIsBounded(t *testing.T) {
	f := newFakeAPI(t)
	f.respond(500, strings.Repeat("é", 4000))
	c := newTestClient(t, f)

	err := c.Do(context.Background(), "GET", "/v1/x", nil, nil)

	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v is not an *APIError", err)
	}
	if len(apiErr.Message) > maxErrorMessage+len("…") {
		t.Errorf("message has %d bytes, want at most %d", len(apiErr.Message), maxErrorMessage)
	}
	if !strings.HasSuffix(apiErr.Message, "é…") {
		t.Errorf("message %q was not cut on a character boundary", apiErr.Message[len(apiErr.Message)-8:])
	}
}

func TestClient_RejectsBadArguments(t *testing.T) {
	f := newFakeAPI(t)
	c := newTestClient(t, f)
	ctx := context.Background()

	cases := []struct {
		name string
		call func() error
	}{
		{"empty vault id", func() error { _, err := c.ListMachines(ctx, ""); return err }},
		{"dot segment id", func() error { _, err := c.GetMachine(ctx, "vault_x", ".."); return err }},
		{"unknown action", func() error { _, err := c.MachineAction(ctx, "v", "m", "purge-all"); return err }},
		{"extend without reason", func() error {
			_, err := c.Extend(ctx, "v", "m", ExtendRequest{Duration: time.Hour})
			return err
		}},
		{"extend with both", func() error {
			_, err := c.Extend(ctx, "v", "m", ExtendRequest{Duration: time.Hour, ExpiresAt: 1, Reason: "r"})
			return err
		}},
		{"extend with neither", func() error {
			_, err := c.Extend(ctx, "v", "m", ExtendRequest{Reason: "r"})
			return err
		}},
		{"extend by zero", func() error {
			_, err := c.Extend(ctx, "v", "m", ExtendRequest{Duration: 0, Reason: "r"})
			return err
		}},
		{"extend by negative", func() error {
			_, err := c.Extend(ctx, "v", "m", ExtendRequest{Duration: -time.Hour, Reason: "r"})
			return err
		}},
		{"extend to negative time", func() error {
			_, err := c.Extend(ctx, "v", "m", ExtendRequest{ExpiresAt: -5, Reason: "r"})
			return err
		}},
		{"revert without reason", func() error { _, err := c.Revert(ctx, "v", "m", "  "); return err }},
		{"negative token TTL", func() error {
			_, err := c.IssueTempToken(ctx, "v", TempTokenRequest{Name: "n", TokenTTL: -time.Second})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.count()
			err := tc.call()
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("error = %v, want ErrInvalidArgument", err)
			}
			if f.count() != before {
				t.Errorf("a request was sent despite the invalid argument")
			}
		})
	}
}

func TestClient_NewValidatesSettings(t *testing.T) {
	cases := []struct {
		name string
		url  string
		opts []Option
	}{
		{"ftp scheme", "ftp://127.0.0.1", nil},
		{"no host", "http://", nil},
		{"credentials", "http://user:pw@127.0.0.1:8200", nil},
		{"query", "http://127.0.0.1:8200/?x=1", nil},
		{"not a URL", "://", nil},
		{"token with newline", "http://127.0.0.1:8200", []Option{WithToken("kwt_abc\n")}},
		{"token with space", "http://127.0.0.1:8200", []Option{WithToken("kwt abc")}},
		{"negative timeout", "http://127.0.0.1:8200", []Option{WithTimeout(-time.Second)}},
		{"http client and timeout", "http://127.0.0.1:8200", []Option{WithHTTPClient(&http.Client{}), WithTimeout(time.Second)}},
		{"missing CA file", "https://127.0.0.1:8200", []Option{WithCAFile("/nonexistent/ca.pem")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.url, tc.opts...); err == nil {
				t.Errorf("New(%q) succeeded, want an error", tc.url)
			}
		})
	}
}

func TestClient_BaseURLPrefixAndTrailingSlash(t *testing.T) {
	f := newFakeAPI(t)
	c, err := New(f.url()+"/keyward/", WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListVaults(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t).RequestURI; got != "/keyward/v1/admin/vaults" {
		t.Errorf("path = %s, want /keyward/v1/admin/vaults", got)
	}
}

func TestClient_EscapesPathSegments(t *testing.T) {
	f := newFakeAPI(t)
	c := newTestClient(t, f)

	if _, err := c.GetMachine(context.Background(), "vault_x", "a/b?c"); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t).RequestURI; got != "/v1/admin/vaults/vault_x/machines/a%2Fb%3Fc" {
		t.Errorf("path = %s, want the id escaped as one segment", got)
	}
}

func TestClient_DoesNotFollowRedirects(t *testing.T) {
	f := newFakeAPI(t)
	f.header = http.Header{"Location": {"http://127.0.0.1:1/elsewhere"}}
	f.respond(http.StatusTemporaryRedirect, "")
	c := newTestClient(t, f)

	err := c.Do(context.Background(), "POST", "/v1/admin/vaults", map[string]string{"name": "x"}, nil)

	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTemporaryRedirect {
		t.Fatalf("error = %v, want an *APIError with status 307", err)
	}
	if f.count() != 1 {
		t.Errorf("the fake API received %d requests, want 1", f.count())
	}
}

func TestClient_UserAgent(t *testing.T) {
	f := newFakeAPI(t)
	c := newTestClient(t, f, WithUserAgent("ops-bot/2"))
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t).Header.Get("User-Agent"); got != "ops-bot/2" {
		t.Errorf("User-Agent = %q, want ops-bot/2", got)
	}
}

func TestClient_NoTokenSendsNoAuthorization(t *testing.T) {
	f := newFakeAPI(t)
	c, err := New(f.url())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.last(t).Header["Authorization"]; ok {
		t.Errorf("Authorization = %q, want no header", got)
	}
}

func TestClient_IdempotencyKeyHeader(t *testing.T) {
	f := newFakeAPI(t)
	c := newTestClient(t, f)
	ctx := WithIdempotencyKey(context.Background(), "r-77")

	if _, err := c.Extend(ctx, "vault_x", "m1", ExtendRequest{Duration: time.Hour, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t).Header.Get("Idempotency-Key"); got != "r-77" {
		t.Errorf("Idempotency-Key = %q, want r-77", got)
	}

	if _, err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.last(t).Header["Idempotency-Key"]; ok {
		t.Errorf("a request without a key sent Idempotency-Key %q", got)
	}
}

func TestClient_IdempotencyPrefixNumbersWrites(t *testing.T) {
	f := newFakeAPI(t)
	c := newTestClient(t, f, WithIdempotencyPrefix("run-9"))
	ctx := context.Background()

	for i, want := range []string{"run-9-1", "run-9-2"} {
		if _, err := c.Extend(ctx, "vault_x", "m1", ExtendRequest{Duration: time.Hour, Reason: "r"}); err != nil {
			t.Fatal(err)
		}
		if got := f.last(t).Header.Get("Idempotency-Key"); got != want {
			t.Errorf("write %d: Idempotency-Key = %q, want %q", i+1, got, want)
		}
	}
	if _, err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.last(t).Header["Idempotency-Key"]; ok {
		t.Errorf("a read sent Idempotency-Key %q", got)
	}
	// A key in the context wins over the prefix.
	if _, err := c.Extend(WithIdempotencyKey(ctx, "own"), "vault_x", "m1", ExtendRequest{Duration: time.Hour, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t).Header.Get("Idempotency-Key"); got != "own" {
		t.Errorf("Idempotency-Key = %q, want the context's own", got)
	}
}
