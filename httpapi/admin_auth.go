package httpapi

import (
	"bytes"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
)

// permission is the level of access an admin route requires of the
// caller's role.
type permission int

const (
	// permRead lets every role read (auditor, operator, owner).
	permRead permission = iota
	// permWrite lets operators and owners change state.
	permWrite
	// permTokens lets only owners manage admin tokens.
	permTokens
	// permAlerts lets only owners change webhooks, alert and retention
	// settings.
	permAlerts
)

func (p permission) String() string {
	switch p {
	case permRead:
		return "read"
	case permWrite:
		return "write"
	case permAlerts:
		return "alert settings"
	}
	return "token management"
}

// roleAllows reports whether role grants perm.
func roleAllows(role string, perm permission) bool {
	switch role {
	case fsm.RoleOwner:
		return true
	case fsm.RoleOperator:
		return perm <= permWrite
	case fsm.RoleAuditor:
		return perm == permRead
	}
	return false
}

// adminCall is an authenticated admin request. vault is set on routes with
// a {vaultId} parameter, after the token's scope was checked.
type adminCall struct {
	token *fsm.AdminToken
	vault *fsm.Vault
	actor fsm.Actor
}

// allVaults is the vault scope that covers every vault.
const allVaults = "*"

// admin wraps an admin-plane handler with authentication, the role check
// and, on routes with {vaultId}, the vault scope check.
func (s *Server) admin(perm permission, handle func(*request, *adminCall) error) func(*request) error {
	return func(rc *request) error {
		if err := s.checkAdminFresh(); err != nil {
			return err
		}
		tok, err := s.authenticateAdmin(rc)
		if err != nil {
			return err
		}
		if !roleAllows(tok.Role, perm) {
			return fail(ErrForbidden, "Role %s does not allow %s", tok.Role, perm)
		}

		client, _ := s.clientAddress(rc)
		ac := &adminCall{
			token: tok,
			actor: fsm.Actor{Kind: actorUser, ID: tok.ID, SourceIP: addrText(client)},
		}
		if slices.Contains(rc.route.params, "vaultId") {
			if ac.vault, err = s.scopedVault(tok, rc.param("vaultId")); err != nil {
				return err
			}
		}
		return handle(rc, ac)
	}
}

// authenticateAdmin checks "Authorization: Bearer kwt_…" against the stored
// SHA-256 of admin tokens.
func (s *Server) authenticateAdmin(rc *request) (*fsm.AdminToken, error) {
	values := rc.ctx.Request.Header.PeekAll(fasthttp.HeaderAuthorization)
	if len(values) == 0 {
		return nil, fail(ErrUnauthorized, "Missing Authorization header; send Authorization: Bearer <admin token>")
	}
	if len(values) > 1 {
		return nil, fail(ErrBadRequest, "Authorization sent %d times; send it once", len(values))
	}

	scheme, token, ok := bytes.Cut(values[0], []byte(" "))
	if !ok || !bytes.EqualFold(scheme, []byte("Bearer")) {
		return nil, fail(ErrUnauthorized, "Authorization must use the Bearer scheme")
	}
	tokenText := string(bytes.TrimSpace(token))
	if !hasIDForm(tokenText, adminTokenPrefix, adminTokenLength, base62) {
		return nil, fail(ErrUnauthorized, "Invalid admin token")
	}

	hash := hashToken(tokenText)
	tok, found := s.sm.AdminTokenByHash(hash)
	if !found || !hashesEqual(tok.Hash, hash) {
		return nil, fail(ErrUnauthorized, "Invalid admin token")
	}
	if tok.RevokedAt != 0 {
		return nil, fail(ErrUnauthorized, "Admin token has been revoked; ask an owner for a new one")
	}
	if tok.ExpiresAt != 0 && rc.now.UnixMilli() >= tok.ExpiresAt {
		return nil, fail(ErrUnauthorized, "Admin token has expired; ask an owner for a new one")
	}
	return tok, nil
}

// scopedVault returns the vault id when the token's scope covers it: a
// malformed or unknown vault is 404, one outside the scope 403.
func (s *Server) scopedVault(tok *fsm.AdminToken, id string) (*fsm.Vault, error) {
	if !isVaultID(id) {
		return nil, fail(ErrNotFound, "Vault %s not found", clip(id))
	}
	if !tokenCovers(tok, id) {
		return nil, fail(ErrForbidden, "This admin token is not scoped to vault %s", id)
	}
	vault, ok := s.sm.Vault(fsm.VaultID(id))
	if !ok {
		return nil, fail(ErrNotFound, "Vault %s not found", id)
	}
	return vault, nil
}

// tokenCovers reports whether the token's vault scope includes vault.
func tokenCovers(tok *fsm.AdminToken, vault string) bool {
	return slices.Contains(tok.Vaults, allVaults) || slices.Contains(tok.Vaults, vault)
}
