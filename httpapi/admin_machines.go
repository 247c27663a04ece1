package httpapi

import (
	"slices"
	"strings"

	"github.com/keyward/keyward/fsm"
)

// listMachines serves GET /v1/admin/vaults/{vaultId}/machines with the
// optional filters ?status= and ?kind=.
func (s *Server) listMachines(rc *request, ac *adminCall) error {
	args := rc.ctx.QueryArgs()
	status := string(args.Peek("status"))
	kind := string(args.Peek("kind"))
	if status != "" && !slices.Contains(machineStatuses, status) {
		return fail(ErrBadRequest, "status %q is not one of %v", clip(status), machineStatuses)
	}
	if kind != "" && !slices.Contains(machineKinds, kind) {
		return fail(ErrBadRequest, "kind %q is not one of %v", clip(kind), machineKinds)
	}

	views := []machineView{}
	for _, e := range s.sm.Machines(ac.vault.ID) {
		m := &e.Machine
		if (status == "" || m.Status == status) && (kind == "" || m.Kind == kind) {
			views = append(views, newMachineView(m))
		}
	}
	return writeOK(rc, map[string]any{"machines": views})
}

var (
	machineStatuses = []string{fsm.StatusPending, fsm.StatusActive, fsm.StatusDisabled, fsm.StatusExpired, fsm.StatusRevoked}
	machineKinds    = []string{fsm.KindStandard, fsm.KindEphemeral, fsm.KindTemp}
)

// getMachine serves GET /v1/admin/vaults/{vaultId}/machines/{machineId}.
func (s *Server) getMachine(rc *request, ac *adminCall) error {
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	return writeOK(rc, newMachineView(&entry.Machine))
}

// vaultMachine returns a machine of the call's vault, 404 otherwise. The
// id is compared in lower case, as on the machine plane, so an upper-case
// UUID names the same machine.
func (s *Server) vaultMachine(ac *adminCall, id string) (*fsm.MachineEntry, error) {
	id = strings.ToLower(id)
	if !isMachineID(id) {
		return nil, fail(ErrNotFound, "Machine %s not found", clip(id))
	}
	entry, ok := s.sm.Machine(fsm.MachineID(id))
	if !ok || entry.Machine.VaultID != ac.vault.ID {
		return nil, fail(ErrNotFound, "Machine %s not found in vault %s", id, ac.vault.ID)
	}
	return entry, nil
}

// machineAction returns the handler of POST …/machines/{machineId}/{action}
// for approve, deny, revoke, disable and enable. Each takes an empty body
// or {}.
func (s *Server) machineAction(action string) func(*request, *adminCall) error {
	return func(rc *request, ac *adminCall) error {
		var in struct{}
		if err := decodeOptionalJSON(rc.ctx.PostBody(), &in); err != nil {
			return err
		}
		entry, err := s.vaultMachine(ac, rc.param("machineId"))
		if err != nil {
			return err
		}
		payload := fsm.SetMachineStatusPayload{VaultID: ac.vault.ID, MachineID: entry.Machine.ID, Action: action}
		return s.proposeMachine(rc, ac, proposal{typ: fsm.CmdSetMachineStatus, payload: payload},
			actionMachineStatusPrefix+action, severityForStatusAction(action), nil)
	}
}

// renameMachine serves POST …/machines/{machineId}/rename {"name"}. The
// name is for people; the machine id stays its identity, so renaming
// changes nothing a machine or a grant depends on.
func (s *Server) renameMachine(rc *request, ac *adminCall) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if err := checkName("name", in.Name, maxMachineNameLength); err != nil {
		return err
	}
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	fields := map[string]any{"from": entry.Machine.Name, "to": in.Name}
	payload := fsm.RenameMachinePayload{VaultID: ac.vault.ID, MachineID: entry.Machine.ID, Name: in.Name}
	return s.proposeMachine(rc, ac, proposal{typ: fsm.CmdRenameMachine, payload: payload},
		ActionMachineRename, severityLow, fields)
}

func severityForStatusAction(action string) string {
	switch action {
	case fsm.ActionRevoke, fsm.ActionDisable, fsm.ActionDeny:
		return severityHigh
	}
	return severityMedium
}

// proposeMachine applies a machine command, audits it and responds 200
// with the machine JSON from the command response.
func (s *Server) proposeMachine(rc *request, ac *adminCall, p proposal, action, severity string, fields map[string]any) error {
	p.actor = ac.actor
	resp, err := s.propose(rc, p)
	if err != nil {
		return err
	}
	var m fsm.Machine
	if err := decodeResponse(resp, &m); err != nil {
		return err
	}

	ev := s.adminEvent(rc, ac, action, severity, m.VaultID)
	ev.MachineID = string(m.ID)
	if fields == nil {
		fields = map[string]any{}
	}
	fields["status"] = m.Status
	if m.ExpiresAt != 0 {
		fields["expiresAt"] = m.ExpiresAt
	}
	ev.Fields = fields
	s.audit(ev)
	return writeOK(rc, newMachineView(&m))
}

// purgeMachine serves DELETE /v1/admin/vaults/{vaultId}/machines/{machineId}:
// the record is removed; its audit trail is kept.
func (s *Server) purgeMachine(rc *request, ac *adminCall) error {
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	payload := fsm.PurgeMachinePayload{VaultID: ac.vault.ID, MachineID: entry.Machine.ID}
	if _, err := s.propose(rc, proposal{typ: fsm.CmdPurgeMachine, actor: ac.actor, payload: payload}); err != nil {
		return err
	}
	ev := s.adminEvent(rc, ac, ActionMachinePurge, severityHigh, ac.vault.ID)
	ev.MachineID = string(entry.Machine.ID)
	s.audit(ev)
	return writeOK(rc, map[string]any{"id": string(entry.Machine.ID), "purged": true})
}

// attachProject serves POST …/machines/{machineId}/projects {"projectId"}.
func (s *Server) attachProject(rc *request, ac *adminCall) error {
	var in struct {
		ProjectID string `json:"projectId"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	return s.changeProject(rc, ac, in.ProjectID, fsm.CmdAttachProject, ActionProjectAttach)
}

// detachProject serves DELETE …/machines/{machineId}/projects/{projectId}.
func (s *Server) detachProject(rc *request, ac *adminCall) error {
	return s.changeProject(rc, ac, rc.param("projectId"), fsm.CmdDetachProject, ActionProjectDetach)
}

func (s *Server) changeProject(rc *request, ac *adminCall, projectID string, typ fsm.CommandType, action string) error {
	if projectID == "" {
		return fail(ErrBadRequest, "projectId is required")
	}
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	project, err := s.vaultProject(ac, projectID)
	if err != nil {
		return err
	}
	payload := fsm.MachineProjectPayload{VaultID: ac.vault.ID, MachineID: entry.Machine.ID, ProjectID: project.ID}
	return s.proposeMachine(rc, ac, proposal{typ: typ, payload: payload}, action, severityMedium,
		map[string]any{"projectId": string(project.ID)})
}

// setGrants serves PUT …/machines/{machineId}/grants {"secretIds":[…]},
// which replaces the machine's per-secret grants. Every id must name a
// secret of the vault.
func (s *Server) setGrants(rc *request, ac *adminCall) error {
	var in struct {
		SecretIDs []string `json:"secretIds"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if in.SecretIDs == nil {
		return fail(ErrBadRequest, "secretIds is required; send [] to remove every grant")
	}
	ids, err := s.grantIDs(ac, in.SecretIDs)
	if err != nil {
		return err
	}
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}

	added, removed := grantChanges(entry.Machine.Grants, ids)
	action := ActionPermissionGrant
	if len(added) == 0 && len(removed) > 0 {
		action = ActionPermissionRevoke
	}
	payload := fsm.SetGrantsPayload{VaultID: ac.vault.ID, MachineID: entry.Machine.ID, SecretIDs: ids}
	return s.proposeMachine(rc, ac, proposal{typ: fsm.CmdSetGrants, payload: payload}, action,
		severityMedium, map[string]any{"secretCount": len(ids), "added": added, "removed": removed})
}

// grantChanges lists the ids that next adds to and removes from current.
// The event of a change that both adds and removes is permission_grant with
// both lists.
func grantChanges(current, next []fsm.SecretID) (added, removed []fsm.SecretID) {
	added, removed = []fsm.SecretID{}, []fsm.SecretID{}
	inCurrent := make(map[fsm.SecretID]bool, len(current))
	for _, id := range current {
		inCurrent[id] = true
	}
	inNext := make(map[fsm.SecretID]bool, len(next))
	for _, id := range next {
		inNext[id] = true
		if !inCurrent[id] {
			added = append(added, id)
		}
	}
	for _, id := range current {
		if !inNext[id] {
			removed = append(removed, id)
		}
	}
	return added, removed
}

// grantIDs validates a grant list and returns it sorted without duplicates.
func (s *Server) grantIDs(ac *adminCall, raw []string) ([]fsm.SecretID, error) {
	if len(raw) > maxGrantIDs {
		return nil, fail(ErrBadRequest, "secretIds lists %d ids; the maximum is %d", len(raw), maxGrantIDs)
	}
	ids := make([]fsm.SecretID, 0, len(raw))
	for i, id := range raw {
		if _, err := s.vaultSecret(ac, id); err != nil {
			return nil, fail(ErrNotFound, "secretIds[%d]: %s", i, clientMessage(err, 0))
		}
		ids = append(ids, fsm.SecretID(id))
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// getGrants serves GET …/machines/{machineId}/grants.
func (s *Server) getGrants(rc *request, ac *adminCall) error {
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	ids := entry.Machine.Grants
	if ids == nil {
		ids = []fsm.SecretID{}
	}
	return writeOK(rc, map[string]any{"secretIds": ids})
}
