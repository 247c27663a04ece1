package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// setupVault initialises the cluster through node and creates a vault, a
// project and one secret. It returns their ids.
type fixture struct {
	vaultID   string
	projectID string
	secretID  string
}

func (c *testCluster) setup(n *testNode) fixture {
	c.t.Helper()
	var initResp struct {
		RootToken string `json:"rootToken"`
	}
	c.mustAdmin(n, http.StatusOK, "POST", "/v1/sys/init", map[string]any{}, &initResp)
	if !strings.HasPrefix(initResp.RootToken, "kwt_") {
		c.t.Fatalf("root token %q lacks the kwt_ prefix", initResp.RootToken)
	}
	c.token = initResp.RootToken
	c.mustAdmin(n, http.StatusConflict, "POST", "/v1/sys/init", map[string]any{}, nil)

	var f fixture
	var obj struct {
		ID string `json:"id"`
	}
	c.mustAdmin(n, http.StatusCreated, "POST", "/v1/admin/vaults", map[string]any{"name": "prod"}, &obj)
	f.vaultID = obj.ID
	c.mustAdmin(n, http.StatusCreated, "POST", "/v1/admin/vaults/"+f.vaultID+"/projects",
		map[string]any{"name": "billing"}, &obj)
	f.projectID = obj.ID
	c.mustAdmin(n, http.StatusCreated, "POST",
		"/v1/admin/vaults/"+f.vaultID+"/projects/"+f.projectID+"/secrets",
		map[string]any{"name": "db-password", "value": "s3cr3t-value"}, &obj)
	f.secretID = obj.ID
	// A follower rejects the root token with 401 until it has applied the
	// init, a few milliseconds after the node that served it.
	c.waitConverged()
	return f
}

// registerByScript fetches the served sh script from node and runs it with
// sh, as a workload would. It returns the identity written by the script.
func (c *testCluster) registerByScript(n *testNode, vaultID string) machineKey {
	c.t.Helper()
	for _, tool := range []string{"sh", "openssl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			c.t.Fatalf("%s is required to run the bootstrap script (apt-get install openssl curl): %v", tool, err)
		}
	}
	var tok struct {
		Token    string            `json:"token"`
		Commands map[string]string `json:"commands"`
	}
	c.mustAdmin(n, http.StatusCreated, "POST", "/v1/admin/vaults/"+vaultID+"/bootstrap-tokens",
		map[string]any{}, &tok)
	if tok.Commands["sh"] == "" || tok.Commands["ps"] == "" {
		c.t.Fatalf("bootstrap token response lacks commands: %+v", tok.Commands)
	}

	resp, err := httpClient.Get(n.url() + "/v1/bootstrap/" + tok.Token)
	if err != nil {
		c.t.Fatal(err)
	}
	script := readAll(c.t, resp)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET bootstrap script: %d %s", resp.StatusCode, script)
	}

	home := c.t.TempDir()
	cmd := exec.Command("sh", "-s")
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "KEYWARD_HOME="+home, "HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("bootstrap script failed: %v\n%s", err, out)
	}
	return loadIdentity(c.t, filepath.Join(home, "vaults", vaultID))
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// loadIdentity reads identity.json and private.pem from dir and checks
// their permissions.
func loadIdentity(t *testing.T, dir string) machineKey {
	t.Helper()
	for name, want := range map[string]os.FileMode{"identity.json": 0o600, "private.pem": 0o600, ".": 0o700} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("identity file %s: %v", name, err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", name, got, want)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		MachineID      string `json:"machineId"`
		MachineName    string `json:"machineName"`
		VaultID        string `json:"vaultId"`
		APIURL         string `json:"apiUrl"`
		PrivateKeyPath string `json:"privateKeyPath"`
	}
	if err := json.Unmarshal(raw, &id); err != nil {
		t.Fatalf("identity.json %q: %v", raw, err)
	}
	if id.MachineID == "" || id.VaultID == "" || id.APIURL == "" || id.PrivateKeyPath == "" {
		t.Fatalf("identity.json misses fields: %s", raw)
	}
	pemBytes, err := os.ReadFile(id.PrivateKeyPath)
	if err != nil {
		t.Fatalf("privateKeyPath %s: %v", id.PrivateKeyPath, err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("private.pem is not a PKCS#8 PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse private.pem: %v", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("private.pem holds %T, want an Ed25519 key", key)
	}
	return machineKey{id: id.MachineID, priv: priv}
}

// grantRead approves a machine, attaches it to the project and grants it
// the secrets.
func (c *testCluster) grantRead(n *testNode, f fixture, m machineKey, secretIDs ...string) {
	c.t.Helper()
	base := "/v1/admin/vaults/" + f.vaultID + "/machines/" + m.id
	c.mustAdmin(n, http.StatusOK, "POST", base+"/approve", map[string]any{}, nil)
	c.mustAdmin(n, http.StatusOK, "POST", base+"/projects", map[string]any{"projectId": f.projectID}, nil)
	c.mustAdmin(n, http.StatusOK, "PUT", base+"/grants", map[string]any{"secretIds": secretIDs}, nil)
}

// waitRead polls node until the machine reads the secret with status 200.
func waitRead(t *testing.T, n *testNode, m machineKey, secretID, want string) {
	t.Helper()
	eventually(t, 15*time.Second, func() string {
		status, body := signedGet(t, n, m, "/v1/secret/"+secretID)
		if status != http.StatusOK {
			return fmt.Sprintf("%s: status %d %s", n.id, status, body)
		}
		var v struct {
			Value string `json:"value"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Value != want {
			return fmt.Sprintf("%s: body %s, want value %q", n.id, body, want)
		}
		return ""
	})
}

func TestCluster_ScriptRegistrationReadFromOtherNode(t *testing.T) {
	c := startCluster(t, 3)
	node1, node2, node3 := c.nodes[0], c.nodes[1], c.nodes[2]
	f := c.setup(node2)

	m := c.registerByScript(node1, f.vaultID)

	status, _ := signedGet(t, node3, m, "/v1/secret/"+f.secretID)
	eventually(t, 10*time.Second, func() string {
		status, _ = signedGet(t, node3, m, "/v1/secret/"+f.secretID)
		if status != http.StatusForbidden {
			return fmt.Sprintf("pending machine got %d, want 403", status)
		}
		return ""
	})

	c.grantRead(node1, f, m, f.secretID)
	waitRead(t, node3, m, f.secretID, "s3cr3t-value")

	var other struct {
		ID string `json:"id"`
	}
	c.mustAdmin(node1, http.StatusCreated, "POST",
		"/v1/admin/vaults/"+f.vaultID+"/projects/"+f.projectID+"/secrets",
		map[string]any{"name": "api-key", "value": "other"}, &other)
	eventually(t, 10*time.Second, func() string {
		status, body := signedGet(t, node3, m, "/v1/secret/"+other.ID)
		if status != http.StatusForbidden {
			return fmt.Sprintf("ungranted secret: status %d %s, want 403", status, body)
		}
		return ""
	})

	c.mustAdmin(node2, http.StatusOK, "POST",
		"/v1/admin/vaults/"+f.vaultID+"/machines/"+m.id+"/revoke", map[string]any{}, nil)
	for _, n := range c.nodes {
		eventually(t, 10*time.Second, func() string {
			status, body := signedGet(t, n, m, "/v1/secret/"+f.secretID)
			if status != http.StatusForbidden {
				return fmt.Sprintf("revoked machine on %s: status %d %s, want 403", n.id, status, body)
			}
			return ""
		})
	}
}
