package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// clusterServerName is a DNS name that keyward cluster tls-init and --dev
// put in every node certificate. A cluster whose nodes set
// --cluster-server-name to it verifies peers by this name instead of the
// dialled address, so nodes can move to new addresses without new
// certificates.
const clusterServerName = "keyward-cluster"

// certAuthority is a CA certificate with its private key.
type certAuthority struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// newCertAuthority creates a self-signed ECDSA P-256 CA.
func newCertAuthority(name string, validity time.Duration) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Keyward"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &certAuthority{cert: cert, key: key, certPEM: encodePEM("CERTIFICATE", der)}, nil
}

// loadCertAuthority reads a CA certificate and its PKCS#8 key from PEM files.
func loadCertAuthority(certFile, keyFile string) (*certAuthority, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load CA from %s and %s: %w", certFile, keyFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA key in %s is not an ECDSA key", keyFile)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate %s: %w", certFile, err)
	}
	return &certAuthority{cert: cert, key: key, certPEM: encodePEM("CERTIFICATE", pair.Certificate[0])}, nil
}

// keyPEM returns the CA key in PKCS#8 PEM.
func (ca *certAuthority) keyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	return encodePEM("PRIVATE KEY", der), nil
}

// certRole selects the extended key usages of an issued certificate.
type certRole int

const (
	// roleNode certificates serve and dial the cluster port (mutual TLS)
	// and may serve the HTTPS API.
	roleNode certRole = iota
	// roleClient certificates only authenticate a client, such as an
	// operator on the admin plane.
	roleClient
)

// issue creates an ECDSA P-256 key and a certificate signed by the CA for
// name, valid for the hosts (IP addresses and DNS names). It returns the
// certificate and the PKCS#8 key in PEM.
func (ca *certAuthority) issue(name string, hosts []string, role certRole, validity time.Duration) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key for %s: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Keyward"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if role == roleNode {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses, tmpl.DNSNames = splitHosts(hosts)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate for %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key for %s: %w", name, err)
	}
	return encodePEM("CERTIFICATE", der), encodePEM("PRIVATE KEY", keyDER), nil
}

// nodeHosts returns the names a node certificate covers: the node id when
// it is a valid DNS name, the extra hosts, the shared cluster name and
// loopback, without duplicates.
func nodeHosts(nodeID string, extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1", clusterServerName}
	if isDNSName(nodeID) {
		hosts = append(hosts, nodeID)
	}
	for _, h := range extra {
		h = strings.TrimSpace(h)
		if h != "" && !containsString(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func splitHosts(hosts []string) ([]net.IP, []string) {
	var ips []net.IP
	var names []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		names = append(names, h)
	}
	return ips, names
}

// isDNSName reports whether s is a plausible DNS name: labels of letters,
// digits and hyphens, separated by dots.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	return serial, nil
}

func encodePEM(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// newGossipKeyText returns a new random 32-byte gossip key in standard
// base64 with a trailing newline, the format of --gossip-key-file.
func newGossipKeyText() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate gossip key: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(key) + "\n"), nil
}

// readGossipKeyFile reads a gossip key: one line of standard base64 that
// decodes to 16, 24 or 32 bytes.
func readGossipKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --gossip-key-file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("--gossip-key-file %s is not standard base64: %w", path, err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("--gossip-key-file %s decodes to %d bytes; use a key of 16, 24 or 32 bytes (keyward cluster tls-init writes one)", path, len(key))
}

// writeNewFile writes data to path with mode, and fails when path exists,
// so that keys are never overwritten by accident.
func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; move it away or choose another --out folder", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
