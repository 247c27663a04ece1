package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"
)

// DefaultTimeout bounds a whole call (connect, TLS, request and response)
// when no [WithTimeout] or [WithHTTPClient] option is given.
const DefaultTimeout = 30 * time.Second

// DefaultUserAgent is the User-Agent header sent unless [WithUserAgent]
// replaces it.
const DefaultUserAgent = "keyward-client"

// Option configures a [Client] or a [MachineClient].
type Option func(*settings)

// settings is the collected result of the options. The zero value of each
// field means "use the default".
type settings struct {
	token      string
	httpClient *http.Client
	tlsConfig  *tls.Config
	caFile     string
	timeout    time.Duration
	userAgent  string
	now        func() time.Time
	baseURL    string
	idemPrefix string
}

// WithToken sets the admin token sent as "Authorization: Bearer <token>".
// Only [Client] uses it; the machine plane authenticates by signature.
func WithToken(token string) Option {
	return func(s *settings) { s.token = token }
}

// WithHTTPClient makes the client send its requests through hc, unchanged.
// It excludes [WithTLSConfig], [WithCAFile] and [WithTimeout], which
// configure the client that New would otherwise build.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) { s.httpClient = hc }
}

// WithTLSConfig sets the TLS configuration for https base URLs. The config
// is cloned, so later changes by the caller have no effect.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(s *settings) { s.tlsConfig = cfg.Clone() }
}

// WithCAFile trusts the PEM certificates in path, in place of the system
// roots, when verifying the server (for a cluster with its own CA, such as
// the one that "keyward server --dev" creates).
func WithCAFile(path string) Option {
	return func(s *settings) { s.caFile = path }
}

// WithTimeout bounds each call as a whole; zero means [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return func(s *settings) { s.timeout = d }
}

// WithUserAgent replaces [DefaultUserAgent].
func WithUserAgent(ua string) Option {
	return func(s *settings) { s.userAgent = ua }
}

// WithClock sets the clock that a [MachineClient] reads for X-Timestamp.
// Tests use it to sign requests at a chosen instant.
func WithClock(now func() time.Time) Option {
	return func(s *settings) { s.now = now }
}

// WithBaseURL makes a [MachineClient] send to baseURL in place of the
// identity's apiUrl, for example to reach one chosen node of a cluster.
func WithBaseURL(baseURL string) Option {
	return func(s *settings) { s.baseURL = baseURL }
}

func collectSettings(opts []Option) settings {
	var s settings
	for _, opt := range opts {
		opt(&s)
	}
	if s.userAgent == "" {
		s.userAgent = DefaultUserAgent
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// buildHTTPClient returns the *http.Client that the settings describe.
func (s *settings) buildHTTPClient() (*http.Client, error) {
	if s.timeout < 0 {
		return nil, invalidArgf("timeout %s is negative; use a positive duration or zero for the default %s", s.timeout, DefaultTimeout)
	}
	if s.httpClient != nil {
		if s.tlsConfig != nil || s.caFile != "" || s.timeout != 0 {
			return nil, invalidArgf("WithHTTPClient cannot be combined with WithTLSConfig, WithCAFile or WithTimeout; configure the http.Client instead")
		}
		return s.httpClient, nil
	}

	tlsConfig, err := s.buildTLSConfig()
	if err != nil {
		return nil, err
	}

	// A program may have replaced http.DefaultTransport with another
	// RoundTripper; start from a plain transport then.
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment}
	if std, ok := http.DefaultTransport.(*http.Transport); ok {
		transport = std.Clone()
	}
	transport.TLSClientConfig = tlsConfig

	timeout := s.timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}

	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		// A redirect would resend the Bearer token or a signed request to
		// another URL; Keyward never redirects (followers forward writes),
		// so a 3xx is returned to the caller as an error instead.
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

func (s *settings) buildTLSConfig() (*tls.Config, error) {
	cfg := s.tlsConfig
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if s.caFile == "" {
		return cfg, nil
	}

	pemBytes, err := os.ReadFile(s.caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, invalidArgf("CA file %s contains no PEM certificate", s.caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
