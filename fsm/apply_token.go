package fsm

import (
	"slices"
	"time"

	"github.com/keyward/keyward/guard"
)

// MaxBootstrapTokenTTL bounds how long a standard or temp bootstrap token
// stays valid. Enrollment tokens may live up to twelve calendar months.
const MaxBootstrapTokenTTL = 7 * 24 * time.Hour

// applyCreateBootstrapToken stores a registration token. Apply sets
// CreatedAt to the command time and starts Uses at zero.
func applyCreateBootstrapToken(t *tx, c *Command) (any, error) {
	var p CreateBootstrapTokenPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	tok := p.Token
	if err := checkBootstrapToken(&tok, c.Time); err != nil {
		return nil, err
	}
	if _, ok := t.vault(tok.VaultID); !ok {
		return nil, rejectf(ErrNotFound, "vault %s not found", tok.VaultID)
	}
	if err := checkEnrollmentAccess(t, &tok); err != nil {
		return nil, err
	}
	if _, exists := t.bootstrapToken(tok.Hash); exists {
		return nil, rejectf(ErrAlreadyExists, "a bootstrap token with this hash exists")
	}
	if _, exists := t.bootstrapTokenByID(tok.VaultID, tok.ID); exists {
		return nil, rejectf(ErrAlreadyExists, "vault %s already has a bootstrap token with id %s", tok.VaultID, tok.ID)
	}

	tok.CreatedAt = c.Time
	tok.Uses = 0
	tok.RevokedAt = 0
	t.stage(kindBootstrapToken, bootstrapKey(tok.Hash), tok.Hash, &tok, &tok)
	return &tok, nil
}

// checkBootstrapToken validates a new token and fills the default MaxUses
// of 1 for standard and temp tokens.
func checkBootstrapToken(tok *BootstrapToken, now int64) error {
	if err := checkHandle("token id", tok.ID); err != nil {
		return err
	}
	if err := checkTokenHash("token hash", tok.Hash); err != nil {
		return err
	}
	if tok.ExpiresAt <= now {
		return rejectf(ErrInvalid, "token expiry %d is not after the command time %d", tok.ExpiresAt, now)
	}

	switch tok.Kind {
	case TokenKindStandard:
		return checkStandardToken(tok, now)
	case TokenKindTemp:
		return checkTempToken(tok, now)
	case TokenKindEnrollment:
		return checkEnrollmentToken(tok, now)
	}
	return rejectf(ErrInvalid, "token kind %q is not %q, %q or %q", tok.Kind, TokenKindStandard, TokenKindTemp, TokenKindEnrollment)
}

func checkStandardToken(tok *BootstrapToken, now int64) error {
	if err := checkSingleUse(tok, now); err != nil {
		return err
	}
	if tok.MachineName != "" || tok.Purpose != "" || tok.Lifetime != nil || tok.Guardrails != nil {
		return rejectf(ErrInvalid, "a standard token has no machine name, purpose, lifetime or guardrails; issue a temp token for those")
	}
	return checkNoAccessLists(tok)
}

// checkNoAccessLists rejects project and secret lists on a token kind
// that registers machines pending and without access.
func checkNoAccessLists(tok *BootstrapToken) error {
	if len(tok.ProjectIDs) > 0 || len(tok.SecretIDs) > 0 {
		return rejectf(ErrInvalid, "a %s token has no project or secret lists; issue an enrollment token for those", tok.Kind)
	}
	return nil
}

// checkEnrollmentAccess checks the project and secret lists of an
// enrollment token against the state. Every project must belong to the
// token's vault, and every secret to one of the listed projects, because a
// grant outside the machine's projects could never be used. The lists are
// sorted and de-duplicated in place.
func checkEnrollmentAccess(t *tx, tok *BootstrapToken) error {
	if tok.Kind != TokenKindEnrollment {
		return nil
	}
	if len(tok.ProjectIDs) > MaxMachineProjects {
		return rejectf(ErrInvalid, "an enrollment token lists %d projects, limit %d", len(tok.ProjectIDs), MaxMachineProjects)
	}
	if len(tok.SecretIDs) > MaxGrants {
		return rejectf(ErrInvalid, "an enrollment token lists %d secrets, limit %d", len(tok.SecretIDs), MaxGrants)
	}
	tok.ProjectIDs = slices.Compact(slices.Sorted(slices.Values(tok.ProjectIDs)))
	tok.SecretIDs = slices.Compact(slices.Sorted(slices.Values(tok.SecretIDs)))

	for _, id := range tok.ProjectIDs {
		if p, ok := t.project(id); !ok || p.VaultID != tok.VaultID {
			return rejectf(ErrNotFound, "project %s not found in vault %s", id, tok.VaultID)
		}
	}
	for _, id := range tok.SecretIDs {
		s, ok := t.secret(id)
		if !ok || s.meta.VaultID != tok.VaultID {
			return rejectf(ErrNotFound, "secret %s not found in vault %s", id, tok.VaultID)
		}
		if _, listed := slices.BinarySearch(tok.ProjectIDs, s.meta.ProjectID); !listed {
			return rejectf(ErrInvalid, "secret %s belongs to project %s, which the token does not list; add the project to projectIds",
				id, s.meta.ProjectID)
		}
	}
	return nil
}

func checkTempToken(tok *BootstrapToken, now int64) error {
	if err := checkSingleUse(tok, now); err != nil {
		return err
	}
	if err := checkText("machine name", tok.MachineName, 1, MaxMachineNameChars); err != nil {
		return err
	}
	if err := checkText("purpose", tok.Purpose, 0, MaxPurposeChars); err != nil {
		return err
	}
	if err := checkLifetime(tok.Lifetime, now); err != nil {
		return err
	}
	if err := checkNoAccessLists(tok); err != nil {
		return err
	}
	_, err := compileGuardrails(tok.Guardrails)
	return err
}

func checkEnrollmentToken(tok *BootstrapToken, now int64) error {
	if tok.MaxUses < 1 || tok.MaxUses > MaxEnrollmentUses {
		return rejectf(ErrInvalid, "an enrollment token allows %d uses, want 1 to %d", tok.MaxUses, MaxEnrollmentUses)
	}
	if limit := guard.ExtensionCap(time.UnixMilli(now)).UnixMilli(); tok.ExpiresAt > limit {
		return rejectf(ErrInvalid, "enrollment token expiry %d is more than twelve calendar months after %d", tok.ExpiresAt, now)
	}
	if tok.MachineName != "" {
		return rejectf(ErrInvalid, "an enrollment token has no machine name; machines name themselves when they enroll")
	}
	if err := checkText("purpose", tok.Purpose, 0, MaxPurposeChars); err != nil {
		return err
	}
	if err := checkLifetime(tok.Lifetime, now); err != nil {
		return err
	}
	_, err := compileGuardrails(tok.Guardrails)
	return err
}

// checkSingleUse applies the rules shared by standard and temp tokens: one
// use, and at most MaxBootstrapTokenTTL of validity.
func checkSingleUse(tok *BootstrapToken, now int64) error {
	if tok.MaxUses == 0 {
		tok.MaxUses = 1
	}
	if tok.MaxUses != 1 {
		return rejectf(ErrInvalid, "a %s token is single-use; maxUses is %d, want 1", tok.Kind, tok.MaxUses)
	}
	if ttl := time.Duration(tok.ExpiresAt-now) * time.Millisecond; ttl > MaxBootstrapTokenTTL {
		return rejectf(ErrInvalid, "token lifetime %s is over the limit of %s", ttl, MaxBootstrapTokenTTL)
	}
	return nil
}

// checkLifetime requires a machine lifetime between one hour and twelve
// calendar months, measured from now.
func checkLifetime(l *Lifetime, now int64) error {
	if l == nil {
		return rejectf(ErrInvalid, "lifetime is missing; give months, days and hours")
	}
	if err := guard.ValidateLifetime(l.Months, l.Days, l.Hours, time.UnixMilli(now)); err != nil {
		return rejectf(ErrInvalid, "lifetime: %v", err)
	}
	return nil
}

// applyRevokeBootstrapToken revokes a token by its public id. Revoking a
// revoked token succeeds and keeps the first revocation time. A token with
// no use left is rejected: revoking it would change nothing but its listed
// status, which would then hide that it was used.
func applyRevokeBootstrapToken(t *tx, c *Command) (any, error) {
	var p RevokeBootstrapTokenPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	found, ok := t.bootstrapTokenByID(p.VaultID, p.ID)
	if !ok {
		return nil, rejectf(ErrNotFound, "bootstrap token %s not found in vault %s", p.ID, p.VaultID)
	}
	if found.RevokedAt != 0 {
		return found, nil
	}
	if found.Uses >= found.MaxUses {
		return nil, rejectf(ErrNotAllowed, "%s %s is already used up (%d of %d uses), so there is nothing to revoke",
			TokenNoun(found.Kind), found.ID, found.Uses, found.MaxUses)
	}

	tok := *found
	tok.RevokedAt = c.Time
	t.stage(kindBootstrapToken, bootstrapKey(tok.Hash), tok.Hash, &tok, &tok)
	return &tok, nil
}

// checkTokenUsable returns ErrTokenInvalid unless tok exists, belongs to
// vault (when given), is unrevoked, unexpired at now and not used up.
func checkTokenUsable(tok *BootstrapToken, ok bool, vault VaultID, now int64) error {
	switch {
	case !ok:
		return rejectf(ErrTokenInvalid, "bootstrap token not found")
	case vault != "" && tok.VaultID != vault:
		return rejectf(ErrTokenInvalid, "bootstrap token is not valid for vault %s", vault)
	case tok.RevokedAt != 0:
		return rejectf(ErrTokenInvalid, "%s %s was revoked; ask an operator for a new one", TokenNoun(tok.Kind), tok.ID)
	case now >= tok.ExpiresAt:
		return rejectf(ErrTokenInvalid, "%s %s expired at %s; ask an operator for a new one", TokenNoun(tok.Kind), tok.ID, formatMs(tok.ExpiresAt))
	case tok.Uses >= tok.MaxUses:
		return rejectf(ErrTokenInvalid, "%s %s is used up (%d of %d uses); ask an operator for a new one", TokenNoun(tok.Kind), tok.ID, tok.Uses, tok.MaxUses)
	}
	return nil
}

// TokenNoun names a registration token of kind, in lower case, the way the
// CLI and the API routes do.
func TokenNoun(kind string) string {
	switch kind {
	case TokenKindTemp:
		return "temp token"
	case TokenKindEnrollment:
		return "enrollment token"
	}
	return "bootstrap token"
}
