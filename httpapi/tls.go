package httpapi

import (
	"crypto/tls"
	"errors"
	"strings"
)

// validateTLS checks the fields that depend on TLS.
func (c Config) validateTLS() error {
	if !c.RequireAdminClientCert {
		return nil
	}
	if c.TLS == nil || c.TLS.ClientCAs == nil {
		return errors.New("httpapi: RequireAdminClientCert needs TLS with ClientCAs; set the client CA file or turn the requirement off")
	}
	if c.TLS.ClientAuth == tls.RequireAnyClientCert || c.TLS.ClientAuth == tls.RequireAndVerifyClientCert {
		return errors.New("httpapi: RequireAdminClientCert needs TLS.ClientAuth to leave client certificates optional, because machines connect without one")
	}
	return nil
}

// serverTLS returns the TLS configuration the listener uses. With
// RequireAdminClientCert it requests a certificate from every client and
// verifies one that is sent, but lets a client without one connect. The
// admin routes then check for a verified certificate themselves.
func (c Config) serverTLS() *tls.Config {
	if c.TLS == nil || !c.RequireAdminClientCert {
		return c.TLS
	}
	cfg := c.TLS.Clone()
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	return cfg
}

// needsClientCert reports whether a route pattern is on the part of the
// admin plane that RequireAdminClientCert covers.
func needsClientCert(pattern string) bool {
	if pattern == "/v1/sys/health" {
		return false
	}
	return strings.HasPrefix(pattern, "/v1/admin/") || strings.HasPrefix(pattern, "/v1/sys/")
}

// requireAdminClientCert wraps the routes that needsClientCert names with
// a check for a verified TLS client certificate, when the configuration
// requires one.
func (s *Server) requireAdminClientCert(routes []*route) []*route {
	if !s.cfg.RequireAdminClientCert {
		return routes
	}
	for _, r := range routes {
		if !needsClientCert(r.pattern) {
			continue
		}
		handle := r.handle
		r.handle = func(rc *request) error {
			if err := checkClientCert(rc); err != nil {
				return err
			}
			return handle(rc)
		}
	}
	return routes
}

// checkClientCert fails unless the connection carries a client certificate
// that the TLS layer verified against the client CAs.
func checkClientCert(rc *request) error {
	state := rc.ctx.TLSConnectionState()
	if state == nil || len(state.VerifiedChains) == 0 {
		return fail(ErrForbidden, "This route requires a TLS client certificate signed by the admin client CA")
	}
	return nil
}
