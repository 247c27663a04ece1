package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tempMachine issues a temp token with lifetime in vault, registers a
// machine with it and returns the machine, still pending.
func (e *testEnv) tempMachine(t *testing.T, vault string, in map[string]any) (testMachine, registerResponse) {
	t.Helper()
	tok := e.tempToken(t, vault, in)
	m, out, resp := e.register(t, "/v1/"+vault+"/temp-bootstrap/"+tok.Token+"/register", "laptop-7")
	expectStatus(t, resp, http.StatusCreated)
	return m, out
}

func TestTempMachine_IssueRegisterApproveRead(t *testing.T) {
	e := sharedEnv(t)
	t0 := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e.clock.freeze(t, t0)
	f := e.newFixture(t)

	tok := e.tempToken(t, f.vault, map[string]any{
		"name": "contractor-laptop", "purpose": "incident 4411",
		"lifetime": map[string]int{"days": 22},
	})
	if tok.ExpiresAt != t0.Add(time.Hour).UnixMilli() {
		t.Errorf("token expiresAt = %d, want now + 1h (the default tokenTtl)", tok.ExpiresAt)
	}
	scriptURL := "http://" + e.addr + "/v1/" + f.vault + "/temp-bootstrap/" + tok.Token
	if !strings.Contains(tok.Commands.Sh, scriptURL) || !strings.Contains(tok.Commands.PS, scriptURL+"/ps") {
		t.Errorf("commands = %+v, want the script URL %s", tok.Commands, scriptURL)
	}

	resp := e.mustSend(t, defaultSource, "GET", "/v1/"+f.vault+"/temp-bootstrap/"+tok.Token, nil, nil)
	expectStatus(t, resp, http.StatusOK)
	if !strings.Contains(string(resp.body), scriptURL+"/register") {
		t.Errorf("script does not register at %s/register", scriptURL)
	}

	m, out, resp := e.register(t, "/v1/"+f.vault+"/temp-bootstrap/"+tok.Token+"/register", "laptop-7")
	expectStatus(t, resp, http.StatusCreated)
	wantExpiry := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	if out.MachineName != "contractor-laptop" || out.ExpiresAt != wantExpiry || out.VaultID != f.vault {
		t.Errorf("registration = %+v, want name contractor-laptop and expiry %d", out, wantExpiry)
	}
	ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionTempMachineCreate)
	if ev.MachineID != m.id || ev.ActorKind != actorMachine {
		t.Errorf("temp_machine_create event = %+v", ev)
	}

	v := e.machine(t, m)
	if v.Kind != "temp" || v.Status != "pending" || v.Purpose != "incident 4411" || v.ExpiresAt != wantExpiry {
		t.Errorf("machine = %+v", v)
	}
	var tokens struct{ Tokens []tokenView }
	e.adminOK(t, http.StatusOK, "GET", "/v1/admin/vaults/"+f.vault+"/temp-tokens", nil, &tokens)
	if len(tokens.Tokens) != 1 || tokens.Tokens[0].Status != tokenStatusUsed || tokens.Tokens[0].MachineName != "contractor-laptop" {
		t.Errorf("temp tokens = %+v, want one used token", tokens.Tokens)
	}

	read := func() response { return e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil) }
	expectStatus(t, read(), http.StatusForbidden)
	e.approve(t, m)
	e.attach(t, m, f.project)
	expectStatus(t, read(), http.StatusForbidden)
	e.grant(t, m, f.secret)
	expectStatus(t, read(), http.StatusOK)
}

func TestTempMachine_IssueValidation(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	cases := []struct {
		name     string
		body     string
		contains string
	}{
		{"no lifetime", `{"name":"a"}`, "lifetime is required"},
		{"lifetime under an hour", `{"name":"a","lifetime":{"months":0,"days":0,"hours":0}}`, "lifetime"},
		{"lifetime over 12 months", `{"name":"a","lifetime":{"months":12,"days":1}}`, "lifetime"},
		{"negative lifetime", `{"name":"a","lifetime":{"days":-1,"hours":30}}`, "lifetime"},
		{"no name", `{"lifetime":{"hours":2}}`, "name is required"},
		{"tokenTtl over 7 days", `{"name":"a","lifetime":{"hours":2},"tokenTtl":"169h"}`, "tokenTtl"},
		{"tokenTtl not a duration", `{"name":"a","lifetime":{"hours":2},"tokenTtl":"1 day"}`, "tokenTtl"},
		{"placeholder country", `{"name":"a","lifetime":{"hours":2},"guardrails":{"countries":{"codes":["ZZ"]}}}`, "ZZ"},
		{"continent code", `{"name":"a","lifetime":{"hours":2},"guardrails":{"countries":{"codes":["EU"]}}}`, "EU"},
		{"zone abbreviation", `{"name":"a","lifetime":{"hours":2},"guardrails":{"timeWindow":{"start":"09:00","end":"17:00","timezone":"CEST"}}}`, "CEST"},
		{"empty window", `{"name":"a","lifetime":{"hours":2},"guardrails":{"timeWindow":{"start":"09:00","end":"09:00","timezone":"UTC"}}}`, "timeWindow"},
		{"bad CIDR", `{"name":"a","lifetime":{"hours":2},"guardrails":{"ipAllowlist":{"cidrs":["10.0.0.0/33"]}}}`, "10.0.0.0/33"},
		{"unknown guardrail field", `{"name":"a","lifetime":{"hours":2},"guardrails":{"asn":{}}}`, `unknown field "asn"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.admin(t, "POST", "/v1/admin/vaults/"+vault+"/temp-tokens", []byte(tc.body))
			expectStatus(t, resp, http.StatusBadRequest)
			var body errorBody
			_ = json.Unmarshal(resp.body, &body)
			if !strings.Contains(body.Error, tc.contains) {
				t.Errorf("error %q does not mention %q", body.Error, tc.contains)
			}
		})
	}
}

func TestTempMachine_GuardrailBlocksPerAxis(t *testing.T) {
	e := sharedEnv(t)
	t0 := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC) // a Saturday, 01:00 in Oslo
	e.clock.freeze(t, t0)
	f := e.newFixture(t)
	m, _ := e.tempMachine(t, f.vault, map[string]any{"name": "pen-test", "lifetime": map[string]int{"days": 30}})
	e.approve(t, m)
	e.attach(t, m, f.project)
	e.grant(t, m, f.secret)

	cases := []struct {
		name       string
		guardrails string
		at         time.Time
		src        string
		forwarded  string
		want       int
		action     string
		axes       map[string]string // axis → observed value
		reason     string
	}{
		{"no guardrails", `{}`, t0, defaultSource, "", http.StatusOK, "", nil, ""},
		{"ip outside the allowlist", `{"ipAllowlist":{"cidrs":["192.0.2.0/24"]}}`, t0, defaultSource, "",
			http.StatusForbidden, ActionTempMachineBlocked, map[string]string{"ip": "127.0.0.1"}, "not_in_allowlist"},
		{"ip inside the allowlist through the trusted proxy", `{"ipAllowlist":{"cidrs":["192.0.2.0/24"]}}`, t0, proxySource, "192.0.2.10",
			http.StatusOK, "", nil, ""},
		{"forwarded header from an untrusted peer is ignored", `{"ipAllowlist":{"cidrs":["192.0.2.0/24"]}}`, t0, defaultSource, "192.0.2.10",
			http.StatusForbidden, ActionTempMachineBlocked, map[string]string{"ip": "127.0.0.1"}, "not_in_allowlist"},
		{"proxy address never satisfies the allowlist", `{"ipAllowlist":{"cidrs":["127.0.0.0/8"]}}`, t0, proxySource, "198.51.100.9",
			http.StatusForbidden, ActionTempMachineBlocked, map[string]string{"ip": "198.51.100.9"}, "not_in_allowlist"},
		{"address without a country", `{"countries":{"codes":["NO"]}}`, t0, defaultSource, "",
			http.StatusForbidden, ActionTempMachineBlocked, map[string]string{"country": "unknown"}, "country_unknown"},
		{"outside the time window", `{"timeWindow":{"start":"09:00","end":"17:00","timezone":"Europe/Oslo"}}`, t0, defaultSource, "",
			http.StatusForbidden, ActionTempMachineBlocked, map[string]string{"time_window": "Sat 01:00 Europe/Oslo"}, "outside_window"},
		{"inside the time window", `{"timeWindow":{"start":"09:00","end":"17:00","timezone":"Europe/Oslo"}}`, t0.Add(10 * time.Hour), defaultSource, "",
			http.StatusOK, "", nil, ""},
		{"two axes fail, both named", `{"ipAllowlist":{"cidrs":["192.0.2.0/24"]},"countries":{"codes":["NO"]}}`, t0, defaultSource, "",
			http.StatusForbidden, ActionTempMachineBlocked, map[string]string{"ip": "127.0.0.1", "country": "unknown"}, ""},
		{"observe mode lets the request through", `{"ipAllowlist":{"cidrs":["192.0.2.0/24"],"observe":true}}`, t0, defaultSource, "",
			http.StatusOK, ActionTempMachineWouldBlock, map[string]string{"ip": "127.0.0.1"}, "not_in_allowlist"},
		{"observe axis and enforced axis", `{"ipAllowlist":{"cidrs":["192.0.2.0/24"],"observe":true},"countries":{"codes":["NO"]}}`, t0, defaultSource, "",
			http.StatusForbidden, ActionTempMachineBlocked, map[string]string{"ip": "127.0.0.1", "country": "unknown"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.freeze(t, tc.at)
			e.adminOK(t, http.StatusOK, "PUT", e.machinePath(m)+"/guardrails", []byte(tc.guardrails), nil)

			path := "/v1/secret/" + f.secret
			h := m.signedHeaders("GET", path, nil, tc.at.Unix())
			if tc.forwarded != "" {
				h = append(h, header{"X-Forwarded-For", tc.forwarded})
			}
			resp := e.mustSend(t, tc.src, "GET", path, h, nil)
			expectStatus(t, resp, tc.want)
			if tc.want == http.StatusForbidden {
				if msg := machineError(t, resp); msg != msgAccessDenied {
					t.Errorf("block message = %q, want %q", msg, msgAccessDenied)
				}
			}
			if tc.action == "" {
				requestID := resp.header.Get("X-Request-Id")
				if n := e.audit.count(requestID, ActionTempMachineBlocked) + e.audit.count(requestID, ActionTempMachineWouldBlock); n != 0 {
					t.Errorf("%d guardrail events for an allowed request", n)
				}
				return
			}
			checkGuardrailEvent(t, e.audit.byRequest(t, resp.header.Get("X-Request-Id"), tc.action), m, tc.axes, tc.reason)
		})
	}
}

// checkGuardrailEvent requires the event to name exactly the failing axes
// with their observed values.
func checkGuardrailEvent(t *testing.T, ev AuditEvent, m testMachine, axes map[string]string, reason string) {
	t.Helper()
	if ev.MachineID != m.id || ev.VaultID != m.vault {
		t.Errorf("event machine %s vault %s, want %s %s", ev.MachineID, ev.VaultID, m.id, m.vault)
	}
	failures, _ := ev.Fields["axes"].([]AxisFailure)
	if len(failures) != len(axes) {
		t.Fatalf("event axes = %+v, want %v", failures, axes)
	}
	for _, f := range failures {
		want, ok := axes[f.Axis]
		if !ok || f.Observed != want {
			t.Errorf("axis %s observed %q, want %q", f.Axis, f.Observed, want)
		}
		if ev.Fields[f.Axis] != want {
			t.Errorf("field %s = %v, want %q", f.Axis, ev.Fields[f.Axis], want)
		}
		if reason != "" && f.Reason != reason {
			t.Errorf("axis %s reason %q, want %q", f.Axis, f.Reason, reason)
		}
	}
}

func TestTempMachine_ExpiryExactInstant(t *testing.T) {
	e := sharedEnv(t)
	t0 := time.Date(2026, 6, 30, 10, 0, 0, 0, time.UTC)
	e.clock.freeze(t, t0)
	f := e.newFixture(t)
	m, out := e.tempMachine(t, f.vault, map[string]any{"name": "api", "lifetime": map[string]int{"hours": 2}})
	e.approve(t, m)
	e.attach(t, m, f.project)
	e.grant(t, m, f.secret)
	expiry := time.UnixMilli(out.ExpiresAt).UTC()
	if want := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC); !expiry.Equal(want) {
		t.Fatalf("expiresAt = %s, want %s", expiry, want)
	}

	cases := []struct {
		name string
		at   time.Time
		want int
	}{
		{"one millisecond before", expiry.Add(-time.Millisecond), http.StatusOK},
		{"at the instant", expiry, http.StatusUnauthorized},
		{"one millisecond after", expiry.Add(time.Millisecond), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.freeze(t, tc.at)
			resp := e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil)
			expectStatus(t, resp, tc.want)
			if tc.want == http.StatusUnauthorized {
				if msg := machineError(t, resp); msg != "Machine has expired" {
					t.Errorf("error = %q", msg)
				}
			}
		})
	}
}

func TestTempMachine_ExtendCapAndRevert(t *testing.T) {
	e := sharedEnv(t)
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	e.clock.freeze(t, now)
	vault := e.newVault(t)
	m, out := e.tempMachine(t, vault, map[string]any{"name": "etl", "lifetime": map[string]int{"days": 22}})
	original := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	if out.ExpiresAt != original {
		t.Fatalf("expiresAt = %d, want %d", out.ExpiresAt, original)
	}
	capAt := time.Date(2027, 1, 10, 0, 0, 0, 0, time.UTC)
	extend := func(body string) response {
		t.Helper()
		return e.admin(t, "POST", e.machinePath(m)+"/extend", []byte(body))
	}
	ms := func(tm time.Time) string { return strconv.FormatInt(tm.UnixMilli(), 10) }

	t.Run("over the cap is 422 and changes nothing", func(t *testing.T) {
		before := e.sm.AppliedIndex()
		resp := extend(`{"expiresAt":` + ms(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)) + `,"reason":"long job"}`)
		expectStatus(t, resp, http.StatusUnprocessableEntity)
		var body errorBody
		_ = json.Unmarshal(resp.body, &body)
		if !strings.Contains(body.Error, "2027-01-10T00:00:00.000Z") || !strings.Contains(body.Error, ms(capAt)) {
			t.Errorf("422 message %q does not name the cap in RFC 3339 and milliseconds", body.Error)
		}
		if got := e.machine(t, m).ExpiresAt; got != original {
			t.Errorf("expiresAt = %d after a rejected extension, want %d", got, original)
		}
		if e.sm.AppliedIndex() != before {
			t.Errorf("a rejected extension was proposed")
		}
	})

	t.Run("exactly at the cap", func(t *testing.T) {
		resp := extend(`{"expiresAt":` + ms(capAt) + `,"reason":"audit season"}`)
		expectStatus(t, resp, http.StatusOK)
		var v machineView
		_ = json.Unmarshal(resp.body, &v)
		if v.ExpiresAt != capAt.UnixMilli() || len(v.Extensions) != 1 || v.Extensions[0].PreviousExpiresAt != original {
			t.Errorf("machine after extend = %+v", v)
		}
		ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionTempMachineExtend)
		if ev.Fields["newExpiresAt"] != capAt.UnixMilli() || ev.Fields["reason"] != "audit season" {
			t.Errorf("extend event fields = %v", ev.Fields)
		}
	})

	t.Run("duration past the cap", func(t *testing.T) {
		expectStatus(t, extend(`{"duration":"1ms","reason":"x"}`), http.StatusUnprocessableEntity)
		expectStatus(t, extend(`{"duration":"9223372036854775807ns","reason":"x"}`), http.StatusUnprocessableEntity)
	})

	t.Run("invalid requests", func(t *testing.T) {
		cases := map[string]string{
			"both forms":            `{"expiresAt":` + ms(now.Add(time.Hour)) + `,"duration":"1h","reason":"x"}`,
			"neither form":          `{"reason":"x"}`,
			"zero duration":         `{"duration":"0s","reason":"x"}`,
			"negative duration":     `{"duration":"-1h","reason":"x"}`,
			"zero expiresAt":        `{"expiresAt":0,"reason":"x"}`,
			"expiresAt as a string": `{"expiresAt":"2026-07-01T00:00:00Z","reason":"x"}`,
			"no reason":             `{"duration":"1h"}`,
			"earlier expiry":        `{"expiresAt":` + ms(now.Add(time.Hour)) + `,"reason":"x"}`,
			"unknown field":         `{"until":"2026-07-01T00:00:00Z","reason":"x"}`,
		}
		for name, body := range cases {
			t.Run(name, func(t *testing.T) {
				expectStatus(t, extend(body), http.StatusBadRequest)
			})
		}
	})

	t.Run("revert walks back and keeps history", func(t *testing.T) {
		resp := e.admin(t, "POST", e.machinePath(m)+"/revert", map[string]string{"reason": "not needed"})
		expectStatus(t, resp, http.StatusOK)
		if got := e.machine(t, m).ExpiresAt; got != original {
			t.Errorf("expiresAt after revert = %d, want %d", got, original)
		}
		e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionTempMachineExtendRevert)

		var ext struct{ Extensions []map[string]any }
		e.adminOK(t, http.StatusOK, "GET", e.machinePath(m)+"/extensions", nil, &ext)
		if len(ext.Extensions) != 1 || ext.Extensions[0]["revertedAt"] == nil {
			t.Errorf("extensions = %+v, want one reverted entry", ext.Extensions)
		}
		expectStatus(t, e.admin(t, "POST", e.machinePath(m)+"/revert", map[string]string{"reason": "again"}), http.StatusConflict)
	})

	t.Run("standard machine has no expiry to extend", func(t *testing.T) {
		std := e.newMachine(t, vault)
		resp := e.admin(t, "POST", e.machinePath(std)+"/extend", []byte(`{"duration":"1h","reason":"x"}`))
		expectStatus(t, resp, http.StatusConflict)
	})
}
