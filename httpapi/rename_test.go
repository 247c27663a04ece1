package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

func TestMachineRename(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)

	var out machineView
	e.adminOK(t, http.StatusOK, "POST", e.machinePath(m)+"/rename", map[string]string{"name": "billing-worker-2"}, &out)
	if out.Name != "billing-worker-2" {
		t.Errorf("response name = %q, want billing-worker-2", out.Name)
	}
	if got := e.machine(t, m).Name; got != "billing-worker-2" {
		t.Errorf("stored name = %q, want billing-worker-2", got)
	}
	// The identity is the id, so the machine reads as before.
	expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil), http.StatusOK)

	cases := []struct {
		name string
		path string
		body any
		want int
		text string
	}{
		{"empty name", e.machinePath(m) + "/rename", map[string]string{"name": ""}, http.StatusBadRequest, "name"},
		{"long name", e.machinePath(m) + "/rename", map[string]string{"name": strings.Repeat("n", 256)}, http.StatusBadRequest, "name"},
		{"wrong type", e.machinePath(m) + "/rename", map[string]int{"name": 7}, http.StatusBadRequest, "name"},
		{"unknown machine", "/v1/admin/vaults/" + f.vault + "/machines/99999999-9999-4999-8999-999999999999/rename",
			map[string]string{"name": "x"}, http.StatusNotFound, "99999999"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.admin(t, "POST", tc.path, tc.body)
			expectStatus(t, resp, tc.want)
			if !strings.Contains(string(resp.body), tc.text) {
				t.Errorf("body %s does not mention %q", resp.body, tc.text)
			}
		})
	}
}
