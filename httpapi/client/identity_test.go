package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	testVaultID        = "vault_0123456789abcdef"
	testBootstrapToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func registerResponseJSON(vaultID, apiURL string, expiresAt int64) string {
	b, _ := json.Marshal(map[string]any{
		"machineId": testMachineID, "machineName": "build-01", "vaultId": vaultID,
		"apiUrl": apiURL, "expiresAt": expiresAt,
	})
	return string(b)
}

func TestRegister_WritesIdentityLayout(t *testing.T) {
	home := filepath.Join(t.TempDir(), "kw")
	t.Setenv(EnvKeywardHome, home)
	f := newFakeAPI(t)
	f.respond(http.StatusCreated, registerResponseJSON(testVaultID, "https://keyward.example:8200", 0))

	id, err := Register(context.Background(), f.url(), testBootstrapToken, false, "", "build-01.local")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}

	req := f.last(t)
	if req.Method != "POST" || req.RequestURI != "/v1/bootstrap/"+testBootstrapToken+"/register" {
		t.Errorf("request = %s %s, want POST /v1/bootstrap/{token}/register", req.Method, req.RequestURI)
	}
	var body struct {
		PublicKey string `json:"publicKey"`
		Hostname  string `json:"hostname"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatalf("body %q: %v", req.Body, err)
	}
	if body.Hostname != "build-01.local" {
		t.Errorf("hostname = %q", body.Hostname)
	}
	sentKey, err := base64.StdEncoding.DecodeString(body.PublicKey)
	if err != nil || len(sentKey) != ed25519.PublicKeySize {
		t.Fatalf("publicKey %q is not standard base64 of 32 bytes (err %v)", body.PublicKey, err)
	}

	dir := filepath.Join(home, "vaults", testVaultID)
	assertMode(t, dir, 0o700|fs.ModeDir)
	assertMode(t, filepath.Join(home, "vaults"), 0o700|fs.ModeDir)
	assertMode(t, filepath.Join(dir, "identity.json"), 0o600)
	assertMode(t, filepath.Join(dir, "private.pem"), 0o600)

	wantID := Identity{
		MachineID: testMachineID, MachineName: "build-01", VaultID: testVaultID,
		APIURL: "https://keyward.example:8200", PrivateKeyPath: filepath.Join(dir, "private.pem"),
	}
	var onDisk map[string]string
	raw, err := os.ReadFile(filepath.Join(dir, "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &onDisk); err != nil {
		t.Fatalf("identity.json: %v", err)
	}
	wantDisk := map[string]string{
		"machineId": wantID.MachineID, "machineName": wantID.MachineName, "vaultId": wantID.VaultID,
		"apiUrl": wantID.APIURL, "privateKeyPath": wantID.PrivateKeyPath,
	}
	if !reflect.DeepEqual(onDisk, wantDisk) {
		t.Errorf("identity.json = %v, want %v", onDisk, wantDisk)
	}

	loaded, err := LoadIdentity(filepath.Join(dir, "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.MachineID != id.MachineID || loaded.PrivateKeyPath != wantID.PrivateKeyPath {
		t.Errorf("loaded identity = %+v, want %+v", loaded, wantID)
	}
	key, err := loaded.PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key.Public().(ed25519.PublicKey), sentKey) {
		t.Errorf("private.pem does not hold the key whose public half was sent")
	}
}

func TestRegister_TempMachine(t *testing.T) {
	t.Setenv(EnvKeywardHome, t.TempDir())
	f := newFakeAPI(t)
	f.respond(http.StatusCreated, registerResponseJSON(testVaultID, "", 1782820800000))

	reg, err := RegisterMachine(context.Background(), RegisterRequest{
		APIURL: f.url(), Token: testBootstrapToken, Temp: true, VaultID: testVaultID, Hostname: "pentest",
	})
	if err != nil {
		t.Fatalf("RegisterMachine: %v", err)
	}

	want := "/v1/" + testVaultID + "/temp-bootstrap/" + testBootstrapToken + "/register"
	if got := f.last(t).RequestURI; got != want {
		t.Errorf("path = %s, want %s", got, want)
	}
	if reg.ExpiresAt != 1782820800000 {
		t.Errorf("ExpiresAt = %d", reg.ExpiresAt)
	}
	if reg.Identity.APIURL != f.url() {
		t.Errorf("apiUrl = %q, want the URL used to register when the server sends none", reg.Identity.APIURL)
	}
}

func TestRegister_KeepsEarlierIdentity(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvKeywardHome, home)
	f := newFakeAPI(t)
	f.respond(http.StatusCreated, registerResponseJSON(testVaultID, "", 0))
	ctx := context.Background()

	first, err := RegisterMachine(ctx, RegisterRequest{APIURL: f.url(), Token: testBootstrapToken, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	firstKey, err := first.Identity.PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	second, err := RegisterMachine(ctx, RegisterRequest{APIURL: f.url(), Token: testBootstrapToken, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}

	if len(second.Replaced) != 2 {
		t.Fatalf("Replaced = %v, want the earlier identity.json and private.pem", second.Replaced)
	}
	for _, p := range second.Replaced {
		assertMode(t, p, 0o600)
	}
	keptPEM, err := os.ReadFile(second.Replaced[1])
	if err != nil {
		t.Fatal(err)
	}
	kept, err := ParsePrivateKeyPEM(keptPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !kept.Equal(firstKey) {
		t.Errorf("the moved-aside key is not the first registration's key")
	}
}

func TestRegister_RejectsBeforeSending(t *testing.T) {
	t.Setenv(EnvKeywardHome, t.TempDir())
	f := newFakeAPI(t)
	cases := []struct {
		name string
		req  RegisterRequest
	}{
		{"short token", RegisterRequest{Token: "abc"}},
		{"non-hex token", RegisterRequest{Token: strings.Repeat("zz", 32)}},
		{"temp without vault", RegisterRequest{Token: testBootstrapToken, Temp: true}},
		{"vault with slash", RegisterRequest{Token: testBootstrapToken, Temp: true, VaultID: "../etc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.APIURL = f.url()
			tc.req.Hostname = "h"
			if _, err := RegisterMachine(context.Background(), tc.req); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("error = %v, want ErrInvalidArgument", err)
			}
			if f.count() != 0 {
				t.Errorf("a registration request was sent")
			}
		})
	}
}

func TestRegister_UsedTokenHidesToken(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvKeywardHome, home)
	f := newFakeAPI(t)
	f.respond(http.StatusGone, `{"error":"bootstrap token expired, revoked or already used"}`)

	_, err := Register(context.Background(), f.url(), testBootstrapToken, false, "", "h")

	if !errors.Is(err, ErrGone) {
		t.Fatalf("error = %v, want ErrGone", err)
	}
	if strings.Contains(err.Error(), testBootstrapToken) {
		t.Errorf("error text %q contains the bootstrap token", err.Error())
	}
	if entries, _ := os.ReadDir(filepath.Join(home, "vaults")); len(entries) != 0 {
		t.Errorf("a failed registration left %d entries in the vaults folder", len(entries))
	}
}

func TestRegister_RejectsUnsafeResponse(t *testing.T) {
	cases := []struct {
		name     string
		response string
	}{
		{"vault path traversal", registerResponseJSON("../../etc", "", 0)},
		{"machine id not a uuid", `{"machineId":"x/../../y","vaultId":"` + testVaultID + `"}`},
		{"api url not http", registerResponseJSON(testVaultID, "file:///etc/passwd", 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv(EnvKeywardHome, home)
			f := newFakeAPI(t)
			f.respond(http.StatusCreated, tc.response)

			if _, err := Register(context.Background(), f.url(), testBootstrapToken, false, "", "h"); err == nil {
				t.Fatal("Register accepted the response")
			}
			if entries, _ := os.ReadDir(filepath.Join(home, "vaults")); len(entries) != 0 {
				t.Errorf("files were written for a rejected response")
			}
		})
	}
}

func TestIdentity_PrivateKeyPEMRoundTrip(t *testing.T) {
	key := newTestKey(t)
	pemBytes, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("PEM starts with %q, want a PKCS#8 PRIVATE KEY block", pemBytes[:28])
	}
	back, err := ParsePrivateKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(key) {
		t.Errorf("round trip changed the key")
	}
}

func TestIdentity_ParsePrivateKeyRejects(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		hint string
	}{
		{"not PEM", []byte("hello"), "no PEM block"},
		{"wrong block type", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte{1}}), "PKCS#8"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "parse PKCS#8"},
		{"ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), "Ed25519"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePrivateKeyPEM(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.hint)
			}
		})
	}
}

// TestIdentity_OpenSSLCompatible checks both directions with the openssl
// tool that the served bootstrap scripts use: openssl reads our key, and we
// read a key that openssl generated.
func TestIdentity_OpenSSLCompatible(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl not found (install it, for example with apt-get install openssl): %v", err)
	}
	dir := t.TempDir()

	key := newTestKey(t)
	pemBytes, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours.pem")
	if err := os.WriteFile(ours, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "pkey", "-in", ours, "-pubout", "-outform", "DER").Output()
	if err != nil {
		t.Fatalf("openssl pkey: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(out)
	if err != nil {
		t.Fatalf("openssl's public key: %v", err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(pub) {
		t.Errorf("openssl derived a different public key")
	}

	theirs := filepath.Join(dir, "theirs.pem")
	if out, err := exec.Command(openssl, "genpkey", "-algorithm", "Ed25519", "-out", theirs).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	data, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePrivateKeyPEM(data); err != nil {
		t.Errorf("cannot read a key that openssl generated: %v", err)
	}
}

func TestIdentity_LoadRejectsIncomplete(t *testing.T) {
	cases := []struct {
		name    string
		content string
		hint    string
	}{
		{"not json", "{", "not valid JSON"},
		{"no machine id", `{"vaultId":"v","apiUrl":"http://127.0.0.1:8200"}`, "machineId"},
		{"no api url", `{"machineId":"m","vaultId":"v"}`, "apiUrl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadIdentity(path)
			if err == nil || !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.hint)
			}
		})
	}
}

func TestIdentity_DefaultKeyPathBesideFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.json")
	content := `{"machineId":"` + testMachineID + `","vaultId":"v","apiUrl":"http://127.0.0.1:8200"}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "private.pem"); id.PrivateKeyPath != want {
		t.Errorf("PrivateKeyPath = %q, want %q", id.PrivateKeyPath, want)
	}
}

func TestIdentity_Resolve(t *testing.T) {
	keywardHome := t.TempDir()
	sikkerHome := t.TempDir()
	writeFakeIdentity(t, keywardHome, "vault_a")
	writeFakeIdentity(t, sikkerHome, "vault_s")
	twoHome := t.TempDir()
	writeFakeIdentity(t, twoHome, "vault_a")
	writeFakeIdentity(t, twoHome, "vault_b")
	emptyHome := t.TempDir()

	cases := []struct {
		name    string
		env     map[string]string
		vault   string
		want    string
		wantErr error
	}{
		{"vault flag", map[string]string{EnvKeywardHome: twoHome}, "vault_b",
			filepath.Join(twoHome, "vaults", "vault_b", "identity.json"), nil},
		{"vault flag wins over identity env", map[string]string{EnvKeywardHome: twoHome, EnvKeywardIdentity: "/x/identity.json"}, "vault_a",
			filepath.Join(twoHome, "vaults", "vault_a", "identity.json"), nil},
		{"keyward identity env", map[string]string{EnvKeywardIdentity: "/x/identity.json", EnvSikkerKeyIdentity: "/y/identity.json"}, "",
			"/x/identity.json", nil},
		{"sikkerkey identity env", map[string]string{EnvSikkerKeyIdentity: "/y/identity.json", EnvKeywardHome: twoHome}, "",
			"/y/identity.json", nil},
		{"only vault in keyward home", map[string]string{EnvKeywardHome: keywardHome, EnvSikkerKeyHome: sikkerHome}, "",
			filepath.Join(keywardHome, "vaults", "vault_a", "identity.json"), nil},
		{"only vault in sikkerkey home", map[string]string{EnvSikkerKeyHome: sikkerHome}, "",
			filepath.Join(sikkerHome, "vaults", "vault_s", "identity.json"), nil},
		{"two vaults need a choice", map[string]string{EnvKeywardHome: twoHome}, "", "", ErrAmbiguousIdentity},
		{"nothing registered", map[string]string{EnvKeywardHome: emptyHome}, "", "", ErrNoIdentity},
		{"unknown vault", map[string]string{EnvKeywardHome: twoHome}, "vault_z", "", ErrNoIdentity},
		{"vault with slash", map[string]string{EnvKeywardHome: twoHome}, "../vault_a", "", ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{EnvKeywardHome, EnvKeywardIdentity, EnvSikkerKeyHome, EnvSikkerKeyIdentity} {
				t.Setenv(name, tc.env[name])
			}
			got, err := ResolveIdentity(tc.vault)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("path = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIdentity_AmbiguousNamesVaults(t *testing.T) {
	home := t.TempDir()
	writeFakeIdentity(t, home, "vault_a")
	writeFakeIdentity(t, home, "vault_b")
	t.Setenv(EnvKeywardHome, home)
	t.Setenv(EnvKeywardIdentity, "")
	t.Setenv(EnvSikkerKeyIdentity, "")

	_, err := ResolveIdentity("")

	if err == nil || !strings.Contains(err.Error(), "vault_a, vault_b") {
		t.Errorf("error = %v, want one naming both vaults", err)
	}
}

func TestMachineClient_OpenFromRegisteredIdentity(t *testing.T) {
	t.Setenv(EnvKeywardHome, t.TempDir())
	f := newFakeAPI(t)
	f.respond(http.StatusCreated, registerResponseJSON(testVaultID, "", 0))
	id, err := Register(context.Background(), f.url(), testBootstrapToken, false, "", "h")
	if err != nil {
		t.Fatal(err)
	}

	mc, err := OpenMachineClient(id.Path())
	if err != nil {
		t.Fatal(err)
	}
	f.respond(http.StatusOK, `{"value":"s3cret"}`)
	value, err := mc.GetSecret(context.Background(), "sk_1")
	if err != nil {
		t.Fatal(err)
	}
	if value != "s3cret" {
		t.Errorf("value = %q", value)
	}

	// The key used to sign is the one whose public half was registered.
	var registered struct {
		PublicKey string `json:"publicKey"`
	}
	f.mu.Lock()
	_ = json.Unmarshal(f.requests[0].Body, &registered)
	f.mu.Unlock()
	pub, err := base64.StdEncoding.DecodeString(registered.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	assertSignature(t, f.last(t), ed25519.PublicKey(pub))
}

func writeFakeIdentity(t *testing.T, home, vaultID string) {
	t.Helper()
	dir := filepath.Join(home, "vaults", vaultID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	content := `{"machineId":"` + testMachineID + `","vaultId":"` + vaultID + `","apiUrl":"http://127.0.0.1:8200"}`
	if err := os.WriteFile(filepath.Join(dir, "identity.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode() & (fs.ModePerm | fs.ModeDir); got != want {
		t.Errorf("mode of %s = %v, want %v", path, got, want)
	}
}
