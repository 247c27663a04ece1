package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsInit runs keyward cluster tls-init into a new folder and returns it.
func tlsInit(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	r := cliRun(t, nil, "", append([]string{"cluster", "tls-init", "--out", dir}, args...)...)
	assertCode(t, r, 0)
	return dir
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return cert
}

func TestCLI_TLSInit(t *testing.T) {
	dir := tlsInit(t, "--nodes", "node1,node2", "--hosts", "10.0.0.5,db.example.internal", "--clients", "admin")
	ca := readCert(t, filepath.Join(dir, "ca.pem"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	t.Run("file modes", func(t *testing.T) {
		modes := map[string]os.FileMode{
			"ca.pem": 0o644, "ca-key.pem": 0o600, "node1.pem": 0o644, "node1-key.pem": 0o600,
			"node2.pem": 0o644, "node2-key.pem": 0o600, "admin.pem": 0o644, "admin-key.pem": 0o600,
			"gossip.key": 0o600,
		}
		for name, want := range modes {
			info, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if got := info.Mode().Perm(); got != want {
				t.Errorf("%s mode %v, want %v", name, got, want)
			}
		}
	})

	t.Run("node certificates cover the names peers dial", func(t *testing.T) {
		cert := readCert(t, filepath.Join(dir, "node1.pem"))
		for _, name := range []string{"node1", "localhost", "127.0.0.1", "::1", "10.0.0.5", "db.example.internal", clusterServerName} {
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				opts := x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{usage}}
				if _, err := cert.Verify(opts); err != nil {
					t.Errorf("node1 certificate for %s with usage %v: %v", name, usage, err)
				}
			}
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "node2"}); err == nil {
			t.Errorf("node1's certificate is valid for node2")
		}
	})

	t.Run("client certificates only authenticate clients", func(t *testing.T) {
		cert := readCert(t, filepath.Join(dir, "admin.pem"))
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("admin certificate as a client: %v", err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
			t.Errorf("admin certificate verifies as a server certificate")
		}
	})

	t.Run("keys are ECDSA P-256 and match", func(t *testing.T) {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "node2.pem"), filepath.Join(dir, "node2-key.pem"))
		if err != nil {
			t.Fatalf("load node2 pair: %v", err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		if leaf.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("node2 key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
		}
	})

	t.Run("gossip key holds 32 bytes", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(dir, "gossip.key"))
		if err != nil {
			t.Fatal(err)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(key) != 32 {
			t.Errorf("gossip key decodes to %d bytes (%v), want 32", len(key), err)
		}
	})

	t.Run("existing files are never overwritten", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
		r := cliRun(t, nil, "", "cluster", "tls-init", "--out", dir, "--nodes", "node1")
		assertCode(t, r, 1)
		if !strings.Contains(r.stderr, "already exists") {
			t.Errorf("stderr %q does not say the file exists", r.stderr)
		}
		after, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
		if string(before) != string(after) {
			t.Errorf("ca-key.pem changed")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		cases := []struct {
			name string
			args []string
			want string
		}{
			{"missing out", []string{"cluster", "tls-init", "--nodes", "a"}, "--out is required"},
			{"missing nodes", []string{"cluster", "tls-init", "--out", t.TempDir()}, "--nodes is required"},
			{"path in a name", []string{"cluster", "tls-init", "--out", t.TempDir(), "--nodes", "../x"}, "may hold only"},
			{"duplicate name", []string{"cluster", "tls-init", "--out", t.TempDir(), "--nodes", "a,a"}, "appears twice"},
			{"days out of range", []string{"cluster", "tls-init", "--out", t.TempDir(), "--nodes", "a", "--days", "0"}, "--days 0"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := cliRun(t, nil, "", tc.args...)
				if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("exit %d, stderr %q; want a failure that says %q", r.code, r.stderr, tc.want)
				}
			})
		}
	})
}

func TestServer_PlainHTTPAndTLSFlags(t *testing.T) {
	cases := []struct {
		name    string
		o       serverOptions
		wantErr string
	}{
		{"plain HTTP on loopback", serverOptions{httpAddr: "127.0.0.1:8200"}, ""},
		{"plain HTTP on a wildcard", serverOptions{httpAddr: "0.0.0.0:8200"}, "--insecure-plain-http"},
		{"plain HTTP allowed by the operator", serverOptions{httpAddr: ":8200", insecurePlainHTTP: true}, ""},
		{"HTTPS on a wildcard", serverOptions{httpAddr: ":8200", tls: tlsOptions{certFile: "c", keyFile: "k"}}, ""},
		{"certificate without key", serverOptions{httpAddr: "127.0.0.1:8200", tls: tlsOptions{certFile: "c"}}, "--tls-key-file"},
		{"client CA without HTTPS", serverOptions{httpAddr: "127.0.0.1:8200", tls: tlsOptions{clientCAFile: "ca"}}, "needs HTTPS"},
		{"partial cluster TLS", serverOptions{httpAddr: "127.0.0.1:8200", tls: tlsOptions{clusterCAFile: "ca"}}, "all three"},
		{"server name without cluster TLS", serverOptions{httpAddr: "127.0.0.1:8200", tls: tlsOptions{clusterServerName: "x"}}, "needs cluster TLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.nodeID, o.dataDir, o.rootKeyFile = "n", t.TempDir(), "key"
			err := o.applyDefaults()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("applyDefaults: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("applyDefaults: %v, want an error that mentions %q", err, tc.wantErr)
			}
		})
	}
}

func TestServer_DevCreatesClusterTLSOnce(t *testing.T) {
	o := serverOptions{dev: true, nodeID: "dev1", dataDir: t.TempDir(), raftAddr: "127.0.0.1:8201"}
	logger := slog.New(slog.DiscardHandler)
	if err := o.prepareDevTLS(logger); err != nil {
		t.Fatalf("first start: %v", err)
	}
	first, err := os.ReadFile(o.tls.clusterCAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.tls.clusterTLS()
	if err != nil {
		t.Fatalf("load dev cluster TLS: %v", err)
	}
	if cfg.ServerName != clusterServerName || len(cfg.Certificates) != 1 {
		t.Errorf("dev cluster TLS: server name %q, %d certificates", cfg.ServerName, len(cfg.Certificates))
	}
	if key, err := o.tls.gossipKey(); err != nil || len(key) != 32 {
		t.Errorf("dev gossip key: %d bytes, %v", len(key), err)
	}

	again := serverOptions{dev: true, nodeID: "dev1", dataDir: o.dataDir, raftAddr: o.raftAddr}
	if err := again.prepareDevTLS(logger); err != nil {
		t.Fatalf("second start: %v", err)
	}
	second, _ := os.ReadFile(again.tls.clusterCAFile)
	if string(first) != string(second) {
		t.Errorf("the second start replaced the dev CA")
	}
}

// httpsGet fetches url with client, returning the status and body.
func httpsGet(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServer_TLSNodeSnapshotRoundTrip(t *testing.T) {
	// Build first: cliRun points HOME at a temporary folder, which would
	// leave go build without its cache.
	c := &testCluster{t: t, bin: keywardBinary(t)}
	dir := tlsInit(t, "--nodes", "node1", "--clients", "admin")
	file := func(name string) string { return filepath.Join(dir, name) }
	c.rootKey = filepath.Join(t.TempDir(), "root-key")
	if out, err := exec.Command(c.bin, "root-key", "new", c.rootKey).CombinedOutput(); err != nil {
		t.Fatalf("root-key new: %v\n%s", err, out)
	}
	ports := freePorts(t, 3)
	node := &testNode{
		id: "node1", dir: filepath.Join(t.TempDir(), "node1"),
		httpAddr:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		raftAddr:   fmt.Sprintf("127.0.0.1:%d", ports[1]),
		gossipAddr: fmt.Sprintf("127.0.0.1:%d", ports[2]),
	}
	node.args = []string{"server", "--node-id", "node1", "--data-dir", node.dir,
		"--http-addr", node.httpAddr, "--raft-addr", node.raftAddr, "--gossip-addr", node.gossipAddr,
		"--bootstrap-expect", "1", "--root-key-file", c.rootKey,
		"--tls-cert-file", file("node1.pem"), "--tls-key-file", file("node1-key.pem"),
		"--tls-client-ca-file", file("ca.pem"),
		"--cluster-ca-file", file("ca.pem"), "--cluster-cert-file", file("node1.pem"),
		"--cluster-key-file", file("node1-key.pem"), "--cluster-server-name", clusterServerName,
		"--gossip-key-file", file("gossip.key"),
	}
	c.nodes = []*testNode{node}
	c.start(node)
	t.Cleanup(c.stopAll)

	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(file("ca.pem"))
	roots.AppendCertsFromPEM(caPEM)
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	base := "https://" + node.httpAddr
	eventually(t, 30*time.Second, func() string {
		if status, body := httpsGet(t, noCert, base+"/v1/sys/health"); status != http.StatusOK {
			return fmt.Sprintf("health: %d %s", status, body)
		}
		return ""
	})

	env := map[string]string{
		"KEYWARD_ADDR": base, "KEYWARD_CA_FILE": file("ca.pem"),
		"KEYWARD_CLIENT_CERT_FILE": file("admin.pem"), "KEYWARD_CLIENT_KEY_FILE": file("admin-key.pem"),
	}
	if status, _ := httpsGet(t, noCert, base+"/v1/sys/checksum"); status != http.StatusForbidden {
		t.Errorf("system route without a client certificate: %d, want 403", status)
	}
	initRun := cliRun(t, env, "", "init")
	assertCode(t, initRun, 0)
	env["KEYWARD_TOKEN"] = strings.TrimSpace(initRun.stdout)

	if status, body := httpsGet(t, noCert, base+"/metrics"); status != http.StatusOK || !strings.Contains(body, "keyward_staleness_seconds") {
		t.Errorf("/metrics: %d, keyward_staleness_seconds present: %v", status, strings.Contains(body, "keyward_staleness_seconds"))
	}
	members := cliRun(t, env, "", "cluster", "members", "--output", "json")
	assertCode(t, members, 0)
	if !strings.Contains(members.stdout, `"id": "node1"`) {
		t.Errorf("cluster members output lacks node1: %s", members.stdout)
	}

	assertCode(t, cliRun(t, env, "", "vault", "create", "before"), 0)
	checksum := func() string {
		status, body := tlsAdminGet(t, roots, file, base+"/v1/sys/checksum", env["KEYWARD_TOKEN"])
		if status != http.StatusOK {
			t.Fatalf("checksum: %d %s", status, body)
		}
		var s stateSum
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		return s.Checksum
	}
	snap := filepath.Join(t.TempDir(), "backup.snap")
	save := cliRun(t, env, "", "snapshot", "save", snap)
	assertCode(t, save, 0)
	saved := checksum()
	if info, err := os.Stat(snap); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("snapshot file: %v, mode %v, want 0600", err, info.Mode().Perm())
	}

	assertCode(t, cliRun(t, env, "", "vault", "create", "after"), 0)
	if checksum() == saved {
		t.Fatal("state did not change after the snapshot")
	}
	assertCode(t, cliRun(t, env, "", "snapshot", "restore", snap), 0)
	eventually(t, 10*time.Second, func() string {
		if got := checksum(); got != saved {
			return "checksum after restore differs from the saved state"
		}
		return ""
	})
	list := cliRun(t, env, "", "vault", "list")
	if strings.Contains(list.stdout, "after") || !strings.Contains(list.stdout, "before") {
		t.Errorf("vaults after restore:\n%s", list.stdout)
	}
}

// tlsAdminGet sends an admin GET with the admin client certificate.
func tlsAdminGet(t *testing.T, roots *x509.CertPool, file func(string) string, url, token string) (int, string) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(file("admin.pem"), file("admin-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}},
	}}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestCluster_MutualTLSAndGossipKey(t *testing.T) {
	keywardBinary(t)
	dir := tlsInit(t, "--nodes", "shared")
	file := func(name string) string { return filepath.Join(dir, name) }
	// Every node presents the same certificate, which is valid for the
	// shared cluster name, so peers verify that name, not the address.
	c := startCluster(t, 3,
		"--cluster-ca-file", file("ca.pem"), "--cluster-cert-file", file("shared.pem"),
		"--cluster-key-file", file("shared-key.pem"), "--cluster-server-name", clusterServerName,
		"--gossip-key-file", file("gossip.key"))
	leader := c.waitLeader()
	var follower *testNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	f := c.setup(follower)
	c.waitConverged()
	var vault struct {
		ID string `json:"id"`
	}
	c.mustAdmin(leader, http.StatusOK, "GET", "/v1/admin/vaults/"+f.vaultID, nil, &vault)
	if vault.ID != f.vaultID {
		t.Errorf("vault written through %s over mutual TLS is missing on the leader", follower.id)
	}
}
