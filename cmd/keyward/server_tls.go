package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/httpapi"
)

// tlsOptions are the transport security flags of `keyward server`.
type tlsOptions struct {
	certFile          string
	keyFile           string
	clientCAFile      string
	clusterCAFile     string
	clusterCertFile   string
	clusterKeyFile    string
	clusterServerName string
	gossipKeyFile     string
}

func (t *tlsOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&t.certFile, "tls-cert-file", "", "PEM certificate (chain) for the HTTPS API; with --tls-key-file the API serves HTTPS.")
	f.StringVar(&t.keyFile, "tls-key-file", "", "PEM private key of --tls-cert-file.")
	f.StringVar(&t.clientCAFile, "tls-client-ca-file", "", "PEM CA certificates; when set, /v1/admin and /v1/sys routes (except health) require a client certificate signed by them.")
	f.StringVar(&t.clusterCAFile, "cluster-ca-file", "", "PEM CA certificates that sign every node's cluster certificate; turns on mutual TLS for Raft and forwarding.")
	f.StringVar(&t.clusterCertFile, "cluster-cert-file", "", "PEM certificate of this node for the cluster port (needs server and client key usage).")
	f.StringVar(&t.clusterKeyFile, "cluster-key-file", "", "PEM private key of --cluster-cert-file.")
	f.StringVar(&t.clusterServerName, "cluster-server-name", "", "Name every peer certificate must carry, in place of the dialled address (tls-init adds "+clusterServerName+").")
	f.StringVar(&t.gossipKeyFile, "gossip-key-file", "", "File with the memberlist encryption key: standard base64 of 16, 24 or 32 bytes (tls-init writes gossip.key).")
}

// apiTLSEnabled reports whether the API serves HTTPS.
func (t *tlsOptions) apiTLSEnabled() bool { return t.certFile != "" }

// validate checks that files that belong together are given together.
func (t *tlsOptions) validate() error {
	if (t.certFile == "") != (t.keyFile == "") {
		return usageErrorf("--tls-cert-file and --tls-key-file go together; set both or neither")
	}
	if t.clientCAFile != "" && t.certFile == "" {
		return usageErrorf("--tls-client-ca-file needs HTTPS; set --tls-cert-file and --tls-key-file too")
	}
	cluster := []string{t.clusterCAFile, t.clusterCertFile, t.clusterKeyFile}
	set := 0
	for _, v := range cluster {
		if v != "" {
			set++
		}
	}
	if set != 0 && set != len(cluster) {
		return usageErrorf("--cluster-ca-file, --cluster-cert-file and --cluster-key-file go together; set all three or none")
	}
	if t.clusterServerName != "" && set == 0 {
		return usageErrorf("--cluster-server-name needs cluster TLS; set --cluster-ca-file, --cluster-cert-file and --cluster-key-file")
	}
	return nil
}

// apiTLS returns the HTTPS configuration, or nil for plain HTTP, and
// whether admin routes require a client certificate.
func (t *tlsOptions) apiTLS() (*tls.Config, bool, error) {
	if t.certFile == "" {
		return nil, false, nil
	}
	pair, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
	if err != nil {
		return nil, false, fmt.Errorf("load --tls-cert-file %s and --tls-key-file %s: %w", t.certFile, t.keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if t.clientCAFile == "" {
		return cfg, false, nil
	}
	pool, err := readCertPool("--tls-client-ca-file", t.clientCAFile)
	if err != nil {
		return nil, false, err
	}
	cfg.ClientCAs = pool
	return cfg, true, nil
}

// clusterTLS returns the mutual TLS configuration of the cluster port, or
// nil when cluster TLS is off.
func (t *tlsOptions) clusterTLS() (*tls.Config, error) {
	if t.clusterCAFile == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(t.clusterCertFile, t.clusterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load --cluster-cert-file %s and --cluster-key-file %s: %w", t.clusterCertFile, t.clusterKeyFile, err)
	}
	pool, err := readCertPool("--cluster-ca-file", t.clusterCAFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		ServerName:   t.clusterServerName,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// gossipKey returns the memberlist key, or nil when none is configured.
func (t *tlsOptions) gossipKey() ([]byte, error) {
	if t.gossipKeyFile == "" {
		return nil, nil
	}
	return readGossipKeyFile(t.gossipKeyFile)
}

func readCertPool(flag, path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s %s contains no PEM certificate; give a file with one or more PEM certificates", flag, path)
	}
	return pool, nil
}

// devTLSDir is the folder under the data dir where --dev keeps its cluster
// CA, node certificate and gossip key.
const devTLSDir = "tls"

// prepareDevTLS makes a --dev node use a self-signed CA, a node
// certificate and a gossip key under <data-dir>/tls for the cluster port,
// creating them on the first start and reusing them afterwards. Flags the
// operator set explicitly win. A dev node that joins others gets none,
// because each dev node's CA is its own and peers would reject it.
func (o *serverOptions) prepareDevTLS(logger *slog.Logger) error {
	t := &o.tls
	if !o.dev || t.clusterCAFile != "" {
		return nil
	}
	if len(o.join) > 0 {
		logger.Warn("dev node joins others: the cluster port stays plain TCP; give every node the same --cluster-ca-file, --cluster-cert-file and --cluster-key-file to secure it")
		return nil
	}
	dir := filepath.Join(o.dataDir, devTLSDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	files := devTLSFiles{dir: dir}
	if err := files.ensure(o.nodeID, o.raftHosts()); err != nil {
		return err
	}
	t.clusterCAFile, t.clusterCertFile, t.clusterKeyFile = files.path("ca.pem"), files.path("node.pem"), files.path("node-key.pem")
	t.clusterServerName = clusterServerName
	if t.gossipKeyFile == "" {
		t.gossipKeyFile = files.path("gossip.key")
	}
	logger.Info("dev cluster transport uses mutual TLS", "tls_dir", dir)
	return nil
}

// raftHosts returns the hosts of the Raft addresses, for the dev node
// certificate.
func (o *serverOptions) raftHosts() []string {
	var hosts []string
	for _, addr := range []string{o.raftAddr, o.raftAdvertise} {
		if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
			hosts = append(hosts, host)
		}
	}
	return hosts
}

// devTLSFiles are the files of --dev's cluster TLS.
type devTLSFiles struct{ dir string }

func (d devTLSFiles) path(name string) string { return filepath.Join(d.dir, name) }

// ensure creates the CA, the node certificate and the gossip key when they
// are missing. A missing node certificate is issued by the existing CA.
func (d devTLSFiles) ensure(nodeID string, hosts []string) error {
	ca, err := d.ensureCA()
	if err != nil {
		return err
	}
	if !fileExists(d.path("node.pem")) {
		certPEM, keyPEM, err := ca.issue(nodeID, nodeHosts(nodeID, hosts), roleNode, 10*365*24*time.Hour)
		if err != nil {
			return err
		}
		if err := os.WriteFile(d.path("node-key.pem"), keyPEM, 0o600); err != nil {
			return fmt.Errorf("write dev node key: %w", err)
		}
		if err := os.WriteFile(d.path("node.pem"), certPEM, 0o644); err != nil {
			return fmt.Errorf("write dev node certificate: %w", err)
		}
	}
	if !fileExists(d.path("gossip.key")) {
		key, err := newGossipKeyText()
		if err != nil {
			return err
		}
		if err := os.WriteFile(d.path("gossip.key"), key, 0o600); err != nil {
			return fmt.Errorf("write dev gossip key: %w", err)
		}
	}
	return nil
}

func (d devTLSFiles) ensureCA() (*certAuthority, error) {
	if fileExists(d.path("ca.pem")) {
		return loadCertAuthority(d.path("ca.pem"), d.path("ca-key.pem"))
	}
	ca, err := newCertAuthority("Keyward dev CA", 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.keyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.path("ca-key.pem"), keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write dev CA key: %w", err)
	}
	if err := os.WriteFile(d.path("ca.pem"), ca.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write dev CA certificate: %w", err)
	}
	return ca, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// secureCluster sets the cluster options of transport security and
// cluster-wide replay protection: mutual TLS, the gossip key, the dead node
// timeout, the nonce log size, and the replay cache and lockout that peers
// feed. The HTTP
// server takes the cache and the lockout from the node, so nonces and
// failures from peers reach the checks of every request.
func (o *serverOptions) secureCluster(cfg *cluster.Config) error {
	var err error
	if cfg.TLS, err = o.tls.clusterTLS(); err != nil {
		return err
	}
	if cfg.GossipKey, err = o.tls.gossipKey(); err != nil {
		return err
	}
	cfg.DeadNodeTimeout = o.deadNodeTimeout
	cfg.NonceLogBytes = o.nonceLogBytes
	cfg.ReplayCache = guard.NewReplayCache(o.timestampWindow)
	cfg.Lockout = guard.NewLockout(guard.DefaultLockoutConfig())
	return nil
}

// secureAPI sets HTTPS and the admin client certificate requirement, and
// registers the node's metrics in the registry that /metrics serves.
func (o *serverOptions) secureAPI(cfg *httpapi.Config, node *cluster.Node) error {
	var err error
	if cfg.TLS, cfg.RequireAdminClientCert, err = o.tls.apiTLS(); err != nil {
		return err
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	for _, c := range node.Collectors() {
		if err := cfg.Registry.Register(c); err != nil {
			return fmt.Errorf("register cluster metrics: %w", err)
		}
	}
	return nil
}
