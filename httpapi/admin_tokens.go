package httpapi

import (
	"slices"
	"time"

	"github.com/keyward/keyward/fsm"
)

// standardTokenTTL is how long a bootstrap token for a long-lived machine
// stays valid.
const standardTokenTTL = 10 * time.Minute

// maxAdminTokenTTL bounds the lifetime of a new admin token.
const maxAdminTokenTTL = 5 * 365 * 24 * time.Hour

// issuedToken is the response to a token issue. The token and its
// commands appear in this response only.
type issuedToken struct {
	ID        string   `json:"id"`
	Token     string   `json:"token"`
	ExpiresAt int64    `json:"expiresAt"`
	Commands  commands `json:"commands"`
}

// commands holds the one-line registration commands: Sh for Linux and
// macOS, PS for Windows PowerShell.
type commands struct {
	Sh string `json:"sh"`
	PS string `json:"ps"`
}

// createBootstrapToken serves POST /v1/admin/vaults/{vaultId}/bootstrap-tokens
// with an empty body or {}: a single-use token for a long-lived machine,
// valid ten minutes.
func (s *Server) createBootstrapToken(rc *request, ac *adminCall) error {
	var in struct{}
	if err := decodeOptionalJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	bt := fsm.BootstrapToken{
		VaultID:   ac.vault.ID,
		Kind:      fsm.TokenKindStandard,
		ExpiresAt: rc.now.Add(standardTokenTTL).UnixMilli(),
		MaxUses:   1,
	}
	return s.issueBootstrapToken(rc, ac, bt, ActionBootstrapTokenCreate)
}

// issueBootstrapToken generates the token, stores its hash through Raft and
// responds 201 with the token and the commands that use it.
func (s *Server) issueBootstrapToken(rc *request, ac *adminCall, bt fsm.BootstrapToken, action string) error {
	// The URL is checked before proposing, so that a bad Host header cannot
	// leave a stored token that was never shown to the operator.
	apiURL, err := s.apiURL(rc)
	if err != nil {
		return err
	}
	token := newBootstrapToken()
	bt.ID = newHandle("bt_")
	bt.Hash = hashToken(token)
	bt.CreatedAt = rc.now.UnixMilli()

	payload := fsm.CreateBootstrapTokenPayload{Token: bt}
	if _, err := s.propose(rc, proposal{typ: fsm.CmdCreateBootstrapToken, actor: ac.actor, payload: payload, fresh: true}); err != nil {
		return err
	}

	ev := s.adminEvent(rc, ac, action, severityMedium, bt.VaultID)
	ev.Fields = map[string]any{"tokenId": bt.ID, "expiresAt": bt.ExpiresAt}
	if bt.Kind == fsm.TokenKindTemp {
		ev.Fields["machineName"] = bt.MachineName
		ev.Fields["lifetime"] = bt.Lifetime
	}
	s.audit(ev)

	return writeCreated(rc, issuedToken{
		ID: bt.ID, Token: token, ExpiresAt: bt.ExpiresAt,
		Commands: registrationCommands(bt, apiURL, token),
	})
}

// registrationCommands returns the commands that register a machine with
// token. Enrollment has no served script, because every instance must
// generate its own key without an interactive step, so both commands run
// the keyward CLI.
func registrationCommands(bt fsm.BootstrapToken, apiURL, token string) commands {
	if bt.Kind == fsm.TokenKindEnrollment {
		cli := "keyward register --enroll --vault " + string(bt.VaultID) + " --api-url '" + apiURL + "' " + token
		return commands{Sh: cli, PS: cli}
	}
	script := apiURL + scriptPath(bt.Kind, bt.VaultID, token)
	return commands{
		Sh: "curl -fsSL '" + script + "' | sh",
		PS: "irm '" + script + "/ps' | iex",
	}
}

// listBootstrapTokens returns the handler of GET …/bootstrap-tokens (kind
// standard) and GET …/temp-tokens (kind temp).
func (s *Server) listBootstrapTokens(kind string) func(*request, *adminCall) error {
	return func(rc *request, ac *adminCall) error {
		views := []tokenView{}
		for _, t := range s.sm.BootstrapTokens(ac.vault.ID, kind) {
			views = append(views, newTokenView(t, rc.now.UnixMilli()))
		}
		return writeOK(rc, map[string]any{"tokens": views})
	}
}

// revokeBootstrapToken returns the handler of DELETE …/bootstrap-tokens/{tokenId}
// and DELETE …/temp-tokens/{tokenId}.
func (s *Server) revokeBootstrapToken(kind, action string) func(*request, *adminCall) error {
	return func(rc *request, ac *adminCall) error {
		id := rc.param("tokenId")
		idx := slices.IndexFunc(s.sm.BootstrapTokens(ac.vault.ID, kind), func(t *fsm.BootstrapToken) bool {
			return t.ID == id
		})
		if idx < 0 {
			return fail(ErrNotFound, "Token %s not found in vault %s", clip(id), ac.vault.ID)
		}

		payload := fsm.RevokeBootstrapTokenPayload{VaultID: ac.vault.ID, ID: id}
		resp, err := s.propose(rc, proposal{typ: fsm.CmdRevokeBootstrapToken, actor: ac.actor, payload: payload})
		if err != nil {
			return err
		}
		ev := s.adminEvent(rc, ac, action, severityMedium, ac.vault.ID)
		ev.Fields = map[string]any{"tokenId": id}
		s.audit(ev)

		var bt fsm.BootstrapToken
		if len(resp.Body) > 0 && decodeResponse(resp, &bt) == nil && bt.ID == id {
			return writeOK(rc, newTokenView(&bt, rc.now.UnixMilli()))
		}
		return writeOK(rc, map[string]any{"id": id, "status": tokenStatusRevoked})
	}
}

// adminTokenRequest is the body of POST /v1/admin/tokens.
type adminTokenRequest struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Vaults []string `json:"vaults"`
	// TTL is a Go duration; empty means the token does not expire.
	TTL string `json:"ttl"`
}

// createAdminToken serves POST /v1/admin/tokens (owners only). The new
// token's scope must lie inside the caller's, so a vault-scoped owner
// cannot mint a token for other vaults.
func (s *Server) createAdminToken(rc *request, ac *adminCall) error {
	var in adminTokenRequest
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	tok, err := s.newAdminTokenRecord(rc, ac, in)
	if err != nil {
		return err
	}
	token := newAdminToken()
	tok.Hash = hashToken(token)

	payload := fsm.CreateAdminTokenPayload{Token: tok}
	if _, err := s.propose(rc, proposal{typ: fsm.CmdCreateAdminToken, actor: ac.actor, payload: payload, fresh: true}); err != nil {
		return err
	}
	ev := s.adminEvent(rc, ac, ActionAdminTokenCreate, severityHigh, "")
	ev.Fields = map[string]any{"tokenId": tok.ID, "role": tok.Role, "vaults": tok.Vaults}
	s.audit(ev)

	return writeCreated(rc, map[string]any{
		"id": tok.ID, "token": token, "name": tok.Name, "role": tok.Role,
		"vaults": tok.Vaults, "expiresAt": tok.ExpiresAt,
	})
}

func (s *Server) newAdminTokenRecord(rc *request, ac *adminCall, in adminTokenRequest) (fsm.AdminToken, error) {
	if err := checkName("name", in.Name, maxTokenNameLength); err != nil {
		return fsm.AdminToken{}, err
	}
	if !slices.Contains([]string{fsm.RoleOwner, fsm.RoleOperator, fsm.RoleAuditor}, in.Role) {
		return fsm.AdminToken{}, fail(ErrBadRequest, "role %q is not one of owner, operator, auditor", clip(in.Role))
	}
	if err := checkTokenScope(ac.token, in.Vaults); err != nil {
		return fsm.AdminToken{}, err
	}

	tok := fsm.AdminToken{
		ID: newHandle("at_"), Name: in.Name, Role: in.Role,
		Vaults: slices.Compact(slices.Sorted(slices.Values(in.Vaults))), CreatedAt: rc.now.UnixMilli(),
	}
	if in.TTL != "" {
		ttl, err := time.ParseDuration(in.TTL)
		if err != nil || ttl < time.Minute || ttl > maxAdminTokenTTL {
			return fsm.AdminToken{}, fail(ErrBadRequest, "ttl %q must be a Go duration from 1m to %v, or empty for no expiry", clip(in.TTL), maxAdminTokenTTL)
		}
		tok.ExpiresAt = rc.now.Add(ttl).UnixMilli()
	}
	return tok, nil
}

// adminTokenView is an admin token in a listing; the token itself and its
// hash are never shown.
type adminTokenView struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Vaults    []string `json:"vaults"`
	Status    string   `json:"status"`
	CreatedAt int64    `json:"createdAt"`
	ExpiresAt int64    `json:"expiresAt,omitempty"`
	RevokedAt int64    `json:"revokedAt,omitempty"`
}

func newAdminTokenView(tok *fsm.AdminToken, nowMs int64) adminTokenView {
	status := tokenStatusActive
	switch {
	case tok.RevokedAt != 0:
		status = tokenStatusRevoked
	case tok.ExpiresAt != 0 && nowMs >= tok.ExpiresAt:
		status = tokenStatusExpired
	}
	return adminTokenView{
		ID: tok.ID, Name: tok.Name, Role: tok.Role, Vaults: tok.Vaults, Status: status,
		CreatedAt: tok.CreatedAt, ExpiresAt: tok.ExpiresAt, RevokedAt: tok.RevokedAt,
	}
}

// scopeWithin reports whether every vault of tok lies inside the scope of
// caller, so a vault-scoped owner sees and revokes only tokens it could
// have created.
func scopeWithin(caller, tok *fsm.AdminToken) bool {
	for _, v := range tok.Vaults {
		if !tokenCovers(caller, v) {
			return false
		}
	}
	return true
}

// listAdminTokens serves GET /v1/admin/tokens (owners only): the tokens
// whose scope lies inside the caller's.
func (s *Server) listAdminTokens(rc *request, ac *adminCall) error {
	views := []adminTokenView{}
	for _, tok := range s.sm.AdminTokens() {
		if scopeWithin(ac.token, tok) {
			views = append(views, newAdminTokenView(tok, rc.now.UnixMilli()))
		}
	}
	return writeOK(rc, map[string]any{"tokens": views})
}

// revokeAdminToken serves DELETE /v1/admin/tokens/{tokenId} (owners only).
// It is security-critical: it returns once every node rejects the token or
// counts as stale.
func (s *Server) revokeAdminToken(rc *request, ac *adminCall) error {
	id := rc.param("tokenId")
	idx := slices.IndexFunc(s.sm.AdminTokens(), func(t *fsm.AdminToken) bool { return t.ID == id })
	if idx < 0 {
		return fail(ErrNotFound, "Admin token %s not found", clip(id))
	}
	tok := s.sm.AdminTokens()[idx]
	if !scopeWithin(ac.token, tok) {
		return fail(ErrForbidden, "Admin token %s has a scope outside this token's own", id)
	}

	resp, err := s.propose(rc, proposal{typ: fsm.CmdRevokeAdminToken, actor: ac.actor, payload: fsm.RevokeAdminTokenPayload{ID: id}})
	if err != nil {
		return err
	}
	var revoked fsm.AdminToken
	if err := decodeResponse(resp, &revoked); err != nil {
		return err
	}
	ev := s.adminEvent(rc, ac, ActionAdminTokenRevoke, severityHigh, "")
	ev.Fields = map[string]any{"tokenId": id, "role": revoked.Role, "vaults": revoked.Vaults}
	s.audit(ev)
	return writeOK(rc, newAdminTokenView(&revoked, rc.now.UnixMilli()))
}

func checkTokenScope(caller *fsm.AdminToken, vaults []string) error {
	if len(vaults) == 0 {
		return fail(ErrBadRequest, "vaults is required: [\"*\"] for every vault, or a list of vault ids")
	}
	if len(vaults) > maxTokenScopeVaults {
		return fail(ErrBadRequest, "vaults lists %d entries; the maximum is %d", len(vaults), maxTokenScopeVaults)
	}
	for i, v := range vaults {
		if v != allVaults && !isVaultID(v) {
			return fail(ErrBadRequest, "vaults[%d] %q is neither \"*\" nor a vault id", i, clip(v))
		}
		if !tokenCovers(caller, v) {
			return fail(ErrForbidden, "vaults[%d] %s is outside this token's own scope", i, v)
		}
	}
	return nil
}
