package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testMachineID = "6f1c2b9e-4a57-4e0b-9d2c-3b8a5f7e1d20"

// fixedNow is the clock of the signing tests: 2026-06-30T12:00:00Z.
var fixedNow = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

func newTestKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func newTestMachineClient(t *testing.T, f *fakeAPI, key ed25519.PrivateKey) *MachineClient {
	t.Helper()
	id := &Identity{MachineID: testMachineID, MachineName: "ci", VaultID: "vault_x", APIURL: f.url()}
	mc, err := NewMachineClient(id, key, WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatalf("NewMachineClient: %v", err)
	}
	return mc
}

// verifySigned checks the four headers of req and the signature over the
// canonical string built here from the protocol text, independently of the
// client's own code.
func verifySigned(t *testing.T, req recordedRequest, pub ed25519.PublicKey) {
	t.Helper()
	h := req.Header
	if got := h.Get("X-Machine-Id"); got != testMachineID {
		t.Errorf("X-Machine-Id = %q, want %q", got, testMachineID)
	}
	if got := h.Get("X-Timestamp"); got != strconv.FormatInt(fixedNow.Unix(), 10) {
		t.Errorf("X-Timestamp = %q, want Unix seconds %d", got, fixedNow.Unix())
	}
	nonce := h.Get("X-Nonce")
	if len(nonce) < 8 || len(nonce) > 128 {
		t.Errorf("X-Nonce %q has %d characters, want 8 to 128", nonce, len(nonce))
	}
	assertSignature(t, req, pub)
}

// assertSignature checks X-Signature over the canonical string of req,
// built here from the protocol text rather than by the client's code.
func assertSignature(t *testing.T, req recordedRequest, pub ed25519.PublicKey) {
	t.Helper()
	h := req.Header
	sig, err := base64.StdEncoding.DecodeString(h.Get("X-Signature"))
	if err != nil {
		t.Fatalf("X-Signature is not standard base64: %v", err)
	}
	sum := sha256.Sum256(req.Body)
	msg := req.Method + ":" + req.RequestURI + ":" + h.Get("X-Timestamp") + ":" + h.Get("X-Nonce") + ":" + hex.EncodeToString(sum[:])
	if !ed25519.Verify(pub, []byte(msg), sig) {
		t.Errorf("signature does not verify over %q", msg)
	}
}

func TestMachineClient_SignedWireFormat(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		call     func(mc *MachineClient) error
		response string
		method   string
		path     string
		wantBody string
	}{
		{"get secret", func(mc *MachineClient) error { _, err := mc.GetSecret(ctx, "sk_0123456789"); return err },
			`{"value":"v"}`, "GET", "/v1/secret/sk_0123456789", ``},
		{"get secret with slash", func(mc *MachineClient) error { _, err := mc.GetSecret(ctx, "app/db-password"); return err },
			`{"value":"v"}`, "GET", "/v1/secret/app%2Fdb-password", ``},
		{"list secrets", func(mc *MachineClient) error { _, err := mc.ListSecrets(ctx); return err },
			`{"secrets":[]}`, "GET", "/v1/secrets", ``},
		{"list project secrets", func(mc *MachineClient) error { _, err := mc.ListProjectSecrets(ctx, "proj_1"); return err },
			`{"secrets":[]}`, "POST", "/v1/secrets/list", `{"projectId":"proj_1"}`},
		{"export all", func(mc *MachineClient) error { _, err := mc.Export(ctx, ""); return err },
			`{"secrets":[]}`, "POST", "/v1/secrets/export", ``},
		{"export project", func(mc *MachineClient) error { _, err := mc.Export(ctx, "proj_1"); return err },
			`{"secrets":[]}`, "POST", "/v1/secrets/export", `{"projectId":"proj_1"}`},
		{"poll", func(mc *MachineClient) error { _, err := mc.Poll(ctx, []string{"sk_1", "sk_2"}); return err },
			`{"changes":{}}`, "POST", "/v1/secrets/poll", `{"watch":["sk_1","sk_2"]}`},
		{"poll nothing", func(mc *MachineClient) error { _, err := mc.Poll(ctx, nil); return err },
			`{"changes":{}}`, "POST", "/v1/secrets/poll", `{"watch":[]}`},
		{"verify access", func(mc *MachineClient) error { _, err := mc.VerifyAccess(ctx, "proj_1"); return err },
			`{"valid":true}`, "POST", "/v1/verify-access", `{"projectId":"proj_1"}`},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.respond(http.StatusOK, tc.response)
			key := newTestKey(t)
			mc := newTestMachineClient(t, f, key)

			if err := tc.call(mc); err != nil {
				t.Fatalf("call: %v", err)
			}

			got := f.last(t)
			if got.Method != tc.method {
				t.Errorf("method = %s, want %s", got.Method, tc.method)
			}
			if got.RequestURI != tc.path {
				t.Errorf("path = %s, want %s", got.RequestURI, tc.path)
			}
			if _, ok := got.Header["Authorization"]; ok {
				t.Errorf("a machine request carries an Authorization header")
			}
			assertJSONEqual(t, got.Body, tc.wantBody)
			verifySigned(t, got, key.Public().(ed25519.PublicKey))
		})
	}
}

func TestMachineClient_FreshNoncePerRequest(t *testing.T) {
	f := newFakeAPI(t)
	f.respond(http.StatusOK, `{"value":"v"}`)
	mc := newTestMachineClient(t, f, newTestKey(t))

	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		if _, err := mc.GetSecret(context.Background(), "sk_1"); err != nil {
			t.Fatal(err)
		}
		nonce := f.last(t).Header.Get("X-Nonce")
		if seen[nonce] {
			t.Fatalf("nonce %q was sent twice", nonce)
		}
		seen[nonce] = true
	}
}

func TestMachineClient_DecodesResponses(t *testing.T) {
	ctx := context.Background()
	f := newFakeAPI(t)
	mc := newTestMachineClient(t, f, newTestKey(t))

	f.respond(http.StatusOK, `{"value":"{\"host\":\"db\",\"password\":\"p\"}"}`)
	fields, err := mc.GetFields(ctx, "sk_1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fields, map[string]string{"host": "db", "password": "p"}) {
		t.Errorf("fields = %v", fields)
	}

	f.respond(http.StatusOK, `{"secrets":[{"id":"sk_1","name":"db","fieldNames":"[\"host\",\"password\"]","projectId":"proj_1"},{"id":"sk_2","name":"api","fieldNames":null,"projectId":"proj_1"}]}`)
	list, err := mc.ListSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []MachineSecret{
		{ID: "sk_1", Name: "db", FieldNames: FieldNames{"host", "password"}, ProjectID: "proj_1"},
		{ID: "sk_2", Name: "api", ProjectID: "proj_1"},
	}
	if !reflect.DeepEqual(list, want) {
		t.Errorf("list = %+v, want %+v", list, want)
	}

	f.respond(http.StatusOK, `{"changes":{"sk_1":{"status":"changed"},"sk_2":{"status":"access_denied"}}}`)
	changes, err := mc.Poll(ctx, []string{"sk_1", "sk_2"})
	if err != nil {
		t.Fatal(err)
	}
	if changes["sk_1"].Status != "changed" || changes["sk_2"].Status != "access_denied" {
		t.Errorf("changes = %+v", changes)
	}

	f.respond(http.StatusOK, `{"valid":false,"projectName":null,"error":"not a member"}`)
	check, err := mc.VerifyAccess(ctx, "proj_9")
	if err != nil {
		t.Fatal(err)
	}
	if check.Valid || check.Error != "not a member" {
		t.Errorf("access check = %+v", check)
	}
}

func TestMachineClient_DeniedReadIsForbidden(t *testing.T) {
	f := newFakeAPI(t)
	f.respond(http.StatusForbidden, `{"error":"Access denied"}`)
	mc := newTestMachineClient(t, f, newTestKey(t))

	_, err := mc.GetSecret(context.Background(), "sk_1")

	if !errors.Is(err, ErrForbidden) {
		t.Errorf("error = %v, want ErrForbidden", err)
	}
}

func TestMachineClient_RejectsQuery(t *testing.T) {
	f := newFakeAPI(t)
	mc := newTestMachineClient(t, f, newTestKey(t))

	err := mc.Do(context.Background(), "GET", "/v1/secrets?all=1", nil, nil)

	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("error = %v, want ErrInvalidArgument", err)
	}
	if f.count() != 0 {
		t.Errorf("a signed request with a query was sent")
	}
}

func TestMachineClient_SignsBodyBytesExactly(t *testing.T) {
	f := newFakeAPI(t)
	key := newTestKey(t)
	mc := newTestMachineClient(t, f, key)

	// Raw JSON with unusual spacing must be signed and sent byte for byte.
	raw := json.RawMessage("{ \"projectId\" :\t\"proj_1\" }")
	if err := mc.Do(context.Background(), "POST", "/v1/secrets/list", raw, nil); err != nil {
		t.Fatal(err)
	}

	got := f.last(t)
	if string(got.Body) != string(raw) {
		t.Errorf("body = %q, want %q", got.Body, raw)
	}
	verifySigned(t, got, key.Public().(ed25519.PublicKey))
}

func TestMachineClient_BaseURLOverride(t *testing.T) {
	f := newFakeAPI(t)
	f.respond(http.StatusOK, `{"value":"v"}`)
	id := &Identity{MachineID: testMachineID, VaultID: "vault_x", APIURL: "http://127.0.0.1:1"}

	mc, err := NewMachineClient(id, newTestKey(t), WithBaseURL(f.url()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.GetSecret(context.Background(), "sk_1"); err != nil {
		t.Fatalf("read through the override: %v", err)
	}
}

func TestSigner_CanonicalVector(t *testing.T) {
	// The empty body hashes to the SHA-256 of the empty string.
	got := string(CanonicalRequest("GET", "/v1/secret/sk_1", "1782820800", "00112233445566778899aabb", nil))
	want := "GET:/v1/secret/sk_1:1782820800:00112233445566778899aabb:" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got != want {
		t.Errorf("canonical = %q, want %q", got, want)
	}

	got = string(CanonicalRequest("POST", "/v1/secrets/list", "1782820800", "n0nce-123", []byte(`{"projectId":"proj_1"}`)))
	sum := sha256.Sum256([]byte(`{"projectId":"proj_1"}`))
	want = "POST:/v1/secrets/list:1782820800:n0nce-123:" + hex.EncodeToString(sum[:])
	if got != want {
		t.Errorf("canonical = %q, want %q", got, want)
	}
}

func TestSigner_SignRequest(t *testing.T) {
	key := newTestKey(t)
	upper := strings.ToUpper(testMachineID)
	s, err := NewSigner(upper, key)
	if err != nil {
		t.Fatal(err)
	}

	h := s.SignRequest("GET", "/v1/secrets", nil, fixedNow)

	if got := h.Get(HeaderMachineID); got != testMachineID {
		t.Errorf("X-Machine-Id = %q, want the lower-case id", got)
	}
	nonce := h.Get(HeaderNonce)
	if len(nonce) != 24 || strings.Trim(nonce, "0123456789abcdef") != "" {
		t.Errorf("nonce %q is not 24 lower-case hex characters", nonce)
	}
	req := recordedRequest{Method: "GET", RequestURI: "/v1/secrets", Header: h}
	verifySigned(t, req, s.PublicKey())
}

func TestSigner_RejectsBadInput(t *testing.T) {
	key := newTestKey(t)
	cases := []struct {
		name string
		id   string
		key  ed25519.PrivateKey
	}{
		{"empty id", "", key},
		{"not a uuid", "machine-1", key},
		{"short key", testMachineID, key[:32]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSigner(tc.id, tc.key); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("error = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestFieldNames_WireForms(t *testing.T) {
	cases := []struct {
		name string
		json string
		want FieldNames
	}{
		{"null", `null`, nil},
		{"encoded array", `"[\"a\",\"b\"]"`, FieldNames{"a", "b"}},
		{"plain array", `["a"]`, FieldNames{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got FieldNames
			if err := json.Unmarshal([]byte(tc.json), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}

	var bad FieldNames
	if err := json.Unmarshal([]byte(`"not json"`), &bad); err == nil {
		t.Errorf("a string that holds no JSON array decoded without error")
	}

	out, err := json.Marshal(FieldNames{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `"[\"a\",\"b\"]"` {
		t.Errorf("marshal = %s, want a string holding the array", out)
	}
}
