package httpapi

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRegistration_TokenIsSingleUse(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	token := e.bootstrapToken(t, vault)
	script := "/v1/bootstrap/" + token
	register := script + "/register"

	resp := e.mustSend(t, defaultSource, "GET", script, nil, nil)
	expectStatus(t, resp, http.StatusOK)
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/x-shellscript") {
		t.Errorf("script Content-Type = %q", ct)
	}

	m, out, resp := e.register(t, register, "web-1")
	expectStatus(t, resp, http.StatusCreated)
	if out.MachineName != "web-1" || out.VaultID != vault || out.APIURL != "http://"+e.addr || !isMachineID(out.MachineID) {
		t.Errorf("registration = %+v", out)
	}
	ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionMachineRegister)
	if ev.MachineID != m.id || ev.ActorKind != actorMachine {
		t.Errorf("machine_register event = %+v", ev)
	}
	if v := e.machine(t, m); v.Status != "pending" || v.Kind != "standard" {
		t.Errorf("new machine status %q kind %q, want pending standard", v.Status, v.Kind)
	}

	_, _, resp = e.register(t, register, "web-2")
	expectStatus(t, resp, http.StatusUnauthorized)
	machineError(t, resp)
	expectStatus(t, e.mustSend(t, defaultSource, "GET", script, nil, nil), http.StatusGone)
}

func TestRegistration_ConcurrentUseOfOneToken(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	register := "/v1/bootstrap/" + e.bootstrapToken(t, vault) + "/register"

	const attempts = 8
	statuses := make([]int, attempts)
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, resp := e.register(t, register, "racer")
			statuses[i] = resp.status
		}()
	}
	wg.Wait()

	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusUnauthorized:
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if created != 1 {
		t.Errorf("%d registrations succeeded with one token, want exactly 1 (statuses %v)", created, statuses)
	}
	var list struct{ Machines []machineView }
	e.adminOK(t, http.StatusOK, "GET", "/v1/admin/vaults/"+vault+"/machines", nil, &list)
	if len(list.Machines) != 1 {
		t.Errorf("vault has %d machines, want 1", len(list.Machines))
	}
}

func TestRegistration_UnusableTokens(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	now := time.Now()
	e.clock.freeze(t, now)

	expiring := e.bootstrapToken(t, vault)
	revoked := e.bootstrapToken(t, vault)
	var tokens struct{ Tokens []tokenView }
	e.adminOK(t, http.StatusOK, "GET", "/v1/admin/vaults/"+vault+"/bootstrap-tokens", nil, &tokens)
	if len(tokens.Tokens) != 2 {
		t.Fatalf("tokens = %+v, want 2", tokens.Tokens)
	}
	for _, tok := range tokens.Tokens {
		if tok.Status != tokenStatusActive {
			t.Errorf("token %s status %q, want active", tok.ID, tok.Status)
		}
	}
	revokedID := tokenIDByHash(t, e, revoked)
	e.adminOK(t, http.StatusOK, "DELETE", "/v1/admin/vaults/"+vault+"/bootstrap-tokens/"+revokedID, nil, nil)

	temp := e.tempToken(t, vault, map[string]any{"name": "tmp", "lifetime": map[string]int{"hours": 2}})

	cases := []struct {
		name           string
		at             time.Time
		script         string
		scriptStatus   int
		registerStatus int
		// message is part of the script route's error, when set.
		message string
	}{
		{"unknown token", now, "/v1/bootstrap/" + strings.Repeat("ab", 32), http.StatusNotFound, http.StatusUnauthorized, ""},
		{"malformed token", now, "/v1/bootstrap/xyz", http.StatusNotFound, http.StatusUnauthorized, ""},
		{"upper-case token", now, "/v1/bootstrap/" + strings.ToUpper(expiring), http.StatusNotFound, http.StatusUnauthorized, ""},
		{"revoked", now, "/v1/bootstrap/" + revoked, http.StatusGone, http.StatusUnauthorized, "Bootstrap token has been revoked"},
		{"temp token on the standard route", now, "/v1/bootstrap/" + temp.Token, http.StatusNotFound, http.StatusUnauthorized, ""},
		{"temp token under another vault", now, "/v1/vault_0000000000000000/temp-bootstrap/" + temp.Token, http.StatusNotFound, http.StatusUnauthorized, "Temp token not found"},
		{"one millisecond before expiry", now.Add(standardTokenTTL - time.Millisecond), "/v1/bootstrap/" + expiring, http.StatusOK, 0, ""},
		{"at expiry", now.Add(standardTokenTTL), "/v1/bootstrap/" + expiring, http.StatusGone, http.StatusUnauthorized,
			"Bootstrap token expired at " + now.Add(standardTokenTTL).UTC().Format("2006-01-02T15:04:05")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.freeze(t, tc.at)
			resp := e.mustSend(t, defaultSource, "GET", tc.script, nil, nil)
			expectStatus(t, resp, tc.scriptStatus)
			if tc.message != "" && !strings.Contains(string(resp.body), tc.message) {
				t.Errorf("body %s lacks %q", resp.body, tc.message)
			}
			if tc.registerStatus == 0 {
				return
			}
			machineError(t, resp)
			_, _, resp = e.register(t, tc.script+"/register", "h")
			expectStatus(t, resp, tc.registerStatus)
		})
	}
}

// tokenIDByHash finds the public id of a bootstrap token of any kind.
func tokenIDByHash(t *testing.T, e *testEnv, token string) string {
	t.Helper()
	bt, ok := e.sm.BootstrapTokenByHash(hashToken(token))
	if !ok {
		t.Fatalf("token not found in the state")
	}
	return bt.ID
}

// tempToken issues a temp token in vault.
func (e *testEnv) tempToken(t *testing.T, vault string, in map[string]any) issuedToken {
	t.Helper()
	var out issuedToken
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults/"+vault+"/temp-tokens", in, &out)
	return out
}
