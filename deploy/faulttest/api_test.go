package faulttest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// requestTimeout bounds one HTTP request when the caller's context has no
// deadline.
const requestTimeout = 10 * time.Second

// maxResponseBytes bounds how much of a response body the tests read.
const maxResponseBytes = 1 << 20

// trustingClient returns an HTTP client that trusts only the CA in caFile.
// A keep-alive connection through a restarted container fails once. The
// transport retries an idempotent request on a fresh connection, and the
// workloads count any other transport error as "unavailable".
func trustingClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster CA %s holds no PEM certificate", caFile)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}}, nil
}

// doJSON sends a request with an optional JSON body and Bearer token and
// returns the status and body. err is set only when no response arrived.
func doJSON(ctx context.Context, n *node, method, path, token string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return 0, nil, fmt.Errorf("encode request body: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, n.url+path, body)
	if err != nil {
		return 0, nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(n.client, req)
}

func send(client *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("read the response of %s %s: %w", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, raw, nil
}

func decode(body []byte, out any) error {
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode %q: %w", clip(body), err)
	}
	return nil
}

// clip shortens a response body for an error message.
func clip(b []byte) string {
	const limit = 300
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}

// admin sends an admin-plane request with the cluster's owner token.
func (c *testCluster) admin(ctx context.Context, n *node, method, path string, in any) (int, []byte, error) {
	return doJSON(ctx, n, method, path, c.token, in)
}

// mustAdmin sends an admin request, fails the test unless the status is
// want, and decodes the body into out when out is not nil.
func (c *testCluster) mustAdmin(n *node, want int, method, path string, in, out any) {
	c.t.Helper()
	status, body, err := c.admin(context.Background(), n, method, path, in)
	if err != nil {
		c.t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	if status != want {
		c.t.Fatalf("%s %s on %s: status %d %s, want %d", method, path, n.name, status, clip(body), want)
	}
	if out != nil {
		if err := decode(body, out); err != nil {
			c.t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
		}
	}
}

// fixture is the data that every scenario starts from: one vault with one
// project.
type fixture struct {
	vaultID   string
	projectID string
}

// setup initialises the cluster through n and creates a vault and a project.
func (c *testCluster) setup(n *node) fixture {
	c.t.Helper()
	var initResp struct {
		RootToken string `json:"rootToken"`
	}
	c.mustAdmin(n, http.StatusOK, http.MethodPost, "/v1/sys/init", map[string]any{}, &initResp)
	if !strings.HasPrefix(initResp.RootToken, "kwt_") {
		c.t.Fatalf("init returned root token %q without the kwt_ prefix", initResp.RootToken)
	}
	c.token = initResp.RootToken

	var f fixture
	var created struct {
		ID string `json:"id"`
	}
	c.mustAdmin(n, http.StatusCreated, http.MethodPost, "/v1/admin/vaults", map[string]any{"name": "faults"}, &created)
	f.vaultID = created.ID
	c.mustAdmin(n, http.StatusCreated, http.MethodPost, "/v1/admin/vaults/"+f.vaultID+"/projects",
		map[string]any{"name": "workload"}, &created)
	f.projectID = created.ID
	return f
}

// secretRef is a secret created by a test and its first version.
type secretRef struct {
	id      string
	version int
}

// createSecret creates a plain secret in the fixture's project.
func (c *testCluster) createSecret(n *node, f fixture, name, value string) secretRef {
	c.t.Helper()
	var created struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	}
	c.mustAdmin(n, http.StatusCreated, http.MethodPost, f.secretsPath(),
		map[string]any{"name": name, "value": value}, &created)
	return secretRef{id: created.ID, version: created.Version}
}

func (f fixture) secretsPath() string {
	return "/v1/admin/vaults/" + f.vaultID + "/projects/" + f.projectID + "/secrets"
}

func (f fixture) secretPath(secretID string) string {
	return "/v1/admin/vaults/" + f.vaultID + "/secrets/" + secretID
}

func (f fixture) machinePath(machineID string) string {
	return "/v1/admin/vaults/" + f.vaultID + "/machines/" + machineID
}

// machine is a workload identity: its id and Ed25519 private key.
type machine struct {
	id   string
	priv ed25519.PrivateKey
}

// registerMachine registers a machine through a bootstrap token with a key
// generated here, through the same unsigned call the served scripts make,
// then approves it, attaches the project and grants the secrets.
func (c *testCluster) registerMachine(n *node, f fixture, name string, secretIDs ...string) machine {
	c.t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	c.mustAdmin(n, http.StatusCreated, http.MethodPost, "/v1/admin/vaults/"+f.vaultID+"/bootstrap-tokens",
		map[string]any{}, &tok)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		c.t.Fatalf("generate a machine key: %v", err)
	}
	in := map[string]any{"publicKey": base64.StdEncoding.EncodeToString(pub), "hostname": name}
	status, body, err := doJSON(context.Background(), n, http.MethodPost, "/v1/bootstrap/"+tok.Token+"/register", "", in)
	if err != nil || status != http.StatusCreated {
		c.t.Fatalf("register machine %s on %s: status %d %s %v", name, n.name, status, clip(body), err)
	}
	var reg struct {
		MachineID string `json:"machineId"`
	}
	if err := decode(body, &reg); err != nil {
		c.t.Fatal(err)
	}
	m := machine{id: reg.MachineID, priv: priv}

	base := f.machinePath(m.id)
	c.mustAdmin(n, http.StatusOK, http.MethodPost, base+"/approve", map[string]any{}, nil)
	c.mustAdmin(n, http.StatusOK, http.MethodPost, base+"/projects", map[string]any{"projectId": f.projectID}, nil)
	c.mustAdmin(n, http.StatusOK, http.MethodPut, base+"/grants", map[string]any{"secretIds": secretIDs}, nil)
	return m
}

// signedRequest is a signed machine request as it goes on the wire, kept so
// that a test can replay it byte for byte.
type signedRequest struct {
	method  string
	path    string
	body    []byte
	headers map[string]string
}

// sign builds the signature headers over
// METHOD:PATH:TIMESTAMP:NONCE:hex(sha256(body)) with a fresh random nonce.
func (m machine) sign(method, path string, body []byte, now time.Time) signedRequest {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonceBytes := make([]byte, 16)
	_, _ = rand.Read(nonceBytes) // never fails since Go 1.24
	nonce := hex.EncodeToString(nonceBytes)
	sum := sha256.Sum256(body)
	msg := method + ":" + path + ":" + ts + ":" + nonce + ":" + hex.EncodeToString(sum[:])
	sig := ed25519.Sign(m.priv, []byte(msg))
	return signedRequest{method: method, path: path, body: body, headers: map[string]string{
		"X-Machine-Id": m.id,
		"X-Timestamp":  ts,
		"X-Nonce":      nonce,
		"X-Signature":  base64.StdEncoding.EncodeToString(sig),
	}}
}

// sendSigned sends r to n. err is set only when no response arrived.
func sendSigned(ctx context.Context, n *node, r signedRequest) (int, []byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, n.url+r.path, bytes.NewReader(r.body))
	if err != nil {
		return 0, nil, fmt.Errorf("build %s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	return send(n.client, req)
}

// readSecret sends a freshly signed GET /v1/secret/{id} to n. value is set
// on 200.
func readSecret(ctx context.Context, n *node, m machine, secretID string) (status int, value string, err error) {
	status, body, err := sendSigned(ctx, n, m.sign(http.MethodGet, "/v1/secret/"+secretID, nil, time.Now()))
	if err != nil || status != http.StatusOK {
		return status, "", err
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := decode(body, &out); err != nil {
		return status, "", err
	}
	return status, out.Value, nil
}

// waitRead waits until m reads want from secretID on every node.
func (c *testCluster) waitRead(m machine, secretID, want string) {
	c.t.Helper()
	for _, n := range c.nodes {
		c.eventually(20*time.Second, n.name+" serves the secret to the machine", func() string {
			status, value, err := readSecret(context.Background(), n, m, secretID)
			if err != nil || status != http.StatusOK || value != want {
				return fmt.Sprintf("status %d value %q err %v, want 200 %q", status, value, err, want)
			}
			return ""
		})
	}
}
