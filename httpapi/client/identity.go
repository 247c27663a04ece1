package client

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File names inside a vault's identity folder.
const (
	IdentityFileName   = "identity.json"
	PrivateKeyFileName = "private.pem"
)

// maxIdentityFileBytes bounds how much of an identity or key file is read;
// real files are a few hundred bytes.
const maxIdentityFileBytes = 64 << 10

// Identity is the content of identity.json: who a registered machine is
// and where its private key lies. The same file works with the SikkerKey
// SDKs.
type Identity struct {
	MachineID      string `json:"machineId"`
	MachineName    string `json:"machineName"`
	VaultID        string `json:"vaultId"`
	APIURL         string `json:"apiUrl"`
	PrivateKeyPath string `json:"privateKeyPath"`

	// path is the identity file the value was loaded from or written to.
	path string
}

// Path returns the identity file this identity was loaded from or written
// to; empty for an identity built in memory.
func (id *Identity) Path() string { return id.path }

// LoadIdentity reads and checks an identity.json file.
func LoadIdentity(path string) (*Identity, error) {
	data, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}

	var id Identity
	if err := json.Unmarshal(data, &id); err != nil {
		return nil, fmt.Errorf("identity %s is not valid JSON: %w", path, err)
	}
	id.path = path
	if id.PrivateKeyPath == "" {
		// The served scripts always write the field; a hand-made file may
		// leave it out when the key lies beside it.
		id.PrivateKeyPath = filepath.Join(filepath.Dir(path), PrivateKeyFileName)
	}
	if err := id.check(); err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return &id, nil
}

func (id *Identity) check() error {
	missing := []string{}
	for _, f := range []struct{ name, value string }{
		{"machineId", id.MachineID},
		{"vaultId", id.VaultID},
		{"apiUrl", id.APIURL},
	} {
		if strings.TrimSpace(f.value) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// PrivateKey reads the identity's PKCS#8 PEM private key. A relative
// PrivateKeyPath is taken relative to the identity file's folder.
func (id *Identity) PrivateKey() (ed25519.PrivateKey, error) {
	path := id.PrivateKeyPath
	if !filepath.IsAbs(path) && id.path != "" {
		path = filepath.Join(filepath.Dir(id.path), path)
	}
	data, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return key, nil
}

// ParsePrivateKeyPEM decodes an Ed25519 private key from a PKCS#8 PEM
// block ("-----BEGIN PRIVATE KEY-----"), the form that
// "openssl genpkey -algorithm Ed25519" writes.
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8: %w", err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is a %T, want an Ed25519 key", parsed)
	}
	return key, nil
}

// MarshalPrivateKeyPEM encodes an Ed25519 private key as a PKCS#8 PEM
// block that openssl and the SikkerKey SDKs read.
func MarshalPrivateKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	data, err := io.ReadAll(io.LimitReader(f, maxIdentityFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxIdentityFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxIdentityFileBytes)
	}
	return data, nil
}

// Environment variables that locate identities. The KEYWARD_ names win
// over the SikkerKey ones, which are read so that a host set up for a
// SikkerKey SDK works unchanged.
const (
	EnvKeywardIdentity   = "KEYWARD_IDENTITY"
	EnvKeywardHome       = "KEYWARD_HOME"
	EnvSikkerKeyIdentity = "SIKKERKEY_IDENTITY"
	EnvSikkerKeyHome     = "SIKKERKEY_HOME"
)

// Home returns the folder under which registration writes identities:
// $KEYWARD_HOME, or ~/.keyward when it is unset.
func Home() (string, error) {
	if home := os.Getenv(EnvKeywardHome); home != "" {
		return home, nil
	}
	user, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home folder (set %s): %w", EnvKeywardHome, err)
	}
	return filepath.Join(user, ".keyward"), nil
}

// lookupHome returns the folder searched for identities: $KEYWARD_HOME,
// else $SIKKERKEY_HOME, else ~/.keyward.
func lookupHome() (string, error) {
	if os.Getenv(EnvKeywardHome) == "" {
		if home := os.Getenv(EnvSikkerKeyHome); home != "" {
			return home, nil
		}
	}
	return Home()
}

// VaultDir returns the identity folder of a vault under home.
func VaultDir(home, vaultID string) string {
	return filepath.Join(home, "vaults", vaultID)
}

// IdentitySearch describes where to look for a machine identity. A zero
// field falls back to the environment, as [ResolveIdentity] describes.
type IdentitySearch struct {
	// VaultID selects {home}/vaults/{VaultID}/identity.json.
	VaultID string
	// IdentityPath is a path to identity.json; empty means
	// $KEYWARD_IDENTITY, then $SIKKERKEY_IDENTITY.
	IdentityPath string
	// Home is the folder that holds vaults/; empty means $KEYWARD_HOME,
	// then $SIKKERKEY_HOME, then ~/.keyward.
	Home string
}

// ResolveIdentity finds the identity file to use, in this order:
//  1. with a vaultID, {home}/vaults/{vaultID}/identity.json;
//  2. $KEYWARD_IDENTITY, then $SIKKERKEY_IDENTITY (a path to identity.json);
//  3. the only {home}/vaults/*/identity.json.
//
// home is $KEYWARD_HOME, else $SIKKERKEY_HOME, else ~/.keyward. It returns
// ErrNoIdentity when nothing is found and ErrAmbiguousIdentity when step 3
// finds several vaults.
func ResolveIdentity(vaultID string) (string, error) {
	return IdentitySearch{VaultID: vaultID}.Resolve()
}

// Resolve finds the identity file in the order of [ResolveIdentity], with
// the fields of s in place of the environment where they are set.
func (s IdentitySearch) Resolve() (string, error) {
	home := s.Home
	if home == "" {
		var err error
		if home, err = lookupHome(); err != nil {
			return "", err
		}
	}

	if s.VaultID != "" {
		if !isSafeSegment(s.VaultID) {
			return "", invalidArgf("vault id %q contains characters that cannot name a folder", s.VaultID)
		}
		path := filepath.Join(VaultDir(home, s.VaultID), IdentityFileName)
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%w for vault %s at %s: %v", ErrNoIdentity, s.VaultID, path, err)
		}
		return path, nil
	}

	if s.IdentityPath != "" {
		return s.IdentityPath, nil
	}
	for _, env := range []string{EnvKeywardIdentity, EnvSikkerKeyIdentity} {
		if path := os.Getenv(env); path != "" {
			return path, nil
		}
	}
	return findOnlyIdentity(home)
}

func findOnlyIdentity(home string) (string, error) {
	vaultsDir := filepath.Join(home, "vaults")
	entries, err := os.ReadDir(vaultsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("list %s: %w", vaultsDir, err)
	}

	var found []string
	for _, e := range entries {
		path := filepath.Join(vaultsDir, e.Name(), IdentityFileName)
		if _, err := os.Stat(path); err == nil {
			found = append(found, e.Name())
		}
	}
	sort.Strings(found)

	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w under %s", ErrNoIdentity, vaultsDir)
	case 1:
		return filepath.Join(vaultsDir, found[0], IdentityFileName), nil
	}
	return "", fmt.Errorf("%w under %s (vaults %s); choose one vault", ErrAmbiguousIdentity, vaultsDir, strings.Join(found, ", "))
}

// isSafeSegment reports whether s can be used as one folder name taken
// from a server or a user: letters, digits, '_' and '-', at most 128 bytes.
func isSafeSegment(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}
