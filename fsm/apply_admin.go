package fsm

import (
	"slices"

	"github.com/keyward/keyward/fsm/seal"
)

// initRecord is the value stored at keyInit. RootKeyCheck is empty on
// clusters initialised before init carried one (see VerifyRootKey).
type initRecord struct {
	InitializedAt int64  `json:"initializedAt"`
	TokenID       string `json:"tokenId"`
	RootKeyCheck  []byte `json:"rootKeyCheck,omitempty"`
}

// RootTokenName is the name of the owner token created by init.
const RootTokenName = "root"

// applyInit marks the cluster initialised and stores the first owner token
// and the root key check value. It succeeds once; every later init is
// rejected, so two operators racing to initialise cannot both receive an
// owner token. Apply checks only the size of the check value, because
// opening it needs a node's own root key, and a result that differed per
// node would make the replicas diverge.
func applyInit(t *tx, c *Command) (any, error) {
	var p InitPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if t.initialized() {
		return nil, rejectf(ErrAlreadyInitialized, "the cluster is already initialized")
	}
	if err := checkHandle("token id", p.TokenID); err != nil {
		return nil, err
	}
	if err := checkTokenHash("token hash", p.TokenHash); err != nil {
		return nil, err
	}
	if _, exists := t.adminToken(p.TokenHash); exists {
		return nil, rejectf(ErrAlreadyExists, "an admin token with this hash exists")
	}
	if n := len(p.RootKeyCheck); n != 0 && n != seal.RootKeyCheckSize {
		return nil, rejectf(ErrInvalid, "root key check value is %d bytes, want %d", n, seal.RootKeyCheckSize)
	}

	tok := &AdminToken{
		ID:        p.TokenID,
		Hash:      p.TokenHash,
		Name:      RootTokenName,
		Role:      RoleOwner,
		Vaults:    []string{"*"},
		CreatedAt: c.Time,
	}
	t.stage(kindInit, keyInit, "", initRecord{InitializedAt: c.Time, TokenID: p.TokenID, RootKeyCheck: p.RootKeyCheck}, nil)
	t.stage(kindAdminToken, adminTokenKey(tok.Hash), tok.Hash, tok, tok)
	return tok, nil
}

// applyCreateAdminToken stores a new admin token.
func applyCreateAdminToken(t *tx, c *Command) (any, error) {
	var p CreateAdminTokenPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	tok := p.Token
	if err := checkAdminToken(t, &tok, c.Time); err != nil {
		return nil, err
	}
	if _, exists := t.adminToken(tok.Hash); exists {
		return nil, rejectf(ErrAlreadyExists, "an admin token with this hash exists")
	}

	tok.CreatedAt = c.Time
	t.stage(kindAdminToken, adminTokenKey(tok.Hash), tok.Hash, &tok, &tok)
	return &tok, nil
}

// applyRevokeAdminToken revokes an admin token by its public id. The last
// owner token for every vault without an expiry cannot be revoked, because
// no token could then manage tokens. Revoking a revoked token succeeds
// without change.
func applyRevokeAdminToken(t *tx, c *Command) (any, error) {
	var p RevokeAdminTokenPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	tok, ok := t.adminTokenByID(p.ID)
	if !ok {
		return nil, rejectf(ErrNotFound, "admin token %s not found", p.ID)
	}
	if tok.RevokedAt != 0 {
		return tok, nil
	}
	if isRootOwner(tok) && t.rootOwnerCount() == 1 {
		return nil, rejectf(ErrConflict, "admin token %s is the last owner token for every vault without an expiry; "+
			"create another owner token with vaults [\"*\"] and no ttl before revoking it", p.ID)
	}

	revoked := *tok
	revoked.RevokedAt = c.Time
	t.stage(kindAdminToken, adminTokenKey(revoked.Hash), revoked.Hash, &revoked, &revoked)
	return &revoked, nil
}

// isRootOwner reports whether tok is an unrevoked owner token for every
// vault that never expires. A token with an expiry does not count, because
// once it expires no token may be left to manage tokens.
func isRootOwner(tok *AdminToken) bool {
	return tok.RevokedAt == 0 && tok.ExpiresAt == 0 && tok.Role == RoleOwner && slices.Equal(tok.Vaults, []string{"*"})
}

func checkAdminToken(t *tx, tok *AdminToken, now int64) error {
	if err := checkHandle("token id", tok.ID); err != nil {
		return err
	}
	if err := checkTokenHash("token hash", tok.Hash); err != nil {
		return err
	}
	if err := checkText("token name", tok.Name, 1, MaxTokenNameChars); err != nil {
		return err
	}
	if !slices.Contains([]string{RoleOwner, RoleOperator, RoleAuditor}, tok.Role) {
		return rejectf(ErrInvalid, "role %q is not %q, %q or %q", tok.Role, RoleOwner, RoleOperator, RoleAuditor)
	}
	if tok.ExpiresAt != 0 && tok.ExpiresAt <= now {
		return rejectf(ErrInvalid, "token expiry %d is not after the command time %d", tok.ExpiresAt, now)
	}
	if tok.ExpiresAt < 0 {
		return rejectf(ErrInvalid, "token expiry %d is negative", tok.ExpiresAt)
	}
	return checkTokenVaults(t, tok.Vaults)
}

// checkTokenVaults requires ["*"] or a list of existing, distinct vaults.
func checkTokenVaults(t *tx, vaults []string) error {
	if len(vaults) == 1 && vaults[0] == "*" {
		return nil
	}
	if len(vaults) == 0 || len(vaults) > MaxTokenVaults {
		return rejectf(ErrInvalid, "token scope has %d vaults; give [\"*\"] or 1 to %d vault ids", len(vaults), MaxTokenVaults)
	}
	for i, v := range vaults {
		if v == "*" {
			return rejectf(ErrInvalid, "token scope mixes \"*\" with vault ids; give one or the other")
		}
		if _, ok := t.vault(VaultID(v)); !ok {
			return rejectf(ErrNotFound, "vault %q of the token scope not found", v)
		}
		if slices.Contains(vaults[:i], v) {
			return rejectf(ErrInvalid, "vault %q is repeated in the token scope", v)
		}
	}
	return nil
}

// applyCreateVault creates a vault with its allowlist disabled.
func applyCreateVault(t *tx, c *Command) (any, error) {
	var p CreateVaultPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if err := checkVaultID(p.ID); err != nil {
		return nil, err
	}
	if err := checkText("vault name", p.Name, 1, MaxVaultNameChars); err != nil {
		return nil, err
	}
	if _, exists := t.vault(p.ID); exists {
		return nil, rejectf(ErrAlreadyExists, "vault %s already exists", p.ID)
	}
	// Operators pick vaults by name in the console and CLI, so two vaults
	// with one name would be ambiguous.
	if other, taken := t.vaultNamed(p.Name); taken {
		return nil, rejectf(ErrAlreadyExists, "a vault named %q already exists (%s); choose another name", p.Name, other)
	}

	v := &Vault{
		ID:          p.ID,
		Name:        p.Name,
		CreatedAt:   c.Time,
		IPAllowlist: IPAllowlist{Entries: []IPAllowEntry{}},
	}
	t.stage(kindVault, vaultKey(v.ID), string(v.ID), v, &vaultEntry{vault: v})
	return v, nil
}

// applySetVaultAllowlist replaces a vault's IP allowlist.
func applySetVaultAllowlist(t *tx, c *Command) (any, error) {
	var p SetVaultAllowlistPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	old, ok := t.vault(p.VaultID)
	if !ok {
		return nil, rejectf(ErrNotFound, "vault %s not found", p.VaultID)
	}
	allow, err := compileAllowlist(p.IPAllowlist)
	if err != nil {
		return nil, err
	}

	v := *old.vault
	v.IPAllowlist = IPAllowlist{Enabled: p.IPAllowlist.Enabled, Entries: slices.Clone(p.IPAllowlist.Entries)}
	if v.IPAllowlist.Entries == nil {
		v.IPAllowlist.Entries = []IPAllowEntry{}
	}
	t.stage(kindVault, vaultKey(v.ID), string(v.ID), &v, &vaultEntry{vault: &v, allowlist: allow})
	return &v, nil
}

// applyCreateProject creates a project. Project names are unique within a
// vault.
func applyCreateProject(t *tx, c *Command) (any, error) {
	var p CreateProjectPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if err := checkProjectID(p.ID); err != nil {
		return nil, err
	}
	if err := checkText("project name", p.Name, 1, MaxProjectNameChars); err != nil {
		return nil, err
	}
	if len(p.WrappedKey) != wrappedKeySize {
		return nil, rejectf(ErrInvalid, "project key is %d bytes, want a %d-byte wrapped key", len(p.WrappedKey), wrappedKeySize)
	}
	if _, ok := t.vault(p.VaultID); !ok {
		return nil, rejectf(ErrNotFound, "vault %s not found", p.VaultID)
	}
	if _, exists := t.project(p.ID); exists {
		return nil, rejectf(ErrAlreadyExists, "project %s already exists", p.ID)
	}
	for _, other := range t.projectsInVault(p.VaultID) {
		if other.Name == p.Name {
			return nil, rejectf(ErrAlreadyExists, "vault %s already has a project named %q (%s)", p.VaultID, p.Name, other.ID)
		}
	}

	proj := &Project{
		ID:         p.ID,
		VaultID:    p.VaultID,
		Name:       p.Name,
		CreatedAt:  c.Time,
		WrappedKey: p.WrappedKey,
	}
	t.stage(kindProject, projectKey(proj.ID), string(proj.ID), proj, proj)
	return proj, nil
}
