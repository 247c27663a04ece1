package fsm

import (
	"slices"
	"time"

	"github.com/keyward/keyward/guard"
)

// applyRegisterMachine consumes one use of a bootstrap token and creates a
// pending machine. The token is checked first, so a bad request learns
// nothing else; no use is consumed unless the machine is created.
// kindPublicKeyOwner marks the record that reserves a public key for one
// machine. It has no in-memory index.
const kindPublicKeyOwner recordKind = 200

func applyRegisterMachine(t *tx, c *Command) (any, error) {
	var p RegisterMachinePayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	tok, ok := t.bootstrapToken(p.TokenHash)
	if err := checkTokenUsable(tok, ok, p.VaultID, c.Time); err != nil {
		return nil, err
	}
	if err := checkMachineID(p.MachineID); err != nil {
		return nil, err
	}
	if _, exists := t.machine(p.MachineID); exists {
		return nil, rejectf(ErrAlreadyExists, "machine %s already exists", p.MachineID)
	}
	key, err := guard.ParsePublicKey(p.PublicKey)
	if err != nil {
		return nil, rejectf(ErrInvalid, "public key: %v", err)
	}
	// Revoking a machine must revoke its key, so no two machines share
	// one. A key stays taken until its machine is purged.
	// The message does not name the owner, because the caller holds only a
	// registration token and must not learn other machines' ids.
	if _, taken := t.rawValue(publicKeyOwnerKey(key.Bytes())); taken {
		return nil, rejectf(ErrAlreadyExists, "public key is already registered to another machine; "+
			"generate a new keypair for this machine")
	}
	if err := checkText("hostname", p.Hostname, 0, MaxHostnameChars); err != nil {
		return nil, err
	}

	m := Machine{
		ID:           p.MachineID,
		VaultID:      tok.VaultID,
		PublicKey:    key.Bytes(),
		Status:       StatusPending,
		Hostname:     p.Hostname,
		RegisteredAt: c.Time,
		Projects:     []ProjectID{},
		Grants:       []SecretID{},
	}
	policy, err := fillFromToken(t, &m, tok, p, c.Time)
	if err != nil {
		return nil, err
	}

	used := *tok
	used.Uses++
	t.stage(kindBootstrapToken, bootstrapKey(used.Hash), used.Hash, &used, &used)
	t.stage(kindPublicKeyOwner, publicKeyOwnerKey(m.PublicKey), string(m.ID), m.ID, nil)
	return t.stageMachine(m, key, policy), nil
}

// fillFromToken sets the fields that depend on the token kind: name, kind,
// and for temp and enrollment tokens the expiry, purpose and guardrails.
func fillFromToken(t *tx, m *Machine, tok *BootstrapToken, p RegisterMachinePayload, now int64) (*guard.Policy, error) {
	switch tok.Kind {
	case TokenKindStandard:
		m.Kind = KindStandard
		m.Name = firstNonEmpty(p.Name, p.Hostname)
		return nil, checkText("machine name", m.Name, 1, MaxMachineNameChars)
	case TokenKindTemp:
		m.Kind = KindTemp
		m.Name = tok.MachineName
	case TokenKindEnrollment:
		// The enrollment token is the operator's approval given in advance,
		// so an ephemeral machine starts active with the token's projects
		// and grants. Grants on secrets deleted since the token was issued
		// are dropped.
		m.Kind = KindEphemeral
		m.Name = firstNonEmpty(p.Name, p.Hostname)
		if err := checkText("machine name", m.Name, 1, MaxMachineNameChars); err != nil {
			return nil, err
		}
		m.Status = StatusActive
		m.ApprovedAt = now
		m.Projects = append([]ProjectID{}, tok.ProjectIDs...)
		for _, id := range tok.SecretIDs {
			if _, ok := t.secret(id); ok {
				m.Grants = append(m.Grants, id)
			}
		}
	default:
		return nil, rejectf(ErrTokenInvalid, "bootstrap token %s has unknown kind %q", tok.ID, tok.Kind)
	}

	if tok.Lifetime == nil {
		return nil, rejectf(ErrTokenInvalid, "bootstrap token %s has no machine lifetime", tok.ID)
	}
	l := tok.Lifetime
	m.ExpiresAt = guard.AddLifetime(time.UnixMilli(now).UTC(), l.Months, l.Days, l.Hours).UnixMilli()
	m.Purpose = tok.Purpose
	m.Guardrails = tok.Guardrails
	return compileGuardrails(tok.Guardrails)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// statusTransitions lists, per action, the statuses it applies to and the
// status it sets. Deny sets revoked: a denied machine can never be
// approved later, and its record stays for the audit trail until purged.
var statusTransitions = map[string]struct {
	from []string
	to   string
}{
	ActionApprove: {[]string{StatusPending}, StatusActive},
	ActionDeny:    {[]string{StatusPending}, StatusRevoked},
	ActionRevoke:  {[]string{StatusPending, StatusActive, StatusDisabled, StatusExpired}, StatusRevoked},
	ActionDisable: {[]string{StatusActive}, StatusDisabled},
	ActionEnable:  {[]string{StatusDisabled}, StatusActive},
}

// applySetMachineStatus applies a status action. Revoking a revoked machine
// succeeds without change; any other action from a status it does not
// apply to is ErrNotAllowed. A machine past its expiry cannot be approved
// or enabled.
func applySetMachineStatus(t *tx, c *Command) (any, error) {
	var p SetMachineStatusPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	tr, ok := statusTransitions[p.Action]
	if !ok {
		return nil, rejectf(ErrInvalid, "machine action %q is not approve, deny, revoke, disable or enable", p.Action)
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	m := &e.Machine
	if p.Action == ActionRevoke && m.Status == StatusRevoked {
		return m, nil
	}
	if !slices.Contains(tr.from, m.Status) {
		return nil, rejectf(ErrNotAllowed, "cannot %s machine %s: it is %s", p.Action, m.ID, m.Status)
	}
	if (p.Action == ActionApprove || p.Action == ActionEnable) && m.Expired(c.Time) {
		return nil, rejectf(ErrNotAllowed, "cannot %s machine %s: it expired at %s", p.Action, m.ID, formatMs(m.ExpiresAt))
	}

	return t.updateMachine(e, func(m *Machine) {
		m.Status = tr.to
		if p.Action == ActionApprove {
			m.ApprovedAt = c.Time
		}
	}), nil
}

// applyAttachProject adds a project of the machine's vault to the machine.
// Attaching an attached project succeeds without change.
func applyAttachProject(t *tx, c *Command) (any, error) {
	var p MachineProjectPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	if proj, ok := t.project(p.ProjectID); !ok || proj.VaultID != p.VaultID {
		return nil, rejectf(ErrNotFound, "project %s not found in vault %s", p.ProjectID, p.VaultID)
	}
	if e.HasProject(p.ProjectID) {
		return &e.Machine, nil
	}
	if len(e.Machine.Projects) >= MaxMachineProjects {
		return nil, rejectf(ErrInvalid, "machine %s already has %d projects, the limit", p.MachineID, MaxMachineProjects)
	}

	return t.updateMachine(e, func(m *Machine) {
		m.Projects = append(m.Projects, p.ProjectID)
		slices.Sort(m.Projects)
	}), nil
}

// applyDetachProject removes a project from the machine, together with the
// machine's grants on that project's secrets, so re-attaching the project
// later does not silently bring old grants back. Detaching a project that
// is not attached succeeds without change.
func applyDetachProject(t *tx, c *Command) (any, error) {
	var p MachineProjectPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	if !e.HasProject(p.ProjectID) {
		return &e.Machine, nil
	}

	return t.updateMachine(e, func(m *Machine) {
		m.Projects = slices.DeleteFunc(m.Projects, func(id ProjectID) bool { return id == p.ProjectID })
		m.Grants = slices.DeleteFunc(m.Grants, func(id SecretID) bool {
			s, ok := t.secret(id)
			return ok && s.meta.ProjectID == p.ProjectID
		})
	}), nil
}

// applySetGrants replaces the machine's per-secret grants. Every secret
// must exist in the machine's vault; repeats are dropped.
func applySetGrants(t *tx, c *Command) (any, error) {
	var p SetGrantsPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if len(p.SecretIDs) > MaxGrants {
		return nil, rejectf(ErrInvalid, "%d grants, limit %d", len(p.SecretIDs), MaxGrants)
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	for _, id := range p.SecretIDs {
		if s, ok := t.secret(id); !ok || s.meta.VaultID != p.VaultID {
			return nil, rejectf(ErrNotFound, "secret %s not found in vault %s", id, p.VaultID)
		}
	}

	grants := slices.Clone(p.SecretIDs)
	slices.Sort(grants)
	grants = slices.Compact(grants)
	if grants == nil {
		grants = []SecretID{}
	}
	return t.updateMachine(e, func(m *Machine) { m.Grants = grants }), nil
}

// applyRenameMachine sets a machine's name. Renaming to the current name
// succeeds without change.
func applyRenameMachine(t *tx, c *Command) (any, error) {
	var p RenameMachinePayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if err := checkText("machine name", p.Name, 1, MaxMachineNameChars); err != nil {
		return nil, err
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	if e.Machine.Name == p.Name {
		return &e.Machine, nil
	}
	return t.updateMachine(e, func(m *Machine) { m.Name = p.Name }), nil
}

// applySetGuardrails replaces the machine's guardrails; nil or empty
// guardrails remove them. Any machine kind may carry guardrails.
func applySetGuardrails(t *tx, c *Command) (any, error) {
	var p SetGuardrailsPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	policy, err := compileGuardrails(p.Guardrails)
	if err != nil {
		return nil, err
	}

	m := cloneMachine(e.Machine)
	m.Guardrails = p.Guardrails
	if isEmptyGuardrails(p.Guardrails) {
		m.Guardrails = nil
	}
	return t.stageMachine(m, e.Key, policy), nil
}

// applyPurgeMachine removes an expired or revoked machine. The response
// body is the removed record, for the audit trail.
func applyPurgeMachine(t *tx, c *Command) (any, error) {
	var p PurgeMachinePayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	if s := e.Machine.Status; s != StatusExpired && s != StatusRevoked {
		return nil, rejectf(ErrNotAllowed, "cannot purge machine %s: it is %s; revoke it or let it expire first", p.MachineID, s)
	}

	t.stageDelete(kindMachine, machineKey(p.MachineID), string(p.MachineID))
	t.stageDelete(kindPublicKeyOwner, publicKeyOwnerKey(e.Machine.PublicKey), string(p.MachineID))
	return &e.Machine, nil
}
