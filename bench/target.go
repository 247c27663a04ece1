package bench

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

// target is one node's API, reached through a fasthttp HostClient that
// keeps up to maxConns connections open.
type target struct {
	url  string
	host string // Host header value
	hc   *fasthttp.HostClient
	// pc, when set, sends the signed reads with HTTP/1.1 pipelining.
	pc *fasthttp.PipelineClient
}

// doRead sends a signed read through the pipelining client when there is
// one, else through hc.
func (t *target) doRead(req *fasthttp.Request, resp *fasthttp.Response) error {
	if t.pc != nil {
		return t.pc.Do(req, resp)
	}
	return t.hc.Do(req, resp)
}

// pipeline makes t send signed reads with up to depth requests in flight
// on each of conns connections.
func (t *target) pipeline(conns, depth int, timeout time.Duration) {
	t.pc = &fasthttp.PipelineClient{
		Addr:                          t.hc.Addr,
		Name:                          t.hc.Name,
		MaxConns:                      conns,
		MaxPendingRequests:            conns * depth,
		MaxBatchDelay:                 0,
		ReadTimeout:                   timeout,
		WriteTimeout:                  timeout,
		IsTLS:                         t.hc.IsTLS,
		TLSConfig:                     t.hc.TLSConfig,
		DisableHeaderNamesNormalizing: true,
	}
}

// newTarget returns a client for the node at rawURL (http or https).
// caFile, when set, replaces the system roots for https.
func newTarget(rawURL, caFile string, maxConns int, timeout time.Duration) (*target, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: --target %q: %v", ErrInvalidConfig, rawURL, err)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	hc := &fasthttp.HostClient{
		Addr:                          addr,
		Name:                          "keyward-bench",
		MaxConns:                      maxConns,
		ReadTimeout:                   timeout,
		WriteTimeout:                  timeout,
		MaxIdleConnDuration:           time.Minute,
		DisableHeaderNamesNormalizing: true,
	}
	if u.Scheme == "https" {
		cfg, err := tlsConfig(caFile)
		if err != nil {
			return nil, err
		}
		hc.IsTLS = true
		hc.TLSConfig = cfg
	}
	return &target{url: rawURL, host: u.Host, hc: hc}, nil
}

func tlsConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read --ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%w: --ca-file %s contains no PEM certificate", ErrInvalidConfig, caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// newRequest returns a request for method and path on t, with the Host
// header set. The caller owns it.
func (t *target) newRequest(method, path string) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.SetHost(t.host)
	return req
}
