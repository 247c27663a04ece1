package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "keyward test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// nodeCert issues a certificate for 127.0.0.1 usable as server and client.
func (ca *testCA) nodeCert(t *testing.T, name string, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate node key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("create node certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) nodeTLS(t *testing.T, name string, serial int64) *tls.Config {
	t.Helper()
	return &tls.Config{Certificates: []tls.Certificate{ca.nodeCert(t, name, serial)}, RootCAs: ca.pool}
}

// forwardOverTLS sends one forwarding request with client and returns the
// error of reading the reply.
func forwardOverTLS(t *testing.T, target string, client *tls.Config) error {
	t.Helper()
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", target, client)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte{channelForward}); err != nil {
		return err
	}
	req := request{kind: kindApply, hops: 1, origin: "intruder", payload: []byte("{}")}
	if err := writeFrame(conn, req.encode()); err != nil {
		return err
	}
	_, err = readFrame(conn)
	return err
}

func TestCluster_MutualTLS(t *testing.T) {
	ca := newTestCA(t)
	gossipKey := make([]byte, 32)
	rand.Read(gossipKey)

	dir1, dir2 := t.TempDir(), t.TempDir()
	cfg1 := testConfig("tls-1", dir1)
	cfg1.BootstrapExpect = 1
	cfg1.TLS = ca.nodeTLS(t, "tls-1", 2)
	cfg1.GossipKey = gossipKey
	// One voter, so the second node joins as a non-voter.
	cfg1.Voters = 1
	n1 := startNode(t, cfg1, dir1)
	waitLeader(t, n1)

	cfg2 := testConfig("tls-2", dir2)
	cfg2.Join = []string{n1.node.GossipAddr()}
	cfg2.TLS = ca.nodeTLS(t, "tls-2", 3)
	cfg2.GossipKey = gossipKey
	cfg2.Voters = 1
	n2 := startNode(t, cfg2, dir2)

	waitFor(t, 15*time.Second, "second node to join as a non-voter", func() bool {
		_, ok := serverAddr(raftServers(t, n1), "tls-2")
		return ok && n2.node.LeaderID() == "tls-1"
	})
	applyVault(t, n2, 1)
	waitConverged(t, n1, n2)
	for _, m := range n2.node.Members() {
		wantVoter := m.ID == "tls-1"
		if m.Voter != wantVoter || !m.InRaft || !m.Alive {
			t.Errorf("member %+v: want voter=%v, in raft and alive", m, wantVoter)
		}
	}

	t.Run("client without a certificate is refused", func(t *testing.T) {
		err := forwardOverTLS(t, n1.node.RaftAddr(), &tls.Config{RootCAs: ca.pool})
		if err == nil {
			t.Fatalf("forwarding without a client certificate got a reply, want refusal")
		}
	})
	t.Run("client with a certificate from another CA is refused", func(t *testing.T) {
		other := newTestCA(t)
		err := forwardOverTLS(t, n1.node.RaftAddr(), &tls.Config{
			RootCAs:      ca.pool,
			Certificates: []tls.Certificate{other.nodeCert(t, "intruder", 9)},
		})
		if err == nil {
			t.Fatalf("forwarding with a foreign certificate got a reply, want refusal")
		}
	})
	t.Run("client with a cluster certificate is served", func(t *testing.T) {
		err := forwardOverTLS(t, n1.node.RaftAddr(), ca.nodeTLS(t, "operator", 4))
		if err != nil {
			t.Fatalf("forwarding with a cluster certificate: %v", err)
		}
	})
	t.Run("plain TCP is refused", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", n1.node.RaftAddr(), 2*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte{channelForward})
		req := request{kind: kindApply, hops: 1, origin: "plain", payload: []byte("{}")}
		writeFrame(conn, req.encode())
		if _, err := readFrame(conn); err == nil {
			t.Fatalf("plain TCP request got a reply from a TLS node")
		}
	})
}
