package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/cluster/audit"
)

func TestWebhookRoutes_CreateTestAndManage(t *testing.T) {
	e := startAuditEnv(t)
	vault := e.newVault(t)
	base := "/v1/admin/vaults/" + vault + "/webhooks"

	var (
		mu       sync.Mutex
		body     []byte
		sigHead  string
		gotEvent string
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, _ = io.ReadAll(r.Body)
		sigHead, gotEvent = r.Header.Get(audit.HeaderSignature), r.Header.Get(audit.HeaderEvent)
	}))
	defer rcv.Close()

	var created webhookView
	e.adminOK(t, http.StatusCreated, "POST", base, map[string]any{"url": rcv.URL + "/hook", "actions": []string{"temp_machine_blocked"}}, &created)
	if !strings.HasPrefix(created.Secret, webhookSecretPrefix) || !created.Enabled || created.ID == "" {
		t.Fatalf("created webhook %+v", created)
	}

	var list struct{ Webhooks []map[string]any }
	e.adminOK(t, http.StatusOK, "GET", base, nil, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0]["secret"] != nil {
		t.Fatalf("list %+v must show the webhook without its secret", list)
	}

	var res audit.TestResult
	e.adminOK(t, http.StatusOK, "POST", base+"/"+created.ID+"/test", map[string]any{}, &res)
	if !res.Delivered || res.StatusCode != http.StatusOK {
		t.Fatalf("test delivery %+v", res)
	}
	mu.Lock()
	ts, sig, _ := strings.Cut(strings.TrimPrefix(sigHead, "t="), ",v1=")
	mac := hmac.New(sha256.New, []byte(created.Secret))
	mac.Write([]byte(ts + "." + string(body)))
	if gotEvent != audit.ActionWebhookTest || sig != hex.EncodeToString(mac.Sum(nil)) {
		t.Fatalf("test event %q with signature %q does not verify with the returned secret", gotEvent, sigHead)
	}
	mu.Unlock()

	var updated webhookView
	e.adminOK(t, http.StatusOK, "PATCH", base+"/"+created.ID, map[string]any{"enabled": false, "actions": []string{"*"}}, &updated)
	if updated.Enabled || updated.Actions[0] != "*" {
		t.Fatalf("updated %+v", updated)
	}
	var deliveries struct{ Deliveries []any }
	e.adminOK(t, http.StatusOK, "GET", base+"/"+created.ID+"/deliveries", nil, &deliveries)

	e.adminOK(t, http.StatusOK, "DELETE", base+"/"+created.ID, nil, nil)
	expectStatus(t, e.admin(t, "GET", base+"/"+created.ID, nil), http.StatusNotFound)

	t.Run("refused urls", func(t *testing.T) {
		for _, url := range []string{
			"http://10.0.0.8/hook", "https://169.254.169.254/latest/meta-data", "ftp://example.com/x",
			"https://user:pw@example.com/x", "http://example.com/plain",
		} {
			resp := e.admin(t, "POST", base, map[string]any{"url": url, "actions": []string{"*"}})
			expectStatus(t, resp, http.StatusBadRequest)
		}
		expectStatus(t, e.admin(t, "POST", base, map[string]any{"url": rcv.URL, "actions": []string{}}), http.StatusBadRequest)
	})
}
