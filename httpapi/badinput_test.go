package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestBadInput_SizeLimits(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	big := []byte(`{"name":"` + strings.Repeat("a", e.srv.cfg.MaxBodyBytes) + `"}`)

	t.Run("admin body over the limit", func(t *testing.T) {
		before := e.sm.AppliedIndex()
		resp := e.admin(t, "POST", "/v1/admin/vaults", big)
		expectStatus(t, resp, http.StatusRequestEntityTooLarge)
		var body errorBody
		if err := json.Unmarshal(resp.body, &body); err != nil || body.RequestID == "" || body.RequestID != resp.header.Get("X-Request-Id") {
			t.Errorf("413 body %s, want {error, requestId} matching X-Request-Id", resp.body)
		}
		if after := e.sm.AppliedIndex(); after != before {
			t.Errorf("applied index moved from %d to %d", before, after)
		}
	})

	t.Run("machine body over the limit", func(t *testing.T) {
		h := vector{method: "POST", target: "/v1/secrets/list", body: big}.headersFor(m, e.clock.Now())
		resp := e.mustSend(t, defaultSource, "POST", "/v1/secrets/list", h, big)
		expectStatus(t, resp, http.StatusRequestEntityTooLarge)
		machineError(t, resp)
	})

	t.Run("chunked body over the limit", func(t *testing.T) {
		chunk := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)
		resp := e.mustSend(t, defaultSource, "POST", "/v1/admin/vaults",
			[]header{{"Authorization", "Bearer " + e.root}, {"Transfer-Encoding", "chunked"}}, []byte(chunk))
		expectStatus(t, resp, http.StatusRequestEntityTooLarge)
	})

	t.Run("headers over the read buffer", func(t *testing.T) {
		pad := strings.Repeat("p", e.srv.cfg.ReadBufferSize)
		resp := e.mustSend(t, defaultSource, "GET", "/v1/sys/health", []header{{"X-Pad", pad}}, nil)
		expectStatus(t, resp, http.StatusRequestHeaderFieldsTooLarge)
		if resp.header.Get("X-Request-Id") == "" {
			t.Errorf("431 without X-Request-Id")
		}
	})

	t.Run("secret value over 12 KiB", func(t *testing.T) {
		resp := e.admin(t, "POST", "/v1/admin/vaults/"+f.vault+"/projects/"+f.project+"/secrets",
			map[string]string{"name": "huge", "value": strings.Repeat("v", MaxSecretValueBytes+1)})
		expectStatus(t, resp, http.StatusBadRequest)
	})

	t.Run("grant list over 10,000 ids", func(t *testing.T) {
		ids := make([]string, maxGrantIDs+1)
		for i := range ids {
			ids[i] = fmt.Sprintf("sk_%010d", i)
		}
		resp := e.admin(t, "PUT", e.machinePath(m)+"/grants", map[string]any{"secretIds": ids})
		expectStatus(t, resp, http.StatusBadRequest)
	})

	t.Run("node stays up", func(t *testing.T) {
		expectStatus(t, e.mustSend(t, defaultSource, "GET", "/v1/sys/health", nil, nil), http.StatusOK)
		expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil), http.StatusOK)
	})
}

func TestBadInput_MalformedJSON(t *testing.T) {
	e := sharedEnv(t)
	cases := []struct {
		name     string
		body     string
		contains string
	}{
		{"empty body", "", "empty"},
		{"truncated", `{"name":`, "Malformed JSON"},
		{"syntax error", `{"name" "x"}`, "Malformed JSON at byte"},
		{"unknown field", `{"name":"a","extra":1}`, `unknown field "extra"`},
		{"wrong type", `{"name":5}`, `field "name" must be a string`},
		{"array instead of object", `["name"]`, "must be a JSON object"},
		{"trailing data", `{"name":"a"} {"name":"b"}`, "unexpected data after the JSON object"},
		{"name missing", `{}`, "name is required"},
		{"name too long", `{"name":"` + strings.Repeat("n", maxVaultNameLength+1) + `"}`, "the maximum is 100"},
		{"name with padding", `{"name":" padded "}`, "white space"},
		{"name with control character", `{"name":"a\u0007b"}`, "control character"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.sm.AppliedIndex()
			resp := e.admin(t, "POST", "/v1/admin/vaults", []byte(tc.body))
			expectStatus(t, resp, http.StatusBadRequest)
			var body errorBody
			if err := json.Unmarshal(resp.body, &body); err != nil {
				t.Fatalf("error body %s: %v", resp.body, err)
			}
			if !strings.Contains(body.Error, tc.contains) {
				t.Errorf("error %q does not mention %q", body.Error, tc.contains)
			}
			if body.RequestID != resp.header.Get("X-Request-Id") || body.RequestID == "" {
				t.Errorf("requestId %q, X-Request-Id %q", body.RequestID, resp.header.Get("X-Request-Id"))
			}
			if after := e.sm.AppliedIndex(); after != before {
				t.Errorf("applied index moved from %d to %d", before, after)
			}
		})
	}
}

func TestBadInput_UnknownRoutesAndIDs(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	base := "/v1/admin/vaults/" + f.vault
	cases := []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"unknown vault", "GET", "/v1/admin/vaults/vault_0000000000000000", nil, http.StatusNotFound},
		{"malformed vault id", "GET", "/v1/admin/vaults/not-a-vault", nil, http.StatusNotFound},
		{"unknown machine", "GET", base + "/machines/00000000-0000-4000-8000-000000000000", nil, http.StatusNotFound},
		{"malformed machine id", "GET", base + "/machines/x", nil, http.StatusNotFound},
		{"approve unknown machine", "POST", base + "/machines/00000000-0000-4000-8000-000000000000/approve", map[string]any{}, http.StatusNotFound},
		{"unknown project", "POST", base + "/projects/proj_0000000000/secrets", map[string]string{"name": "x", "value": "y"}, http.StatusNotFound},
		{"unknown secret", "PUT", base + "/secrets/sk_0000000000", map[string]string{"value": "y"}, http.StatusNotFound},
		{"grant of an unknown secret", "PUT", e.machinePath(m) + "/grants", map[string]any{"secretIds": []string{"sk_0000000000"}}, http.StatusNotFound},
		{"attach an unknown project", "POST", e.machinePath(m) + "/projects", map[string]string{"projectId": "proj_0000000000"}, http.StatusNotFound},
		{"unknown route", "GET", "/v1/admin/nothing", nil, http.StatusNotFound},
		{"method not allowed", "DELETE", "/v1/admin/vaults", nil, http.StatusMethodNotAllowed},
		{"approve twice", "POST", e.machinePath(m) + "/approve", map[string]any{}, http.StatusConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.sm.AppliedIndex()
			resp := e.admin(t, tc.method, tc.path, tc.body)
			expectStatus(t, resp, tc.want)
			if tc.want == http.StatusMethodNotAllowed && resp.header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			if tc.want != http.StatusConflict && e.sm.AppliedIndex() != before {
				t.Errorf("applied index moved on a rejected request")
			}
		})
	}
}

func TestBadInput_InvalidPublicKeys(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	token := e.bootstrapToken(t, vault)
	path := "/v1/bootstrap/" + token + "/register"

	identity := make([]byte, 32)
	identity[0] = 1 // the neutral element, a small-order point
	nonCanonical := make([]byte, 32)
	for i := range nonCanonical {
		nonCanonical[i] = 0xff
	}
	nonCanonical[0], nonCanonical[31] = 0xed, 0x7f // y = p, not reduced
	pub, _, _ := ed25519.GenerateKey(rand.Reader)

	cases := []struct {
		name string
		body string
	}{
		{"31 bytes", `{"publicKey":"` + base64.StdEncoding.EncodeToString(pub[:31]) + `","hostname":"h"}`},
		{"33 bytes", `{"publicKey":"` + base64.StdEncoding.EncodeToString(append(append([]byte(nil), pub...), 0)) + `","hostname":"h"}`},
		{"small-order point", `{"publicKey":"` + base64.StdEncoding.EncodeToString(identity) + `","hostname":"h"}`},
		{"all zero bytes", `{"publicKey":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `","hostname":"h"}`},
		{"non-canonical encoding", `{"publicKey":"` + base64.StdEncoding.EncodeToString(nonCanonical) + `","hostname":"h"}`},
		{"not base64", `{"publicKey":"not base64!","hostname":"h"}`},
		{"URL-safe base64", `{"publicKey":"` + base64.URLEncoding.EncodeToString(pub) + `_","hostname":"h"}`},
		{"missing key", `{"hostname":"h"}`},
		{"missing hostname", `{"publicKey":"` + base64.StdEncoding.EncodeToString(pub) + `"}`},
		{"hostname with newline", `{"publicKey":"` + base64.StdEncoding.EncodeToString(pub) + `","hostname":"h\nx"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.sm.AppliedIndex()
			resp := e.mustSend(t, defaultSource, "POST", path, nil, []byte(tc.body))
			expectStatus(t, resp, http.StatusBadRequest)
			machineError(t, resp)
			if after := e.sm.AppliedIndex(); after != before {
				t.Errorf("applied index moved from %d to %d", before, after)
			}
		})
	}

	t.Run("token still usable afterwards", func(t *testing.T) {
		_, out, resp := e.register(t, path, "good-host")
		expectStatus(t, resp, http.StatusCreated)
		if out.VaultID != vault || out.MachineName != "good-host" {
			t.Errorf("registration = %+v", out)
		}
	})
}
