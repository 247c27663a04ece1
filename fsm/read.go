package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/keyward/keyward/guard"
)

// The read API. Every method is safe for concurrent use with Apply and
// Restore and reads memory only, except SecretVersions. Returned pointers
// refer to immutable shared objects: callers must not modify them.

// Machine returns the entry of a machine.
func (f *FSM) Machine(id MachineID) (*MachineEntry, bool) {
	return f.idx.Load().machines.get(id)
}

// Machines returns the machines of a vault sorted by RegisteredAt, then ID.
// It reads the vault's machine index from the store and does not add the
// machines it reads to the cache. After Close it returns nil.
func (f *FSM) Machines(vault VaultID) []*MachineEntry {
	ix := f.idx.Load()
	var ids []MachineID
	var err error
	if !f.st.read(func(db *pebble.DB) { ids, err = machineIDsInVault(db, vault) }) {
		return nil
	}
	if err != nil {
		f.log.Error("list machines failed", "vault_id", vault, "error", err)
		return nil
	}
	out := make([]*MachineEntry, 0, len(ids))
	for _, id := range ids {
		if e, ok := ix.machines.peek(id); ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *MachineEntry) int {
		if a.Machine.RegisteredAt != b.Machine.RegisteredAt {
			return compareInt64(a.Machine.RegisteredAt, b.Machine.RegisteredAt)
		}
		return strings.Compare(string(a.Machine.ID), string(b.Machine.ID))
	})
	return out
}

// MachinesExpiringBy returns the machines of every vault that have an
// expiry at or before atMs (Unix milliseconds) and are neither expired nor
// revoked, in expiry order, then by ID. The expiry sweep and the expiry
// warnings use it, so their cost follows the machines due rather than all
// machines. After Close it returns nil.
func (f *FSM) MachinesExpiringBy(atMs int64) []*MachineEntry {
	ix := f.idx.Load()
	var ids []MachineID
	var err error
	ok := f.st.read(func(db *pebble.DB) {
		err = scanIDs(db, prefixMachineExpiry, machineExpiryBound(atMs), func(id string) bool {
			ids = append(ids, MachineID(id))
			return true
		})
	})
	if !ok {
		return nil
	}
	if err != nil {
		f.log.Error("list expiring machines failed", "error", err)
		return nil
	}
	out := make([]*MachineEntry, 0, len(ids))
	for _, id := range ids {
		e, ok := ix.machines.peek(id)
		// The index and the cache are read at different moments, so an
		// entry changed in between is checked again.
		if ok && machineExpiryKey(&e.Machine) != "" && e.Machine.ExpiresAt <= atMs {
			out = append(out, e)
		}
	}
	return out
}

// Vault returns a vault.
func (f *FSM) Vault(id VaultID) (*Vault, bool) {
	v, ok := f.idx.Load().vaults.get(id)
	if !ok {
		return nil, false
	}
	return v.vault, true
}

// Vaults returns every vault sorted by ID.
func (f *FSM) Vaults() []*Vault {
	entries := f.idx.Load().vaults.values()
	out := make([]*Vault, len(entries))
	for i, e := range entries {
		out[i] = e.vault
	}
	slices.SortFunc(out, func(a, b *Vault) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// VaultAllowlist returns the compiled IP allowlist of a vault, or nil when
// the vault is unknown or its allowlist is disabled.
func (f *FSM) VaultAllowlist(id VaultID) *guard.Allowlist {
	v, ok := f.idx.Load().vaults.get(id)
	if !ok {
		return nil
	}
	return v.allowlist
}

// Project returns a project.
func (f *FSM) Project(id ProjectID) (*Project, bool) {
	return f.idx.Load().projects.get(id)
}

// Projects returns the projects of a vault sorted by ID.
func (f *FSM) Projects(vault VaultID) []*Project {
	ix := f.idx.Load()
	ids := members(&ix.listMu, ix.projectsByVault, vault)
	slices.Sort(ids)
	out := make([]*Project, 0, len(ids))
	for _, id := range ids {
		if p, ok := ix.projects.get(id); ok {
			out = append(out, p)
		}
	}
	return out
}

// Secret returns a secret's metadata.
func (f *FSM) Secret(id SecretID) (*Secret, bool) {
	s, ok := f.idx.Load().secrets.get(id)
	if !ok {
		return nil, false
	}
	return s.meta, true
}

// Secrets returns the secrets of a project sorted by ID.
func (f *FSM) Secrets(project ProjectID) []*Secret {
	ix := f.idx.Load()
	ids := members(&ix.listMu, ix.secretsByProject, project)
	slices.Sort(ids)
	out := make([]*Secret, 0, len(ids))
	for _, id := range ids {
		if s, ok := ix.secrets.get(id); ok {
			out = append(out, s.meta)
		}
	}
	return out
}

// SecretValue decrypts the current version of a secret. The caller owns
// the returned plaintext and should clear it once written out.
func (f *FSM) SecretValue(id SecretID) ([]byte, error) {
	return f.AppendSecretValue(nil, id)
}

// AppendSecretValue decrypts the current version of a secret and appends
// it to dst. The first read of a version unwraps its keys and keeps them
// with the index entry. Later reads decrypt only, and do not allocate when
// dst has room for the value. The caller owns the plaintext and should
// clear it once written out.
func (f *FSM) AppendSecretValue(dst []byte, id SecretID) ([]byte, error) {
	s, ok := f.idx.Load().secrets.get(id)
	if !ok {
		return dst, fmt.Errorf("%w: secret %s", ErrNotFound, id)
	}
	if f.cfg.Keyring == nil {
		return dst, ErrNoKeyring
	}
	opener := s.opener.Load()
	if opener == nil {
		var err error
		opener, err = f.cfg.Keyring.NewOpener(s.projectKey, string(id), s.current)
		if err != nil {
			return dst, fmt.Errorf("open secret %s version %d: %w", id, s.meta.Version, err)
		}
		// Concurrent first reads may each build one, and any of them will do.
		s.opener.Store(opener)
	}
	out, err := opener.AppendOpen(dst)
	if err != nil {
		return dst, fmt.Errorf("open secret %s version %d: %w", id, s.meta.Version, err)
	}
	return out, nil
}

// SecretVersions returns every stored version of a secret, oldest first,
// read from a consistent Pebble snapshot. Values stay sealed.
func (f *FSM) SecretVersions(id SecretID) ([]SecretVersion, error) {
	if _, ok := f.idx.Load().secrets.get(id); !ok {
		return nil, fmt.Errorf("%w: secret %s", ErrNotFound, id)
	}
	if f.closed.Load() {
		return nil, errClosed
	}
	snap := f.db.NewSnapshot()
	defer snap.Close()

	var out []SecretVersion
	err := scanPrefix(snap, secretVersionPrefix(id), func(key, value []byte) error {
		var v SecretVersion
		if err := json.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AdminTokenByHash returns the admin token with a SHA-256 hash (lower-case
// hex). The map lookup is keyed by the hash, which is not secret.
func (f *FSM) AdminTokenByHash(hash string) (*AdminToken, bool) {
	return f.idx.Load().adminTokens.get(hash)
}

// AdminTokens returns every admin token, revoked ones included, sorted by
// id.
func (f *FSM) AdminTokens() []*AdminToken {
	out := f.idx.Load().adminTokens.values()
	slices.SortFunc(out, func(a, b *AdminToken) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// BootstrapTokenByHash returns the bootstrap token with a SHA-256 hash. It
// reads the store: tokens are not held in memory. After Close, or when the
// record cannot be read, it reports the token as not found.
func (f *FSM) BootstrapTokenByHash(hash string) (*BootstrapToken, bool) {
	var tok BootstrapToken
	var found bool
	var err error
	f.st.read(func(db *pebble.DB) { found, err = getJSON(db, bootstrapKey(hash), &tok) })
	if err != nil {
		f.log.Error("read bootstrap token failed; the token is treated as unknown", "error", err)
		return nil, false
	}
	if !found {
		return nil, false
	}
	return &tok, true
}

// BootstrapTokens returns the bootstrap tokens of a vault, of kind when
// kind is not empty, sorted by CreatedAt, then ID. It reads the vault's
// btid/ records and each token from the store, and returns nil after
// Close.
func (f *FSM) BootstrapTokens(vault VaultID, kind string) []*BootstrapToken {
	var out []*BootstrapToken
	var err error
	f.st.read(func(db *pebble.DB) { out, err = bootstrapTokensOf(db, vault, kind) })
	if err != nil {
		f.log.Error("list bootstrap tokens failed", "vault_id", vault, "error", err)
		return nil
	}
	slices.SortFunc(out, func(a, b *BootstrapToken) int {
		if a.CreatedAt != b.CreatedAt {
			return compareInt64(a.CreatedAt, b.CreatedAt)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Initialized reports whether the cluster has been initialised.
func (f *FSM) Initialized() bool {
	return f.idx.Load().initialized.Load()
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
