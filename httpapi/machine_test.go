package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/keyward/keyward/fsm"
)

func TestMachinePlane_AccessFollowsApprovalAndGrants(t *testing.T) {
	e := sharedEnv(t)
	f := e.newFixture(t)
	m := e.newMachine(t, f.vault)
	read := func() response { return e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil) }

	resp := read()
	expectStatus(t, resp, http.StatusForbidden)
	if msg := machineError(t, resp); msg != "Machine is pending approval" {
		t.Errorf("pending machine error = %q", msg)
	}

	e.approve(t, m)
	e.attach(t, m, f.project)
	resp = read()
	expectStatus(t, resp, http.StatusForbidden)
	denied := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionSecretReadDenied)
	if denied.SecretID != f.secret || denied.MachineID != m.id {
		t.Errorf("secret_read_denied event = %+v, want secret %s machine %s", denied, f.secret, m.id)
	}

	e.grant(t, m, f.secret, f.structured)
	resp = read()
	expectStatus(t, resp, http.StatusOK)
	var got struct{ Value string }
	if err := json.Unmarshal(resp.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Value != f.value {
		t.Errorf("value = %q, want %q", got.Value, f.value)
	}
	e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionSecretRead)

	resp = e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.structured, nil)
	expectStatus(t, resp, http.StatusOK)
	if err := json.Unmarshal(resp.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Value != f.structuredFieldsJSON {
		t.Errorf("structured value = %q, want the JSON object %q", got.Value, f.structuredFieldsJSON)
	}

	t.Run("grant removed", func(t *testing.T) {
		resp := e.admin(t, "PUT", e.machinePath(m)+"/grants", map[string]any{"secretIds": []string{f.structured}})
		expectStatus(t, resp, http.StatusOK)
		ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionPermissionRevoke)
		if removed, _ := ev.Fields["removed"].([]fsm.SecretID); len(removed) != 1 || string(removed[0]) != f.secret {
			t.Errorf("permission_revoke removed = %v, want [%s]", ev.Fields["removed"], f.secret)
		}
		expectStatus(t, read(), http.StatusForbidden)
		e.grant(t, m, f.secret, f.structured)
		expectStatus(t, read(), http.StatusOK)
	})

	t.Run("unknown secret", func(t *testing.T) {
		resp := e.signed(t, defaultSource, m, "GET", "/v1/secret/sk_0000000000", nil)
		expectStatus(t, resp, http.StatusNotFound)
		machineError(t, resp)
	})

	t.Run("secret of another vault", func(t *testing.T) {
		other := e.newFixture(t)
		expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+other.secret, nil), http.StatusNotFound)
	})

	t.Run("disabled then enabled", func(t *testing.T) {
		e.adminOK(t, http.StatusOK, "POST", e.machinePath(m)+"/disable", map[string]any{}, nil)
		resp := read()
		expectStatus(t, resp, http.StatusForbidden)
		if msg := machineError(t, resp); msg != "Machine is disabled" {
			t.Errorf("disabled machine error = %q", msg)
		}
		e.adminOK(t, http.StatusOK, "POST", e.machinePath(m)+"/enable", nil, nil)
		expectStatus(t, read(), http.StatusOK)
	})

	t.Run("revoked", func(t *testing.T) {
		e.adminOK(t, http.StatusOK, "POST", e.machinePath(m)+"/revoke", map[string]any{}, nil)
		resp := read()
		expectStatus(t, resp, http.StatusForbidden)
		if msg := machineError(t, resp); msg != "Machine has been revoked" {
			t.Errorf("revoked machine error = %q", msg)
		}
	})
}

func TestMachinePlane_ListingShapes(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	other := e.newProject(t, f.vault, "unattached")

	t.Run("GET /v1/secrets", func(t *testing.T) {
		resp := e.signed(t, defaultSource, m, "GET", "/v1/secrets", nil)
		expectStatus(t, resp, http.StatusOK)
		var out struct {
			Secrets []map[string]any `json:"secrets"`
		}
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Secrets) != 2 {
			t.Fatalf("secrets = %s, want 2 entries", resp.body)
		}
		byName := map[string]map[string]any{}
		for _, s := range out.Secrets {
			byName[s["name"].(string)] = s
		}
		if fn, ok := byName["db-password"]["fieldNames"]; !ok || fn != nil {
			t.Errorf("plain secret fieldNames = %v (present %v), want null", fn, ok)
		}
		if fn := byName["db"]["fieldNames"]; fn != `["host","user"]` {
			t.Errorf("structured fieldNames = %#v, want the string [\"host\",\"user\"]", fn)
		}
		if pid := byName["db"]["projectId"]; pid != f.project {
			t.Errorf("projectId = %v, want %s", pid, f.project)
		}
	})

	t.Run("POST /v1/secrets/list", func(t *testing.T) {
		resp := e.signed(t, defaultSource, m, "POST", "/v1/secrets/list", []byte(`{"projectId":"`+f.project+`"}`))
		expectStatus(t, resp, http.StatusOK)
		var out struct{ Secrets []secretListItem }
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Secrets) != 2 {
			t.Errorf("list = %s, want 2 secrets", resp.body)
		}
		resp = e.signed(t, defaultSource, m, "POST", "/v1/secrets/list", []byte(`{"projectId":"`+other+`"}`))
		expectStatus(t, resp, http.StatusForbidden)
		resp = e.signed(t, defaultSource, m, "POST", "/v1/secrets/list", []byte(`{"projectId":"proj_0000000000"}`))
		expectStatus(t, resp, http.StatusNotFound)
	})

	t.Run("POST /v1/secrets/export", func(t *testing.T) {
		for _, body := range [][]byte{nil, []byte(`{"projectId":"` + f.project + `"}`)} {
			resp := e.signed(t, defaultSource, m, "POST", "/v1/secrets/export", body)
			expectStatus(t, resp, http.StatusOK)
			var out struct{ Secrets []secretExportItem }
			if err := json.Unmarshal(resp.body, &out); err != nil {
				t.Fatal(err)
			}
			values := map[string]string{}
			for _, s := range out.Secrets {
				values[s.ID] = s.Value
			}
			if values[f.secret] != f.value || values[f.structured] != f.structuredFieldsJSON {
				t.Errorf("export with body %q = %s", body, resp.body)
			}
		}
	})

	t.Run("POST /v1/secrets/poll", func(t *testing.T) {
		poll := func(body string) map[string]map[string]string {
			t.Helper()
			resp := e.signed(t, defaultSource, m, "POST", "/v1/secrets/poll", []byte(body))
			expectStatus(t, resp, http.StatusOK)
			var out struct {
				Changes map[string]map[string]string `json:"changes"`
			}
			if err := json.Unmarshal(resp.body, &out); err != nil {
				t.Fatal(err)
			}
			return out.Changes
		}
		watch := `{"watch":["` + f.secret + `","sk_zzzzzzzzzz"]}`
		first := poll(watch)
		if len(first) != 1 || first["sk_zzzzzzzzzz"]["status"] != pollDeleted {
			t.Errorf("first poll changes = %v, want only the unknown id deleted", first)
		}

		e.adminOK(t, http.StatusOK, "PUT", "/v1/admin/vaults/"+f.vault+"/secrets/"+f.secret, map[string]string{"value": "rotated"}, nil)
		if got := poll(watch)[f.secret]["status"]; got != pollChanged {
			t.Errorf("poll after update: status %q, want changed", got)
		}
		if got, ok := poll(watch)[f.secret]; ok {
			t.Errorf("second poll after update reported %v, want no change", got)
		}
		if got := poll(`{"watch":[{"id":"` + f.secret + `","version":1}]}`)[f.secret]["status"]; got != pollChanged {
			t.Errorf("poll with version 1: status %q, want changed", got)
		}

		e.grant(t, m, f.structured)
		if got := poll(watch)[f.secret]["status"]; got != pollAccessDenied {
			t.Errorf("poll after grant removal: status %q, want access_denied", got)
		}
		e.grant(t, m, f.secret, f.structured)
	})

	t.Run("POST /v1/verify-access", func(t *testing.T) {
		resp := e.signed(t, defaultSource, m, "POST", "/v1/verify-access", []byte(`{"projectId":"`+f.project+`"}`))
		expectStatus(t, resp, http.StatusOK)
		if string(resp.body) != `{"valid":true,"projectName":"payments","error":null}` {
			t.Errorf("verify-access = %s", resp.body)
		}
		resp = e.signed(t, defaultSource, m, "POST", "/v1/verify-access", []byte(`{"projectId":"`+other+`"}`))
		expectStatus(t, resp, http.StatusOK)
		var out verifyAccessResponse
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
		if out.Valid || out.Error == nil || out.ProjectName != nil {
			t.Errorf("verify-access of an unattached project = %s", resp.body)
		}
	})

	t.Run("GET /v1/cli/projects and /v1/cli/secrets", func(t *testing.T) {
		resp := e.signed(t, defaultSource, m, "GET", "/v1/cli/projects", nil)
		expectStatus(t, resp, http.StatusOK)
		want := `{"projects":[{"projectId":"` + f.project + `","projectName":"payments","applicationId":null,"applicationName":null}]}`
		if string(resp.body) != want {
			t.Errorf("cli projects = %s, want %s", resp.body, want)
		}
		resp = e.signed(t, defaultSource, m, "GET", "/v1/cli/secrets", nil)
		expectStatus(t, resp, http.StatusOK)
		var out struct{ Secrets []cliSecret }
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Secrets) != 2 || out.Secrets[0].ProjectName != "payments" || out.Secrets[0].ApplicationID != nil {
			t.Errorf("cli secrets = %s", resp.body)
		}
	})
}
