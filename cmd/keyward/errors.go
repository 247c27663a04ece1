package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

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

// printError writes err and its hints to w. cmd is the command that
// failed, or nil when none was found.
func printError(w io.Writer, err error, g *globalOptions, cmd *cobra.Command) {
	fmt.Fprintf(w, "keyward: error: %s\n", userMessage(err))
	for _, hint := range hintsFor(err, g, cmd) {
		fmt.Fprintf(w, "keyward: hint: %s\n", hint)
	}
}

// packageNames are the names of Keyward's packages that start the text of
// their sentinel errors, such as "client: not found". They help in logs but
// mean nothing to a CLI user.
var packageNames = []string{"audit", "bench", "client", "cluster", "fsm", "geo", "guard", "httpapi", "seal"}

// userMessage returns the text of err without the package names that
// start it or one of its ": "-separated parts. The error chain keeps them,
// so errors.Is still matches.
func userMessage(err error) string {
	parts := strings.Split(err.Error(), ": ")
	kept := parts[:0]
	for i, part := range parts {
		if i < len(parts)-1 && slices.Contains(packageNames, part) {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, ": ")
}

// hintsFor returns the hints of err: those attached with withHints, else
// generic ones derived from the kind of failure and the command.
func hintsFor(err error, g *globalOptions, cmd *cobra.Command) []string {
	var hinted *hintedError
	if errors.As(err, &hinted) {
		return hinted.hints
	}
	if isUsageError(err) {
		return []string{"run `keyward --help` or `keyward COMMAND --help` to see the usage"}
	}
	if hint := addrHint(err, g); hint != "" {
		return []string{hint}
	}
	if hint := transportHint(err, g); hint != "" {
		return []string{hint}
	}
	if hint := statusHint(err, g, cmd); hint != "" {
		return []string{hint}
	}
	return nil
}

// addrHint explains an --addr value that the client rejected as a base URL,
// which is most often an address given without http:// or https://.
func addrHint(err error, g *globalOptions) string {
	if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), fmt.Sprintf("base URL %q", g.addr)) {
		return ""
	}
	if !strings.Contains(g.addr, "://") {
		return fmt.Sprintf("--addr (or KEYWARD_ADDR) %q has no scheme; add http:// or https://, for example http://%s", g.addr, g.addr)
	}
	return fmt.Sprintf("--addr (or KEYWARD_ADDR) must be an http:// or https:// URL with a host, such as %s", defaultAddr())
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
func statusHint(err error, g *globalOptions, cmd *cobra.Command) string {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Code == "commit_indeterminate" {
		if g.idempotencyKey != "" {
			return "the outcome of this write is unknown: it may still be applied; repeat the same command with " +
				"--idempotency-key " + g.idempotencyKey + " and it takes effect at most once"
		}
		return "the outcome of this write is unknown: it may still be applied; check the current state before repeating it"
	}
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		return "the admin token is missing, unknown or expired; check --token, --token-file or KEYWARD_TOKEN"
	case errors.Is(err, client.ErrForbidden):
		return "the token's role or vault scope does not allow this operation"
	case errors.Is(err, client.ErrNotFound):
		return notFoundHint(cmd)
	case errors.Is(err, client.ErrUnavailable):
		return "the node cannot serve this now (no leader, or out of contact with it); retry, or use another node"
	case errors.Is(err, client.ErrRateLimited):
		return "too many failed attempts from this address; wait and retry"
	}
	return ""
}

// notFoundHints name, for the commands under each top-level command, the
// commands that list the ids they take.
var notFoundHints = map[string]string{
	"admin-token":     "check the token id; `keyward admin-token list` shows the admin tokens",
	"alerts":          "check the vault id; `keyward vault list` shows the vaults",
	"audit":           "check the vault id; `keyward vault list` shows the vaults",
	"bootstrap-token": vaultScopedHint("bootstrap-token list --vault V", "bootstrap tokens"),
	"cluster":         "check the node id; `keyward cluster members` shows the members of the cluster",
	"enrollment":      vaultScopedHint("enrollment list --vault V", "enrollment tokens"),
	"get":             "check the secret id; `keyward secrets` shows the secrets this machine may read",
	"machine":         vaultScopedHint("machine list --vault V", "machines"),
	"project":         vaultScopedHint("project list --vault V", "projects"),
	"secret": "check the ids; `keyward project list --vault V` shows the projects of a vault, " +
		"and `keyward secret list --vault V --project P` the secrets of a project",
	"temp":    vaultScopedHint("temp list --vault V", "temporary-machine tokens"),
	"vault":   "check the vault id; `keyward vault list` shows the vaults",
	"webhook": vaultScopedHint("webhook list --vault V", "webhooks"),
}

// vaultScopedHint is the not-found hint of commands that take a vault id
// and ids of objects inside the vault.
func vaultScopedHint(list, objects string) string {
	return "check the ids; `keyward vault list` shows the vaults, and `keyward " + list + "` the " + objects
}

// notFoundHint returns the hint of a 404 for cmd: the list command of the
// kind of object that cmd takes, or a generic hint.
func notFoundHint(cmd *cobra.Command) string {
	if cmd != nil {
		// CommandPath is "keyward GROUP SUBCOMMAND…".
		if words := strings.Fields(cmd.CommandPath()); len(words) > 1 {
			if hint, ok := notFoundHints[words[1]]; ok {
				return hint
			}
		}
	}
	return "check the ids; the list subcommands (for example `keyward vault list`) show them"
}
