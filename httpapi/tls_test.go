package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/guard/geo"
)

// testCA is a CA made in the test, with helpers to issue certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for 127.0.0.1 with the given key usage.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLS_AdminPlaneRequiresClientCertificate(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	ca := newTestCA(t)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)}, ClientCAs: ca.pool}
	cfg.RequireAdminClientCert = true
	srv, err := New(cfg, e.node, e.sm, e.keyring, geo.NewEmbedded(), testLogger())
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(t.Context()) })
	base := "https://" + srv.Addr()

	withCert := ca.issue(t, "operator", x509.ExtKeyUsageClientAuth)
	otherCA := newTestCA(t)
	foreign := otherCA.issue(t, "intruder", x509.ExtKeyUsageClientAuth)
	clientWith := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: certs},
		}}
	}
	do := func(t *testing.T, c *http.Client, method, path string, headers []header) (int, error) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			req.Header.Set(h.name, h.value)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	bearer := []header{{"Authorization", "Bearer " + e.root}}

	cases := []struct {
		name    string
		client  *http.Client
		path    string
		headers func() []header
		want    int
	}{
		{"health needs no certificate", clientWith(), "/v1/sys/health", func() []header { return nil }, http.StatusOK},
		{"admin route without a certificate", clientWith(), "/v1/admin/vaults", func() []header { return bearer }, http.StatusForbidden},
		{"system route without a certificate", clientWith(), "/v1/sys/cluster", func() []header { return bearer }, http.StatusForbidden},
		{"admin route with a certificate", clientWith(withCert), "/v1/admin/vaults", func() []header { return bearer }, http.StatusOK},
		{"system route with a certificate", clientWith(withCert), "/v1/sys/cluster", func() []header { return bearer }, http.StatusOK},
		{"machine plane without a certificate", clientWith(), "/v1/secret/" + f.secret, func() []header {
			return m.signedHeaders("GET", "/v1/secret/"+f.secret, nil, e.clock.Now().Unix())
		}, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := do(t, tc.client, "GET", tc.path, tc.headers())
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			if got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}

	t.Run("a certificate from another CA fails the handshake", func(t *testing.T) {
		_, err := do(t, clientWith(foreign), "GET", "/v1/sys/health", nil)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("request with a foreign certificate: %v, want a TLS certificate error", err)
		}
	})
}

func TestTLS_ConfigValidation(t *testing.T) {
	ca := newTestCA(t)
	cases := map[string]Config{
		"client certificates without TLS": {RequireAdminClientCert: true},
		"client certificates without a client CA": {
			RequireAdminClientCert: true,
			TLS:                    &tls.Config{},
		},
		"client certificates required at the TLS layer": {
			RequireAdminClientCert: true,
			TLS:                    &tls.Config{ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert},
		},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if err := cfg.withDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "RequireAdminClientCert") {
				t.Errorf("Validate() = %v, want an error naming RequireAdminClientCert", err)
			}
		})
	}
}
