package httpapi

import (
	"fmt"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// createVault serves POST /v1/admin/vaults {"name"}. Only a token scoped to
// every vault may create one, since a new vault is outside any narrower
// scope.
func (s *Server) createVault(rc *request, ac *adminCall) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if err := checkName("name", in.Name, maxVaultNameLength); err != nil {
		return err
	}
	if !tokenCovers(ac.token, allVaults) {
		return fail(ErrForbidden, "Only an admin token scoped to every vault (\"*\") may create vaults")
	}

	payload := fsm.CreateVaultPayload{ID: newVaultID(), Name: in.Name}
	resp, err := s.propose(rc, proposal{typ: fsm.CmdCreateVault, actor: ac.actor, payload: payload})
	if err != nil {
		return err
	}
	var vault fsm.Vault
	if err := decodeResponse(resp, &vault); err != nil {
		return err
	}
	s.audit(s.adminEvent(rc, ac, ActionVaultCreate, severityInfo, vault.ID))
	return writeCreated(rc, newVaultView(&vault))
}

// listVaults serves GET /v1/admin/vaults: the vaults in the token's scope.
func (s *Server) listVaults(rc *request, ac *adminCall) error {
	views := []vaultView{}
	for _, v := range s.sm.Vaults() {
		if tokenCovers(ac.token, string(v.ID)) {
			views = append(views, newVaultView(v))
		}
	}
	return writeOK(rc, map[string]any{"vaults": views})
}

// getVault serves GET /v1/admin/vaults/{vaultId}.
func (s *Server) getVault(rc *request, ac *adminCall) error {
	return writeOK(rc, newVaultView(ac.vault))
}

// setVaultAllowlist serves PUT /v1/admin/vaults/{vaultId}/ip-allowlist
// {"enabled","entries":[{"cidr","label"}]}.
func (s *Server) setVaultAllowlist(rc *request, ac *adminCall) error {
	var in fsm.IPAllowlist
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if err := checkAllowlist(in); err != nil {
		return err
	}
	if in.Entries == nil {
		in.Entries = []fsm.IPAllowEntry{}
	}

	payload := fsm.SetVaultAllowlistPayload{VaultID: ac.vault.ID, IPAllowlist: in}
	resp, err := s.propose(rc, proposal{typ: fsm.CmdSetVaultAllowlist, actor: ac.actor, payload: payload})
	if err != nil {
		return err
	}
	var vault fsm.Vault
	if err := decodeResponse(resp, &vault); err != nil {
		return err
	}
	ev := s.adminEvent(rc, ac, ActionVaultAllowlistUpdate, severityMedium, vault.ID)
	ev.Fields = map[string]any{"enabled": in.Enabled, "entries": len(in.Entries)}
	s.audit(ev)
	return writeOK(rc, newVaultView(&vault))
}

func checkAllowlist(in fsm.IPAllowlist) error {
	if len(in.Entries) > maxAllowlistEntries {
		return fail(ErrBadRequest, "entries lists %d CIDRs; the maximum is %d", len(in.Entries), maxAllowlistEntries)
	}
	if in.Enabled && len(in.Entries) == 0 {
		return fail(ErrBadRequest, "an enabled allowlist with no entries would block every machine; add entries or set enabled to false")
	}
	cidrs := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		cidrs[i] = e.CIDR
		if err := checkText(fmt.Sprintf("entries[%d].label", i), e.Label, maxLabelLength); err != nil {
			return err
		}
	}
	if _, err := guard.ParseCIDRs(cidrs); err != nil {
		return fail(guard.ErrInvalidCIDR, "entries: %s", clientMessage(err, 0))
	}
	return nil
}

// createProject serves POST /v1/admin/vaults/{vaultId}/projects {"name"}.
// The project key is generated and wrapped by the root key here, so the
// command carries only the wrapped key.
func (s *Server) createProject(rc *request, ac *adminCall) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if err := checkName("name", in.Name, maxProjectNameLength); err != nil {
		return err
	}
	if err := s.checkRootKeyBeforeSeal(); err != nil {
		return err
	}
	wrapped, err := s.keyring.NewProjectKey()
	if err != nil {
		return fmt.Errorf("create project key: %w", err)
	}

	payload := fsm.CreateProjectPayload{ID: newProjectID(), VaultID: ac.vault.ID, Name: in.Name, WrappedKey: wrapped}
	resp, err := s.propose(rc, proposal{typ: fsm.CmdCreateProject, actor: ac.actor, payload: payload})
	if err != nil {
		return err
	}
	var project fsm.Project
	if err := decodeResponse(resp, &project); err != nil {
		return err
	}
	ev := s.adminEvent(rc, ac, ActionProjectCreate, severityInfo, ac.vault.ID)
	ev.Fields = map[string]any{"projectId": string(project.ID)}
	s.audit(ev)
	return writeCreated(rc, newProjectView(&project))
}

// listProjects serves GET /v1/admin/vaults/{vaultId}/projects.
func (s *Server) listProjects(rc *request, ac *adminCall) error {
	views := []projectView{}
	for _, p := range s.sm.Projects(ac.vault.ID) {
		views = append(views, newProjectView(p))
	}
	return writeOK(rc, map[string]any{"projects": views})
}

// getProject serves GET /v1/admin/vaults/{vaultId}/projects/{projectId}.
func (s *Server) getProject(rc *request, ac *adminCall) error {
	project, err := s.vaultProject(ac, rc.param("projectId"))
	if err != nil {
		return err
	}
	return writeOK(rc, newProjectView(project))
}

// vaultProject returns a project of the call's vault, 404 otherwise.
func (s *Server) vaultProject(ac *adminCall, id string) (*fsm.Project, error) {
	if !isProjectID(id) {
		return nil, fail(ErrNotFound, "Project %s not found", clip(id))
	}
	project, ok := s.sm.Project(fsm.ProjectID(id))
	if !ok || project.VaultID != ac.vault.ID {
		return nil, fail(ErrNotFound, "Project %s not found in vault %s", id, ac.vault.ID)
	}
	return project, nil
}

// adminEvent starts an audit event for an admin request.
func (s *Server) adminEvent(rc *request, ac *adminCall, action, severity string, vault fsm.VaultID) AuditEvent {
	client, proxy := s.clientAddress(rc)
	ev := AuditEvent{
		RequestID: rc.id,
		Action:    action,
		Severity:  severity,
		ActorKind: actorUser,
		ActorID:   ac.token.ID,
		VaultID:   string(vault),
		SourceIP:  addrText(client),
		Method:    string(rc.ctx.Method()),
		Path:      rc.path,
		Timestamp: rc.now.UnixMilli(),
	}
	if proxy.IsValid() {
		ev.ProxyIP = proxy.String()
	}
	return ev
}
