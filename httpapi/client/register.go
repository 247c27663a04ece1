package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RegisterRequest registers a machine with a bootstrap token.
type RegisterRequest struct {
	// APIURL is the API address, for example "https://keyward.example:8200".
	APIURL string
	// Token is the 64-hex-character bootstrap token.
	Token string
	// Temp selects a temporary-machine token; it requires VaultID.
	Temp bool
	// Enroll selects an enrollment token, which registers an ephemeral
	// machine and may be used by many hosts; it requires VaultID.
	Enroll bool
	// VaultID is the vault of a temporary-machine or enrollment token.
	VaultID string
	// Name is the machine name an enrolling host requests; empty means the
	// host name. Other token kinds fix the name on the server.
	Name string
	// Hostname is reported to the server; empty means os.Hostname().
	Hostname string
	// Home is the folder that receives vaults/{vaultId}/; empty means
	// [Home] ($KEYWARD_HOME or ~/.keyward).
	Home string
	// Options configure the HTTP client (TLS trust, timeout, User-Agent).
	Options []Option
}

// Registration is the result of [RegisterMachine].
type Registration struct {
	Identity *Identity
	// ExpiresAt is the expiry of a temporary machine in Unix milliseconds;
	// zero for a machine that does not expire.
	ExpiresAt int64
	// Replaced lists the files of an earlier identity of the same vault
	// that were renamed aside rather than overwritten.
	Replaced []string
}

// registerResponse is the JSON of a successful registration.
type registerResponse struct {
	MachineID   string `json:"machineId"`
	MachineName string `json:"machineName"`
	VaultID     string `json:"vaultId"`
	APIURL      string `json:"apiUrl"`
	ExpiresAt   int64  `json:"expiresAt"`
}

// Register registers this host with a bootstrap token and writes its
// identity, as [RegisterMachine] does, and returns the identity.
func Register(ctx context.Context, apiURL, token string, temp bool, vaultID, hostname string, opts ...Option) (*Identity, error) {
	reg, err := RegisterMachine(ctx, RegisterRequest{
		APIURL:   apiURL,
		Token:    token,
		Temp:     temp,
		VaultID:  vaultID,
		Hostname: hostname,
		Options:  opts,
	})
	if err != nil {
		return nil, err
	}
	return reg.Identity, nil
}

// RegisterMachine generates an Ed25519 keypair in memory, sends only the
// public key to POST /v1/bootstrap/{token}/register (for a temporary
// machine POST /v1/{vaultId}/temp-bootstrap/{token}/register, for an
// enrollment token POST /v1/{vaultId}/enroll/register), and writes
// private.pem (PKCS#8) and identity.json under {home}/vaults/{vaultId}/,
// with folders 0700 and files 0600.
//
// Standard and temp tokens are single-use, so the files are written after
// the server accepted the token. A failure to write them is reported with the new machine
// id, so that an operator can deny that machine. An existing identity of
// the same vault is renamed aside (see Registration.Replaced), never
// overwritten.
func RegisterMachine(ctx context.Context, req RegisterRequest) (*Registration, error) {
	if err := req.fillDefaults(); err != nil {
		return nil, err
	}
	// Fail on an unwritable home before the token is spent.
	if err := os.MkdirAll(filepath.Join(req.Home, "vaults"), 0o700); err != nil {
		return nil, fmt.Errorf("create identity folder: %w", err)
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}

	resp, err := req.send(ctx, pub)
	if err != nil {
		return nil, err
	}
	if err := req.checkResponse(resp); err != nil {
		return nil, fmt.Errorf("register: invalid response for machine %q: %w", resp.MachineID, err)
	}

	id := &Identity{
		MachineID:   resp.MachineID,
		MachineName: resp.MachineName,
		VaultID:     resp.VaultID,
		APIURL:      resp.APIURL,
	}
	if id.APIURL == "" {
		id.APIURL = req.APIURL
	}

	replaced, err := writeIdentity(VaultDir(req.Home, id.VaultID), id, priv)
	if err != nil {
		return nil, fmt.Errorf("machine %s was registered but its identity could not be saved, so deny it: %w", id.MachineID, err)
	}
	return &Registration{Identity: id, ExpiresAt: resp.ExpiresAt, Replaced: replaced}, nil
}

func (req *RegisterRequest) fillDefaults() error {
	if !isBootstrapToken(req.Token) {
		return invalidArgf("bootstrap token must be 64 hexadecimal characters, got %d characters", len(req.Token))
	}
	if req.Temp && req.Enroll {
		return invalidArgf("a token is either a temporary-machine token or an enrollment token, not both")
	}
	if req.Temp && req.VaultID == "" {
		return invalidArgf("a temporary-machine token needs the vault id it was issued for")
	}
	if req.Enroll && req.VaultID == "" {
		return invalidArgf("an enrollment token needs the vault id it was issued for")
	}
	if req.Name != "" && !req.Enroll {
		return invalidArgf("only an enrolling machine chooses its name; the server names machines of other token kinds")
	}
	if req.VaultID != "" && !isSafeSegment(req.VaultID) {
		return invalidArgf("vault id %q may contain only letters, digits, '_' and '-'", req.VaultID)
	}
	if req.Hostname == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("read host name (pass one explicitly): %w", err)
		}
		req.Hostname = host
	}
	if req.Home == "" {
		home, err := Home()
		if err != nil {
			return err
		}
		req.Home = home
	}
	return nil
}

func (req *RegisterRequest) send(ctx context.Context, pub ed25519.PublicKey) (*registerResponse, error) {
	s := collectSettings(req.Options)
	t, err := newTransport(req.APIURL, &s)
	if err != nil {
		return nil, err
	}

	fields := map[string]string{
		"publicKey": base64.StdEncoding.EncodeToString(pub),
		"hostname":  req.Hostname,
	}
	segments := []string{"bootstrap", req.Token, "register"}
	switch {
	case req.Temp:
		segments = []string{req.VaultID, "temp-bootstrap", req.Token, "register"}
	case req.Enroll:
		// The enrollment route takes the token in the body.
		segments = []string{req.VaultID, "enroll", "register"}
		fields["token"] = req.Token
		if req.Name != "" {
			fields["name"] = req.Name
		}
	}
	path, err := routePath(segments...)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}

	httpReq, err := t.newRequest(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	var resp registerResponse
	if err := t.send(httpReq, &resp); err != nil {
		return nil, fmt.Errorf("register: %w", redactToken(err, req.Token))
	}
	return &resp, nil
}

// redactToken hides the bootstrap token in err, because the token is part
// of the request path and error messages end up in terminals and logs.
// The error chain stays intact for errors.Is and errors.As.
func redactToken(err error, token string) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		apiErr.Path = strings.ReplaceAll(apiErr.Path, token, "{token}")
	}
	return &redactedError{err: err, token: token}
}

type redactedError struct {
	err   error
	token string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.token, "{token}")
}

func (e *redactedError) Unwrap() error { return e.err }

// checkResponse validates the fields that become file paths and headers.
func (req *RegisterRequest) checkResponse(a *registerResponse) error {
	if !isUUID(a.MachineID) {
		return fmt.Errorf("machineId %q is not a UUID", a.MachineID)
	}
	if !isSafeSegment(a.VaultID) {
		return fmt.Errorf("vaultId %q cannot name a folder", a.VaultID)
	}
	if req.VaultID != "" && a.VaultID != req.VaultID {
		return fmt.Errorf("vaultId %q differs from the requested vault %q", a.VaultID, req.VaultID)
	}
	if a.APIURL != "" {
		if _, err := parseBaseURL(a.APIURL); err != nil {
			return fmt.Errorf("apiUrl: %w", err)
		}
	}
	return nil
}

// writeIdentity writes private.pem, then identity.json, into dir. The
// identity file comes last, so its presence means a complete identity.
func writeIdentity(dir string, id *Identity, key ed25519.PrivateKey) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// MkdirAll leaves an existing folder's mode alone.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}

	replaced, err := moveAside(dir)
	if err != nil {
		return nil, err
	}

	keyPath, err := filepath.Abs(filepath.Join(dir, PrivateKeyFileName))
	if err != nil {
		return nil, err
	}
	pemBytes, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyPath, pemBytes); err != nil {
		return nil, err
	}

	id.PrivateKeyPath = keyPath
	idJSON, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return nil, err
	}
	id.path = filepath.Join(filepath.Dir(keyPath), IdentityFileName)
	if err := writeFileAtomic(id.path, append(idJSON, '\n')); err != nil {
		return nil, err
	}
	return replaced, nil
}

// moveAside renames an existing identity.json and private.pem in dir to
// "<name>.replaced-<UTC time>", so a second registration keeps the key of
// the first one.
func moveAside(dir string) ([]string, error) {
	suffix := ".replaced-" + time.Now().UTC().Format("20060102T150405.000Z")
	var moved []string
	for _, name := range []string{IdentityFileName, PrivateKeyFileName} {
		path := filepath.Join(dir, name)
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(path, path+suffix); err != nil {
			return moved, fmt.Errorf("keep the earlier %s: %w", name, err)
		}
		moved = append(moved, path+suffix)
	}
	return moved, nil
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same folder and a rename, so a crash leaves either no file
// or a complete one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename

	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func isBootstrapToken(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// isUUID reports whether s is a UUID in its 8-4-4-4-12 text form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexDigit(s[i]) {
				return false
			}
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}
