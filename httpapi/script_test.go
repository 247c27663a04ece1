package httpapi

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// identityFile is identity.json as the bootstrap scripts write it.
type identityFile struct {
	MachineID      string `json:"machineId"`
	MachineName    string `json:"machineName"`
	VaultID        string `json:"vaultId"`
	APIURL         string `json:"apiUrl"`
	PrivateKeyPath string `json:"privateKeyPath"`
	ExpiresAt      int64  `json:"expiresAt"`
}

// runBootstrap runs `curl -fsSL URL | sh` as a user would, with HOME and
// KEYWARD_HOME in a temporary folder.
func runBootstrap(t *testing.T, scriptURL, home string) (string, error) {
	t.Helper()
	for _, tool := range []string{"sh", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required for this test (apt-get install -y openssl curl): %v", tool, err)
		}
	}
	cmd := exec.Command("sh", "-c", "curl -fsSL '"+scriptURL+"' | sh")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "KEYWARD_HOME=" + filepath.Join(home, "kw")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// loadIdentity reads identity.json and private.pem written by a script and
// checks the folder and file modes.
func loadIdentity(t *testing.T, vaultDir string) (identityFile, ed25519.PrivateKey) {
	t.Helper()
	for path, want := range map[string]os.FileMode{
		filepath.Dir(filepath.Dir(vaultDir)):     0o700,
		filepath.Dir(vaultDir):                   0o700,
		vaultDir:                                 0o700,
		filepath.Join(vaultDir, "identity.json"): 0o600,
		filepath.Join(vaultDir, "private.pem"):   0o600,
	} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat %s: %v", path, err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s mode %o, want %o", path, got, want)
		}
	}
	entries, _ := os.ReadDir(vaultDir)
	if len(entries) != 2 {
		t.Errorf("vault folder holds %d entries, want identity.json and private.pem only", len(entries))
	}

	raw, err := os.ReadFile(filepath.Join(vaultDir, "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id identityFile
	if err := json.Unmarshal(raw, &id); err != nil {
		t.Fatalf("identity.json %q: %v", raw, err)
	}

	pemBytes, err := os.ReadFile(id.PrivateKeyPath)
	if err != nil {
		t.Fatalf("read privateKeyPath %q: %v", id.PrivateKeyPath, err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("private.pem is not a PKCS#8 PEM block: %q", pemBytes)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse PKCS#8: %v", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("private key is %T, want Ed25519", key)
	}
	return id, priv
}

func TestScript_ShRegistersAndSignedReadWorks(t *testing.T) {
	e := sharedEnv(t)
	f := e.newFixture(t)
	token := e.bootstrapToken(t, f.vault)
	home := t.TempDir()

	out, err := runBootstrap(t, "http://"+e.addr+"/v1/bootstrap/"+token, home)
	if err != nil {
		t.Fatalf("bootstrap script failed: %v\n%s", err, out)
	}
	vaultDir := filepath.Join(home, "kw", "vaults", f.vault)
	id, priv := loadIdentity(t, vaultDir)
	if id.VaultID != f.vault || id.APIURL != "http://"+e.addr || !isMachineID(id.MachineID) ||
		id.MachineName == "" || id.PrivateKeyPath != filepath.Join(vaultDir, "private.pem") {
		t.Errorf("identity.json = %+v", id)
	}
	if !strings.Contains(out, id.MachineID) {
		t.Errorf("script output does not name the machine:\n%s", out)
	}

	m := testMachine{id: id.MachineID, vault: id.VaultID, key: priv}
	e.approve(t, m)
	e.attach(t, m, f.project)
	e.grant(t, m, f.secret)
	resp := e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil)
	expectStatus(t, resp, http.StatusOK)
	var got struct{ Value string }
	_ = json.Unmarshal(resp.body, &got)
	if got.Value != f.value {
		t.Errorf("value = %q, want %q", got.Value, f.value)
	}

	t.Run("second run keeps the existing identity", func(t *testing.T) {
		again := e.bootstrapToken(t, f.vault)
		out, err := runBootstrap(t, "http://"+e.addr+"/v1/bootstrap/"+again, home)
		if err == nil || !strings.Contains(out, "an identity already exists") {
			t.Errorf("second run: err %v, output:\n%s", err, out)
		}
		if again, _ := loadIdentity(t, vaultDir); again.MachineID != id.MachineID {
			t.Errorf("identity replaced: %s, was %s", again.MachineID, id.MachineID)
		}
	})
}

func TestScript_TempShRegistersPendingMachine(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	tok := e.tempToken(t, vault, map[string]any{
		"name": `laptop "Q" \ 7`, "lifetime": map[string]int{"days": 3},
		"guardrails": map[string]any{"ipAllowlist": map[string]any{"cidrs": []string{"127.0.0.0/8"}}},
	})
	home := t.TempDir()

	out, err := runBootstrap(t, strings.TrimPrefix(strings.TrimSuffix(tok.Commands.Sh, "' | sh"), "curl -fsSL '"), home)
	if err != nil {
		t.Fatalf("temp bootstrap script failed: %v\n%s", err, out)
	}
	id, _ := loadIdentity(t, filepath.Join(home, "kw", "vaults", vault))
	if id.MachineName != `laptop "Q" \ 7` || id.ExpiresAt == 0 {
		t.Errorf("identity.json = %+v, want the issued name and an expiry", id)
	}
	v := e.machine(t, testMachine{id: id.MachineID, vault: vault})
	if v.Kind != "temp" || v.Status != "pending" || v.Guardrails == nil || v.ExpiresAt != id.ExpiresAt {
		t.Errorf("machine = %+v", v)
	}
}

func TestScript_PowerShellServed(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	token := e.bootstrapToken(t, vault)

	resp := e.mustSend(t, defaultSource, "GET", "/v1/bootstrap/"+token+"/ps", nil, nil)
	expectStatus(t, resp, http.StatusOK)
	script := string(resp.body)
	for _, want := range []string{
		"$KeywardRegisterUrl = 'http://" + e.addr + "/v1/bootstrap/" + token + "/register'",
		"$KeywardVaultId = '" + vault + "'",
		"openssl genpkey -algorithm Ed25519",
		"privateKeyPath",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("PowerShell script lacks %q", want)
		}
	}
	if strings.Contains(script, "{{") {
		t.Errorf("PowerShell script has an unfilled template field")
	}
}

func TestScript_HostHeaderIsChecked(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	token := e.bootstrapToken(t, vault)
	request := "GET /v1/bootstrap/" + token + " HTTP/1.1\r\nHost: evil.example'$(id)\r\nConnection: close\r\n\r\n"
	resp, err := e.sendRaw(defaultSource, []byte(request))
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, resp, http.StatusBadRequest)
	if msg := machineError(t, resp); !strings.Contains(msg, "Host header") {
		t.Errorf("error %q does not name the Host header", msg)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want a JSON error rather than a script", ct)
	}
}
