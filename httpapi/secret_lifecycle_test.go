package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestSecret_RollbackCopiesEarlierValue(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	path := "/v1/admin/vaults/" + f.vault + "/secrets/" + f.secret

	e.adminOK(t, http.StatusOK, "PUT", path, map[string]string{"value": "rotated-2"}, nil)
	e.adminOK(t, http.StatusOK, "PUT", path, map[string]string{"value": "rotated-3"}, nil)

	var view secretView
	e.adminOK(t, http.StatusOK, "POST", path+"/rollback", map[string]int{"version": 1}, &view)
	if view.Version != 4 {
		t.Errorf("version after rollback = %d, want 4 (a rollback adds a version)", view.Version)
	}
	resp := e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil)
	expectStatus(t, resp, http.StatusOK)
	var got struct{ Value string }
	if err := json.Unmarshal(resp.body, &got); err != nil || got.Value != f.value {
		t.Errorf("value after rollback = %q (%v), want the version 1 value", got.Value, err)
	}

	cases := []struct {
		name string
		body any
		text string
	}{
		{"version zero", map[string]int{"version": 0}, "version 0"},
		{"current version", map[string]int{"version": 4}, "version 4"},
		{"future version", map[string]int{"version": 9}, "version 9"},
		{"not a number", map[string]string{"version": "1"}, "version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.admin(t, "POST", path+"/rollback", tc.body)
			expectStatus(t, resp, http.StatusBadRequest)
			if !strings.Contains(string(resp.body), tc.text) {
				t.Errorf("body %s does not mention %q", resp.body, tc.text)
			}
		})
	}
}

func TestSecret_DeleteRemovesAccess(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	path := "/v1/admin/vaults/" + f.vault + "/secrets/" + f.secret

	resp := e.admin(t, "DELETE", path, nil)
	expectStatus(t, resp, http.StatusOK)
	for _, want := range []string{`"deleted":true`, m.id, `"confirmedNodes"`} {
		if !strings.Contains(string(resp.body), want) {
			t.Errorf("delete response %s lacks %s", resp.body, want)
		}
	}

	expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil), http.StatusNotFound)
	// The other granted secret of the project still reads.
	expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.structured, nil), http.StatusOK)

	poll := e.signed(t, defaultSource, m, "POST", "/v1/secrets/poll", []byte(`{"watch":["`+f.secret+`"]}`))
	expectStatus(t, poll, http.StatusOK)
	if !strings.Contains(string(poll.body), `"deleted"`) {
		t.Errorf("poll body %s, want the secret reported deleted", poll.body)
	}

	var grants struct {
		SecretIDs []string `json:"secretIds"`
	}
	e.adminOK(t, http.StatusOK, "GET", e.machinePath(m)+"/grants", nil, &grants)
	for _, id := range grants.SecretIDs {
		if id == f.secret {
			t.Errorf("grants %v still list the deleted secret", grants.SecretIDs)
		}
	}
	expectStatus(t, e.admin(t, "GET", path, nil), http.StatusNotFound)
	expectStatus(t, e.admin(t, "DELETE", path, nil), http.StatusNotFound)
}
