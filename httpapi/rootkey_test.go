package httpapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/fsm/seal"
)

// startForeignKeyEnv starts a single-node cluster and server whose
// cluster was initialised with a root key check value sealed under another
// root key, as if init had run on a node with another key file. It
// returns the environment with the owner token set.
func startForeignKeyEnv(t *testing.T) *testEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "keyward-rootkey-")
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{dir: dir, clock: &testClock{}, audit: newRecordingAuditor()}
	t.Cleanup(e.close)
	if err := e.startCluster(); err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	if err := e.startServer(); err != nil {
		t.Fatalf("start server: %v", err)
	}

	root := make([]byte, seal.KeySize)
	if _, err := rand.Read(root); err != nil {
		t.Fatal(err)
	}
	foreign, err := seal.NewKeyring(root)
	if err != nil {
		t.Fatal(err)
	}
	check, err := foreign.NewRootKeyCheck()
	if err != nil {
		t.Fatal(err)
	}
	token := newAdminToken()
	payload, err := json.Marshal(fsm.InitPayload{TokenID: newHandle("at_"), TokenHash: hashToken(token), RootKeyCheck: check})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.node.Apply(ctx, &fsm.Command{
		Type: fsm.CmdInit, Time: time.Now().UnixMilli(), Node: "node-1",
		Actor: fsm.Actor{Kind: "system", ID: "node-1", SourceIP: "system"}, Payload: payload,
	})
	if err != nil {
		t.Fatalf("apply init: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("init rejected: %v", err)
	}
	e.root = token
	return e
}

func errorText(t *testing.T, resp response) string {
	t.Helper()
	var body errorBody
	if err := json.Unmarshal(resp.body, &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", resp.body, err)
	}
	return body.Error
}

func TestRootKeyMismatch_NodeRefuses(t *testing.T) {
	e := startForeignKeyEnv(t)

	// Creating a vault seals nothing, and nothing has tested the root key
	// yet, so it passes.
	var vault struct {
		ID string `json:"id"`
	}
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults", map[string]any{"name": "prod"}, &vault)

	// A project key would be sealed under this node's root key: the check
	// before sealing finds the mismatch.
	resp := e.admin(t, "POST", "/v1/admin/vaults/"+vault.ID+"/projects", map[string]any{"name": "billing"})
	expectStatus(t, resp, http.StatusServiceUnavailable)
	if msg := errorText(t, resp); !strings.Contains(msg, "--root-key-file") || !strings.Contains(msg, "node-1") {
		t.Errorf("project create message %q does not name the node and the fix", msg)
	}
	if got := e.sm.Projects(fsm.VaultID(vault.ID)); len(got) != 0 {
		t.Fatalf("%d projects stored after the rejected create, want 0", len(got))
	}

	// From now on every write is rejected, sealing or not.
	resp = e.admin(t, "POST", "/v1/admin/vaults", map[string]any{"name": "staging"})
	expectStatus(t, resp, http.StatusServiceUnavailable)
	if msg := errorText(t, resp); !strings.Contains(msg, "root key") {
		t.Errorf("vault create message %q does not name the root key", msg)
	}

	resp = e.mustSend(t, defaultSource, "GET", "/v1/sys/health", nil, nil)
	expectStatus(t, resp, http.StatusServiceUnavailable)
	var h healthResponse
	if err := json.Unmarshal(resp.body, &h); err != nil {
		t.Fatal(err)
	}
	if !h.RootKeyMismatch {
		t.Error("health rootKeyMismatch = false, want true")
	}
	if h.Healthy {
		t.Error("health healthy = true, want false")
	}

	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := testMachine{id: "11111111-1111-4111-8111-111111111111", key: key}
	resp = e.signed(t, defaultSource, m, "GET", "/v1/secrets", nil)
	expectStatus(t, resp, http.StatusServiceUnavailable)
	if msg := machineError(t, resp); !strings.Contains(msg, "root key") {
		t.Errorf("machine request message %q does not name the root key", msg)
	}
}

// A health check on a node that nothing has tested yet finds the mismatch
// itself.
func TestRootKeyMismatch_HealthTestsKey(t *testing.T) {
	e := startForeignKeyEnv(t)
	if err := e.sm.RootKeyMismatch(); err != nil {
		t.Fatalf("mismatch recorded before any test: %v", err)
	}
	resp := e.mustSend(t, defaultSource, "GET", "/v1/sys/health", nil, nil)
	expectStatus(t, resp, http.StatusServiceUnavailable)
	if !strings.Contains(string(resp.body), `"rootKeyMismatch":true`) {
		t.Fatalf("health body %s lacks rootKeyMismatch true", resp.body)
	}
}

func TestRootKeyMatch_HealthReportsNoMismatch(t *testing.T) {
	e := sharedEnv(t)
	resp := e.mustSend(t, defaultSource, "GET", "/v1/sys/health", nil, nil)
	if !strings.Contains(string(resp.body), `"rootKeyMismatch":false`) {
		t.Fatalf("health body %s lacks rootKeyMismatch false", resp.body)
	}
	if checked, err := e.sm.VerifyRootKey(); err != nil || !checked {
		t.Fatalf("VerifyRootKey after init over HTTP: checked %v, error %v; want true, nil", checked, err)
	}
}

func TestExplainSealFailure(t *testing.T) {
	decryptFailure := fmt.Errorf("read secret sk_0123456789: open project key: %w", seal.ErrDecrypt)

	t.Run("matching root key", func(t *testing.T) {
		e := sharedEnv(t)
		err := e.srv.explainSealFailure(decryptFailure)
		status, _ := statusFor(err)
		if status != fasthttp.StatusInternalServerError {
			t.Fatalf("status %d, want 500", status)
		}
		if msg := clientMessage(err, status); msg != "Internal server error" {
			t.Fatalf("message %q, want the plain 500 message", msg)
		}
	})

	t.Run("other root key", func(t *testing.T) {
		e := startForeignKeyEnv(t)
		err := e.srv.explainSealFailure(decryptFailure)
		status, code := statusFor(err)
		if status != fasthttp.StatusInternalServerError {
			t.Fatalf("status %d, want 500", status)
		}
		if code != "root_key_mismatch" {
			t.Errorf("code %q, want root_key_mismatch", code)
		}
		msg := clientMessage(err, status)
		if !strings.Contains(msg, "--root-key-file") {
			t.Errorf("message %q does not name the fix", msg)
		}
		if strings.Contains(msg, "sk_0123456789") || strings.Contains(msg, "decryption") {
			t.Errorf("message %q shows the internal cause", msg)
		}
	})

	t.Run("other error", func(t *testing.T) {
		e := sharedEnv(t)
		other := errors.New("disk read failed")
		if got := e.srv.explainSealFailure(other); got != other {
			t.Fatalf("explainSealFailure changed a non-seal error to %v", got)
		}
	})
}
