package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// enroll registers a new key pair with an enrollment token.
func (e *testEnv) enroll(t *testing.T, vault, token, name string) (testMachine, registerResponse, response) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(enrollRequest{
		Token: token, PublicKey: base64.StdEncoding.EncodeToString(pub), Hostname: "runner-" + newNonce()[:6], Name: name,
	})
	resp := e.mustSend(t, defaultSource, "POST", "/v1/"+vault+"/enroll/register", []header{{"Content-Type", "application/json"}}, body)
	var out registerResponse
	if resp.status == http.StatusCreated {
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatalf("decode enrollment %s: %v", resp.body, err)
		}
	}
	return testMachine{id: out.MachineID, vault: out.VaultID, key: priv}, out, resp
}

func TestEnrollment_MachinesReadAtOnce(t *testing.T) {
	e := sharedEnv(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	e.clock.freeze(t, t0)
	f := e.newFixture(t)

	var tok issuedToken
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults/"+f.vault+"/enrollment-tokens", map[string]any{
		"maxUses": 2, "lifetime": map[string]int{"days": 2}, "purpose": "ci runners",
		"projectIds": []string{f.project}, "secretIds": []string{f.secret},
	}, &tok)
	if tok.ExpiresAt != t0.Add(7*24*time.Hour).UnixMilli() {
		t.Errorf("token expiresAt = %d, want now + 7 days (the default tokenTtl)", tok.ExpiresAt)
	}
	if !strings.Contains(tok.Commands.Sh, "keyward register --enroll --vault "+f.vault) || !strings.HasSuffix(tok.Commands.Sh, tok.Token) {
		t.Errorf("commands.sh = %q, want a keyward register --enroll command", tok.Commands.Sh)
	}

	m1, out, resp := e.enroll(t, f.vault, tok.Token, "runner-a")
	expectStatus(t, resp, http.StatusCreated)
	if out.MachineName != "runner-a" || out.VaultID != f.vault || out.ExpiresAt != t0.Add(48*time.Hour).UnixMilli() {
		t.Errorf("enrollment = %+v, want name runner-a and expiry in 2 days", out)
	}
	v := e.machine(t, m1)
	if v.Kind != "ephemeral" || v.Status != "active" {
		t.Errorf("machine kind %q status %q, want ephemeral and active", v.Kind, v.Status)
	}

	read := e.signed(t, defaultSource, m1, "GET", "/v1/secret/"+f.secret, nil)
	expectStatus(t, read, http.StatusOK)
	if !strings.Contains(string(read.body), f.value) {
		t.Errorf("read body %s does not contain the secret value", read.body)
	}
	// The structured secret is in the project but was not granted.
	expectStatus(t, e.signed(t, defaultSource, m1, "GET", "/v1/secret/"+f.structured, nil), http.StatusForbidden)

	m2, out2, resp := e.enroll(t, f.vault, tok.Token, "")
	expectStatus(t, resp, http.StatusCreated)
	if !strings.HasPrefix(out2.MachineName, "runner-") {
		t.Errorf("machine name %q, want the host name when no name is asked for", out2.MachineName)
	}
	expectStatus(t, e.signed(t, defaultSource, m2, "GET", "/v1/secret/"+f.secret, nil), http.StatusOK)

	_, _, resp = e.enroll(t, f.vault, tok.Token, "")
	expectStatus(t, resp, http.StatusUnauthorized)

	var tokens struct{ Tokens []tokenView }
	e.adminOK(t, http.StatusOK, "GET", "/v1/admin/vaults/"+f.vault+"/enrollment-tokens", nil, &tokens)
	if len(tokens.Tokens) != 1 || tokens.Tokens[0].Uses != 2 || tokens.Tokens[0].Status != tokenStatusUsed {
		t.Fatalf("enrollment tokens = %+v, want one token used 2 of 2 times", tokens.Tokens)
	}
	if got := tokens.Tokens[0].SecretIDs; len(got) != 1 || string(got[0]) != f.secret {
		t.Errorf("token secretIds = %v, want [%s]", got, f.secret)
	}
}

func TestEnrollment_RejectsBadTokens(t *testing.T) {
	e := sharedEnv(t)
	f := e.newFixture(t)
	other := e.newVault(t)

	var tok issuedToken
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults/"+f.vault+"/enrollment-tokens", map[string]any{
		"maxUses": 5, "lifetime": map[string]int{"hours": 3},
	}, &tok)

	// The token belongs to another vault than the route names.
	_, _, resp := e.enroll(t, other, tok.Token, "")
	expectStatus(t, resp, http.StatusUnauthorized)
	// A standard bootstrap token cannot enroll, and the error names its
	// kind and the route it registers on.
	_, _, resp = e.enroll(t, f.vault, e.bootstrapToken(t, f.vault), "")
	expectStatus(t, resp, http.StatusUnauthorized)
	for _, want := range []string{"this is a bootstrap token", "POST /v1/bootstrap/{token}/register"} {
		if !strings.Contains(string(resp.body), want) {
			t.Errorf("body %s lacks %q", resp.body, want)
		}
	}
	// An enrollment token on the standard route is pointed to enrollment.
	_, _, resp = e.register(t, "/v1/bootstrap/"+tok.Token+"/register", "h")
	expectStatus(t, resp, http.StatusUnauthorized)
	for _, want := range []string{"Invalid bootstrap token: this is an enrollment token", "/enroll/register"} {
		if !strings.Contains(string(resp.body), want) {
			t.Errorf("body %s lacks %q", resp.body, want)
		}
	}
	_, _, resp = e.enroll(t, f.vault, "not-a-token", "")
	expectStatus(t, resp, http.StatusUnauthorized)

	// A machine enrolled with no lists is active but reads nothing.
	m, _, resp := e.enroll(t, f.vault, tok.Token, "")
	expectStatus(t, resp, http.StatusCreated)
	expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil), http.StatusForbidden)

	e.adminOK(t, http.StatusOK, "DELETE", "/v1/admin/vaults/"+f.vault+"/enrollment-tokens/"+tok.ID, nil, nil)
	_, _, resp = e.enroll(t, f.vault, tok.Token, "")
	expectStatus(t, resp, http.StatusUnauthorized)
	if !strings.Contains(string(resp.body), "revoked") {
		t.Errorf("body %s does not say the token was revoked", resp.body)
	}
}

func TestEnrollment_IssueValidation(t *testing.T) {
	e := sharedEnv(t)
	f := e.newFixture(t)
	other := e.newFixture(t)
	path := "/v1/admin/vaults/" + f.vault + "/enrollment-tokens"
	day := map[string]int{"days": 1}
	cases := []struct {
		name string
		body map[string]any
		want int
		text string
	}{
		{"no max uses", map[string]any{"lifetime": day}, http.StatusBadRequest, "maxUses 0"},
		{"too many uses", map[string]any{"maxUses": 10001, "lifetime": day}, http.StatusBadRequest, "maxUses 10001"},
		{"no lifetime", map[string]any{"maxUses": 1}, http.StatusBadRequest, "lifetime is required"},
		{"lifetime over a year", map[string]any{"maxUses": 1, "lifetime": map[string]int{"months": 13}}, http.StatusBadRequest, "month"},
		{"bad token ttl", map[string]any{"maxUses": 1, "lifetime": day, "tokenTtl": "forever"}, http.StatusBadRequest, "tokenTtl"},
		{"malformed project id", map[string]any{"maxUses": 1, "lifetime": day, "projectIds": []string{"../x"}}, http.StatusBadRequest, "projectIds[0]"},
		{"secrets without projects", map[string]any{"maxUses": 1, "lifetime": day, "secretIds": []string{f.secret}}, http.StatusBadRequest, "secretIds needs projectIds"},
		{"project of another vault", map[string]any{"maxUses": 1, "lifetime": day, "projectIds": []string{other.project}}, http.StatusNotFound, other.project},
		{"secret of an unlisted project", map[string]any{
			"maxUses": 1, "lifetime": day, "projectIds": []string{f.project}, "secretIds": []string{other.secret},
		}, http.StatusNotFound, other.secret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.admin(t, "POST", path, tc.body)
			expectStatus(t, resp, tc.want)
			if !strings.Contains(string(resp.body), tc.text) {
				t.Errorf("body %s does not mention %q", resp.body, tc.text)
			}
		})
	}
}
