package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

func TestAdminTokens_ListAndRevoke(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)

	var created struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/tokens", map[string]any{
		"name": "ci deploys", "role": "operator", "vaults": []string{vault},
	}, &created)
	expectStatus(t, e.adminAs(t, created.Token, "GET", "/v1/admin/vaults/"+vault, nil), http.StatusOK)

	var list struct{ Tokens []adminTokenView }
	e.adminOK(t, http.StatusOK, "GET", "/v1/admin/tokens", nil, &list)
	var found *adminTokenView
	for i := range list.Tokens {
		if list.Tokens[i].ID == created.ID {
			found = &list.Tokens[i]
		}
	}
	if found == nil {
		t.Fatalf("token %s missing from the listing %+v", created.ID, list.Tokens)
	}
	if found.Status != tokenStatusActive || found.Role != "operator" || found.Name != "ci deploys" {
		t.Errorf("listed token = %+v, want an active operator token named ci deploys", *found)
	}
	if strings.Contains(string(e.admin(t, "GET", "/v1/admin/tokens", nil).body), created.Token) {
		t.Error("the listing contains a token value")
	}

	// An operator cannot manage tokens.
	expectStatus(t, e.adminAs(t, created.Token, "GET", "/v1/admin/tokens", nil), http.StatusForbidden)

	resp := e.admin(t, "DELETE", "/v1/admin/tokens/"+created.ID, nil)
	expectStatus(t, resp, http.StatusOK)
	if !strings.Contains(string(resp.body), `"status":"revoked"`) || !strings.Contains(string(resp.body), `"confirmedNodes"`) {
		t.Errorf("revoke response %s, want status revoked and confirmedNodes", resp.body)
	}
	resp = e.adminAs(t, created.Token, "GET", "/v1/admin/vaults/"+vault, nil)
	expectStatus(t, resp, http.StatusUnauthorized)
	if !strings.Contains(string(resp.body), "revoked") {
		t.Errorf("body %s does not say the token was revoked", resp.body)
	}
	// Revoking again changes nothing.
	expectStatus(t, e.admin(t, "DELETE", "/v1/admin/tokens/"+created.ID, nil), http.StatusOK)
	expectStatus(t, e.admin(t, "DELETE", "/v1/admin/tokens/at_missing", nil), http.StatusNotFound)
}

func TestAdminTokens_ScopedOwnerSeesOwnScope(t *testing.T) {
	e := sharedEnv(t)
	mine, other := e.newVault(t), e.newVault(t)

	var owner, outside struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/tokens", map[string]any{
		"name": "team owner", "role": "owner", "vaults": []string{mine},
	}, &owner)
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/tokens", map[string]any{
		"name": "other team", "role": "auditor", "vaults": []string{other},
	}, &outside)

	resp := e.adminAs(t, owner.Token, "GET", "/v1/admin/tokens", nil)
	expectStatus(t, resp, http.StatusOK)
	if strings.Contains(string(resp.body), outside.ID) {
		t.Errorf("a vault-scoped owner sees token %s of another vault: %s", outside.ID, resp.body)
	}
	if !strings.Contains(string(resp.body), owner.ID) {
		t.Errorf("listing %s lacks the caller's own token %s", resp.body, owner.ID)
	}
	expectStatus(t, e.adminAs(t, owner.Token, "DELETE", "/v1/admin/tokens/"+outside.ID, nil), http.StatusForbidden)
}
