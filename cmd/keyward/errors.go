package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/keyward/keyward/httpapi/client"
)

// usageError marks a command-line mistake (unknown command or flag, wrong
// arguments, conflicting flags). It exits with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func isUsageError(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// hintedError carries hints chosen where the error happened, which know
// more than the generic ones of hintsFor.
type hintedError struct {
	err   error
	hints []string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

func withHints(err error, hints ...string) error {
	if err == nil {
		return nil
	}
	return &hintedError{err: err, hints: hints}
}

// printError writes err and its hints to w.
func printError(w io.Writer, err error, g *globalOptions) {
	fmt.Fprintf(w, "keyward: error: %v\n", err)
	for _, hint := range hintsFor(err, g) {
		fmt.Fprintf(w, "keyward: hint: %s\n", hint)
	}
}

// hintsFor returns the hints of err: those attached with withHints, else
// generic ones derived from the kind of failure.
func hintsFor(err error, g *globalOptions) []string {
	var hinted *hintedError
	if errors.As(err, &hinted) {
		return hinted.hints
	}
	if isUsageError(err) {
		return []string{"run `keyward --help` or `keyward COMMAND --help` to see the usage"}
	}
	if hint := transportHint(err, g); hint != "" {
		return []string{hint}
	}
	if hint := statusHint(err); hint != "" {
		return []string{hint}
	}
	return nil
}

// transportHint explains failures to reach or trust the server.
func transportHint(err error, g *globalOptions) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		if dialled := dialledBase(err); dialled != "" && dialled != strings.TrimRight(g.addr, "/") {
			// Machine commands dial the apiUrl of the identity, not --addr.
			return fmt.Sprintf("no Keyward server is listening at %s, the API URL this command used; "+
				"pass --addr with the URL of another node", dialled)
		}
		return fmt.Sprintf("no Keyward server is listening at %s; set --addr or KEYWARD_ADDR, or start one with `keyward server --dev`", g.addr)
	case errors.As(err, &unknownCA):
		return "the server's TLS certificate is signed by an unknown CA; pass the cluster CA with --ca-file"
	case errors.As(err, &hostname):
		return "the server's TLS certificate does not name the host in --addr; use the name or address the certificate was issued for"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("the host in --addr %s cannot be resolved", g.addr)
	}
	return ""
}

// dialledBase returns the scheme and host of the URL that err failed on,
// or "" when err carries no URL.
func dialledBase(err error) string {
	var urlErr *url.Error
	if !errors.As(err, &urlErr) {
		return ""
	}
	u, parseErr := url.Parse(urlErr.URL)
	if parseErr != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// statusHint explains an API status in operator terms.
func statusHint(err error) string {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Code == "commit_indeterminate" {
		return "the outcome of this write is unknown: it may still be applied; check the current state before repeating it"
	}
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		return "the admin token is missing, unknown or expired; check --token, --token-file or KEYWARD_TOKEN"
	case errors.Is(err, client.ErrForbidden):
		return "the token's role or vault scope does not allow this operation"
	case errors.Is(err, client.ErrNotFound):
		return "check the ids; the list subcommands (for example `keyward machine list --vault V`) show them"
	case errors.Is(err, client.ErrUnavailable):
		return "the node cannot serve this now (no leader, or out of contact with it); retry, or use another node"
	case errors.Is(err, client.ErrRateLimited):
		return "too many failed attempts from this address; wait and retry"
	}
	return ""
}
