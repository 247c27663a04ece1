package httpapi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/cluster/audit"
	"github.com/keyward/keyward/guard"
)

// Bounds of the configurable sizes.
const (
	// MaxSecretValueBytes is the largest secret value, and the largest JSON
	// encoding of a structured secret's fields.
	MaxSecretValueBytes = 12 << 10

	minBodyBytes       = 32 << 10
	maxBodyBytes       = 16 << 20
	minReadBufferBytes = 4 << 10
	maxReadBufferBytes = 1 << 20
)

// Config sets up a Server. A zero field takes the default that
// DefaultConfig documents, unless the field's comment states another rule.
type Config struct {
	// Addr is the TCP address Start listens on. Default "127.0.0.1:8200".
	Addr string

	// APIURL is the base URL that bootstrap scripts and registration
	// responses tell machines to use, e.g. "https://keyward.example:8200".
	// Empty means the origin that served the request (scheme and Host
	// header).
	APIURL string

	// TLS, when set, serves HTTPS with this configuration. Nil serves plain
	// HTTP.
	TLS *tls.Config

	// RequireAdminClientCert makes every route under /v1/admin/ and
	// /v1/sys/, except GET /v1/sys/health, require a TLS client
	// certificate that TLS.ClientCAs verified. It needs TLS with ClientCAs.
	// New asks for client certificates without requiring them at the TLS
	// layer (tls.VerifyClientCertIfGiven), so machines connect without one.
	RequireAdminClientCert bool

	// MaxSnapshotBytes bounds the body of a snapshot restore, which is read
	// into memory. Only a request with a valid owner token gets this limit;
	// every other request keeps MaxBodyBytes. Default 1 GiB.
	MaxSnapshotBytes int

	// SnapshotTimeout bounds reading a snapshot restore body, writing a
	// saved snapshot and the restore itself. Default 10 min.
	SnapshotTimeout time.Duration

	// NodeID is written into every command this node proposes. Default: the
	// cluster node's id.
	NodeID string

	// TimestampWindow is the allowed difference between X-Timestamp and the
	// server clock, both ways. Default 300 s.
	TimestampWindow time.Duration

	// MaxStaleness is how long this node may go without hearing from a
	// leader before it rejects machine requests with 503. Default 5 s.
	MaxStaleness time.Duration

	// MaxBodyBytes bounds a request body; a larger one gets 413. It must
	// leave room for a 12 KiB secret value in JSON. Default 256 KiB, which
	// fits a grant list of the maximum 10,000 secret ids.
	MaxBodyBytes int

	// ReadBufferSize is fasthttp's per-connection read buffer, which bounds
	// the request line plus headers; larger headers get 431. Default 8 KiB.
	ReadBufferSize int

	// ReadTimeout, WriteTimeout and IdleTimeout bound one request read, one
	// response write and a keep-alive idle period. Defaults 10 s, 10 s, 60 s.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration

	// ApplyTimeout bounds one write through Raft, forwarding included.
	// Default 10 s.
	ApplyTimeout time.Duration

	// LastSeenInterval is how often the node writes the machines'
	// lastSeenAt and lastSeenIp through Raft. Default 1 minute.
	LastSeenInterval time.Duration

	// TrustedProxies are the peers whose X-Forwarded-For is read. Empty
	// means the TCP peer is always the client.
	TrustedProxies []netip.Prefix

	// Dev marks a single-node development server; health reports it.
	Dev bool

	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Lockout sets the failed-authentication lockout per source address.
	// The zero value means guard.DefaultLockoutConfig(). When the cluster
	// node carries a Lockout (cluster.Config.Lockout) the server uses that
	// one, which peers feed, and Lockout only sets Retry-After.
	Lockout guard.LockoutConfig

	// ReplayCache records accepted nonces. Nil uses the cluster node's
	// (cluster.Config.ReplayCache), which peers feed, or creates one for
	// TimestampWindow when the node has none.
	ReplayCache *guard.ReplayCache

	// KeyCache keeps the expanded public keys that signature verification
	// uses. Nil creates one of guard.DefaultKeyCacheBytes.
	KeyCache *guard.KeyCache

	// Verifier verifies the signatures of concurrent requests in batches.
	// Nil creates one of guard.DefaultMaxBatch signatures and one slot per
	// core. Batches need expanded keys, so with a KeyCache of no capacity
	// each signature is verified on its own.
	Verifier *guard.BatchVerifier

	// BlockThrottle sets when repeated guardrail blocks of one machine from
	// one source address are rejected before signature verification. A
	// zero field takes its value from guard.DefaultBlockThrottleConfig().
	BlockThrottle guard.BlockThrottleConfig

	// DisableBlockThrottle verifies the signature of every request, so
	// that each guardrail block costs an Ed25519 verification.
	DisableBlockThrottle bool

	// Auditor receives audit events. Nil logs them at debug level.
	Auditor Auditor

	// Delivery sends webhook test deliveries and sets the address policy of
	// webhook URLs. Nil refuses private targets (loopback is allowed with
	// Dev) and answers test deliveries with 503.
	Delivery *audit.Dispatcher

	// Registry receives the server's metrics and is served on /metrics.
	// Nil creates a registry of the server's own.
	Registry *prometheus.Registry
}

// DefaultConfig returns the defaults that New applies to zero fields.
func DefaultConfig() Config {
	return Config{
		Addr:             "127.0.0.1:8200",
		TimestampWindow:  300 * time.Second,
		MaxStaleness:     5 * time.Second,
		MaxBodyBytes:     256 << 10,
		ReadBufferSize:   8 << 10,
		ReadTimeout:      10 * time.Second,
		WriteTimeout:     10 * time.Second,
		IdleTimeout:      60 * time.Second,
		ApplyTimeout:     10 * time.Second,
		LastSeenInterval: defaultLastSeenInterval,
		MaxSnapshotBytes: 1 << 30,
		SnapshotTimeout:  10 * time.Minute,
		Now:              time.Now,
		Lockout:          guard.DefaultLockoutConfig(),
		BlockThrottle:    guard.DefaultBlockThrottleConfig(),
	}
}

// withDefaults returns c with every zero field set from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	setDuration(&c.TimestampWindow, d.TimestampWindow)
	setDuration(&c.MaxStaleness, d.MaxStaleness)
	setDuration(&c.ReadTimeout, d.ReadTimeout)
	setDuration(&c.WriteTimeout, d.WriteTimeout)
	setDuration(&c.IdleTimeout, d.IdleTimeout)
	setDuration(&c.ApplyTimeout, d.ApplyTimeout)
	setDuration(&c.LastSeenInterval, d.LastSeenInterval)
	setDuration(&c.SnapshotTimeout, d.SnapshotTimeout)
	if c.MaxSnapshotBytes == 0 {
		c.MaxSnapshotBytes = d.MaxSnapshotBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.ReadBufferSize == 0 {
		c.ReadBufferSize = d.ReadBufferSize
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Lockout == (guard.LockoutConfig{}) {
		c.Lockout = d.Lockout
	}
	c.BlockThrottle = c.BlockThrottle.WithDefaults()
	return c
}

func setDuration(field *time.Duration, def time.Duration) {
	if *field == 0 {
		*field = def
	}
}

// Validate returns an error naming the first field that is out of range.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("httpapi: Addr is empty; set a listen address such as 127.0.0.1:8200"))
	}
	if err := validateAPIURL(c.APIURL); err != nil {
		errs = append(errs, err)
	}
	if c.TimestampWindow < time.Second || c.TimestampWindow > time.Hour {
		errs = append(errs, fmt.Errorf("httpapi: TimestampWindow %v is out of range; use 1s to 1h", c.TimestampWindow))
	}
	if c.MaxStaleness <= 0 {
		errs = append(errs, fmt.Errorf("httpapi: MaxStaleness %v must be positive", c.MaxStaleness))
	}
	if c.MaxBodyBytes < minBodyBytes || c.MaxBodyBytes > maxBodyBytes {
		errs = append(errs, fmt.Errorf("httpapi: MaxBodyBytes %d is out of range; use %d to %d",
			c.MaxBodyBytes, minBodyBytes, maxBodyBytes))
	}
	if c.ReadBufferSize < minReadBufferBytes || c.ReadBufferSize > maxReadBufferBytes {
		errs = append(errs, fmt.Errorf("httpapi: ReadBufferSize %d is out of range; use %d to %d",
			c.ReadBufferSize, minReadBufferBytes, maxReadBufferBytes))
	}
	timeouts := []struct {
		name  string
		value time.Duration
	}{
		{"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout},
		{"IdleTimeout", c.IdleTimeout}, {"ApplyTimeout", c.ApplyTimeout},
		{"SnapshotTimeout", c.SnapshotTimeout}, {"LastSeenInterval", c.LastSeenInterval},
	}
	for _, d := range timeouts {
		if d.value <= 0 {
			errs = append(errs, fmt.Errorf("httpapi: %s %v must be positive", d.name, d.value))
		}
	}
	if err := c.validateTLS(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Lockout.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("httpapi: Lockout: %w", err))
	}
	if err := c.BlockThrottle.Validate(); err != nil && !c.DisableBlockThrottle {
		errs = append(errs, fmt.Errorf("httpapi: BlockThrottle: %w", err))
	}
	return errors.Join(errs...)
}

// validateAPIURL accepts an absolute http or https URL without query,
// fragment or user info. The value is pasted into shell and PowerShell
// scripts, so quotes, backslashes, spaces and control bytes are rejected
// too.
func validateAPIURL(raw string) error {
	if raw == "" {
		return nil
	}
	if strings.ContainsAny(raw, "'\"`\\$ ") || strings.ContainsFunc(raw, isControl) {
		return fmt.Errorf("httpapi: APIURL %q contains a quote, backslash, '$', space or control character", raw)
	}

	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("httpapi: APIURL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("httpapi: APIURL %q must start with http:// or https://", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("httpapi: APIURL %q must be scheme://host[:port][/path] without user, query or fragment", raw)
	}
	return nil
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f
}
