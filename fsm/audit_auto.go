package fsm

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
)

// Apply writes the audit entry of every state-changing command itself, in
// the same Pebble batch as the change, so no change can be committed
// without its entry. Entries take their actor, source address, time and
// node from the command envelope and their details from the handler's
// result, which keeps them deterministic.

// auditBefore is the state that an entry compares the result against.
type auditBefore struct {
	machine *MachineEntry
}

// auditStateBefore captures the machine a machine command names, before
// the handler changes it.
func auditStateBefore(t *tx, c *Command) auditBefore {
	switch c.Type {
	case CmdSetMachineStatus, CmdAttachProject, CmdDetachProject, CmdSetGrants,
		CmdExtendMachine, CmdRevertExtension, CmdSetGuardrails, CmdPurgeMachine, CmdRenameMachine:
	default:
		return auditBefore{}
	}
	var ref struct {
		MachineID MachineID `json:"machineId"`
	}
	if json.Unmarshal(c.Payload, &ref) != nil {
		return auditBefore{}
	}
	e, _ := t.machine(ref.MachineID)
	return auditBefore{machine: e}
}

// auditor builds the entries of a successful command from its result.
type auditor func(t *tx, c *Command, before auditBefore, body any) []*AuditEntry

// auditors lists every command type. A nil auditor marks a command whose
// handler writes its own entries, or that changes only audit bookkeeping.
// A test checks that every handler has a row here.
var auditors = map[CommandType]auditor{
	CmdInit:                 auditInit,
	CmdCreateAdminToken:     auditAdminToken,
	CmdRevokeAdminToken:     auditAdminTokenRevoke,
	CmdCreateVault:          auditVault("vault_create", SeverityInfo),
	CmdSetVaultAllowlist:    auditVault("vault_allowlist_update", SeverityHigh),
	CmdCreateProject:        auditProject,
	CmdCreateSecret:         auditSecret("secret_create"),
	CmdUpdateSecret:         auditSecretUpdate,
	CmdDeleteSecret:         auditSecretDelete,
	CmdCreateBootstrapToken: auditTokenCreate,
	CmdRevokeBootstrapToken: auditTokenRevoke,
	CmdRegisterMachine:      auditRegister,
	CmdSetMachineStatus:     auditStatus,
	CmdAttachProject:        auditProjectLink("machine_project_attach"),
	CmdDetachProject:        auditProjectLink("machine_project_detach"),
	CmdSetGrants:            auditGrants,
	CmdExtendMachine:        auditExtend,
	CmdRevertExtension:      auditRevert,
	CmdSetGuardrails:        auditGuardrails,
	CmdExpireMachines:       auditExpire,
	CmdPurgeMachine:         auditPurge,
	CmdRenameMachine:        auditRename,

	CmdAuditAppend:       nil,
	CmdRecordLastSeen:    nil,
	CmdAuditCompact:      nil,
	CmdEmailDelivered:    nil,
	CmdExpiryWarning:     nil,
	CmdRecordDeliveries:  nil,
	CmdSetAuditRetention: auditSettings("audit_retention_update"),
	CmdSetEmailAlerts:    auditSettings("alert_email_update"),
	CmdSetExpiryWarnings: auditSettings("alert_expiry_warnings_update"),
	CmdCreateWebhook:     auditWebhook("webhook_create"),
	CmdUpdateWebhook:     auditWebhook("webhook_update"),
	CmdDeleteWebhook:     auditWebhook("webhook_delete"),
}

// auditCommand appends the entries of a successful command.
func auditCommand(t *tx, c *Command, before auditBefore, body any) {
	build := auditors[c.Type]
	if build == nil {
		return
	}
	t.appendAudit(build(t, c, before, body)...)
}

func one(e *AuditEntry) []*AuditEntry { return []*AuditEntry{e} }

func auditInit(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	tok := body.(*AdminToken)
	e := systemEntry(c, "cluster_init", SeverityHigh)
	e.Detail = "cluster initialised; first owner token issued"
	e.Fields = fieldsJSON(map[string]any{"tokenId": tok.ID})
	return one(e)
}

func auditAdminToken(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	tok := body.(*AdminToken)
	e := systemEntry(c, "admin_token_create", SeverityHigh)
	if len(tok.Vaults) == 1 && tok.Vaults[0] != "*" {
		e.VaultID = VaultID(tok.Vaults[0])
	}
	e.Detail = fmt.Sprintf("admin token %s (%s) created with role %s", tok.ID, tok.Name, tok.Role)
	e.Fields = fieldsJSON(map[string]any{
		"tokenId": tok.ID, "name": tok.Name, "role": tok.Role, "vaults": tok.Vaults, "expiresAt": tok.ExpiresAt,
	})
	return one(e)
}

func auditAdminTokenRevoke(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	tok := body.(*AdminToken)
	if tok.RevokedAt != c.Time {
		return nil // revoked before; nothing changed
	}
	e := systemEntry(c, "admin_token_revoke", SeverityHigh)
	if len(tok.Vaults) == 1 && tok.Vaults[0] != "*" {
		e.VaultID = VaultID(tok.Vaults[0])
	}
	e.Detail = fmt.Sprintf("admin token %s (%s) with role %s revoked", tok.ID, tok.Name, tok.Role)
	e.Fields = fieldsJSON(map[string]any{"tokenId": tok.ID, "name": tok.Name, "role": tok.Role, "vaults": tok.Vaults})
	return one(e)
}

func auditVault(action, severity string) auditor {
	return func(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
		v := body.(*Vault)
		e := systemEntry(c, action, severity)
		e.VaultID = v.ID
		e.Fields = fieldsJSON(map[string]any{"name": v.Name, "ipAllowlist": v.IPAllowlist})
		return one(e)
	}
}

func auditProject(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	p := body.(*Project)
	e := systemEntry(c, "project_create", SeverityInfo)
	e.VaultID = p.VaultID
	e.Fields = fieldsJSON(map[string]any{"projectId": p.ID, "name": p.Name})
	return one(e)
}

func auditSecret(action string) auditor {
	return func(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
		s := body.(*Secret)
		e := systemEntry(c, action, SeverityMedium)
		e.VaultID, e.SecretID = s.VaultID, s.ID
		e.Fields = fieldsJSON(map[string]any{"projectId": s.ProjectID, "name": s.Name, "type": s.Type, "version": s.Version})
		return one(e)
	}
}

func auditSecretUpdate(t *tx, c *Command, before auditBefore, body any) []*AuditEntry {
	entries := auditSecret("secret_update")(t, c, before, body)
	var p UpdateSecretPayload
	if json.Unmarshal(c.Payload, &p) != nil || p.RestoredVersion == 0 {
		return entries
	}
	s := body.(*Secret)
	entries[0].Fields = fieldsJSON(map[string]any{
		"projectId": s.ProjectID, "name": s.Name, "type": s.Type, "version": s.Version,
		"restoredVersion": p.RestoredVersion,
	})
	return entries
}

func auditSecretDelete(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	d := body.(*DeletedSecret)
	e := systemEntry(c, "secret_delete", SeverityHigh)
	e.VaultID, e.SecretID = d.Secret.VaultID, d.Secret.ID
	e.Fields = fieldsJSON(map[string]any{
		"projectId": d.Secret.ProjectID, "name": d.Secret.Name, "versions": d.Secret.Version,
		"revokedGrants": d.RevokedGrants,
	})
	return one(e)
}

// tokenAction names the create or revoke action of a bootstrap token kind.
func tokenAction(kind, verb string) string {
	switch kind {
	case TokenKindTemp:
		return "temp_bootstrap_token_" + verb
	case TokenKindEnrollment:
		return "enrollment_token_" + verb
	}
	return "bootstrap_token_" + verb
}

func tokenFields(tok *BootstrapToken) json.RawMessage {
	fields := map[string]any{
		"tokenId": tok.ID, "kind": tok.Kind, "expiresAt": tok.ExpiresAt, "maxUses": tok.MaxUses,
		"machineName": tok.MachineName, "purpose": tok.Purpose, "lifetime": tok.Lifetime, "guardrails": tok.Guardrails,
	}
	if tok.Kind == TokenKindEnrollment {
		fields["projectIds"] = tok.ProjectIDs
		fields["secretIds"] = tok.SecretIDs
	}
	return fieldsJSON(fields)
}

func auditTokenCreate(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	tok := body.(*BootstrapToken)
	e := systemEntry(c, tokenAction(tok.Kind, "create"), SeverityMedium)
	e.VaultID = tok.VaultID
	e.Fields = tokenFields(tok)
	return one(e)
}

func auditTokenRevoke(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	tok := body.(*BootstrapToken)
	if tok.RevokedAt != c.Time {
		return nil // revoked before; nothing changed
	}
	e := systemEntry(c, tokenAction(tok.Kind, "revoke"), SeverityMedium)
	e.VaultID = tok.VaultID
	e.Fields = tokenFields(tok)
	return one(e)
}

func auditRegister(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	m := body.(*Machine)
	action := "machine_register"
	if m.Kind == KindTemp {
		action = "temp_machine_create"
	}
	e := machineEntry(c, action, SeverityMedium, m)
	e.ActorKind, e.ActorID = ActorMachine, string(m.ID)
	e.Detail = fmt.Sprintf("%s machine %q registered from host %q", m.Kind, m.Name, m.Hostname)
	e.Fields = fieldsJSON(map[string]any{
		"name": m.Name, "kind": m.Kind, "hostname": m.Hostname, "expiresAt": m.ExpiresAt,
		"purpose": m.Purpose, "guardrails": m.Guardrails,
	})
	return one(e)
}

func machineEntry(c *Command, action, severity string, m *Machine) *AuditEntry {
	e := systemEntry(c, action, severity)
	e.VaultID, e.MachineID = m.VaultID, m.ID
	return e
}

// unchanged reports whether a machine command left the record as it was
// (an idempotent repeat), which needs no entry.
func unchanged(before auditBefore, after *Machine) bool {
	return before.machine != nil && reflect.DeepEqual(before.machine.Machine, *after)
}

func auditStatus(_ *tx, c *Command, before auditBefore, body any) []*AuditEntry {
	m := body.(*Machine)
	if unchanged(before, m) {
		return nil
	}
	var p SetMachineStatusPayload
	_ = json.Unmarshal(c.Payload, &p)
	severity := SeverityMedium
	if p.Action == ActionRevoke {
		severity = SeverityHigh
	}
	e := machineEntry(c, "machine_"+p.Action, severity, m)
	e.Fields = fieldsJSON(map[string]any{"from": before.machine.Machine.Status, "to": m.Status, "name": m.Name})
	return one(e)
}

func auditRename(_ *tx, c *Command, before auditBefore, body any) []*AuditEntry {
	m := body.(*Machine)
	if unchanged(before, m) {
		return nil
	}
	e := machineEntry(c, "machine_rename", SeverityLow, m)
	e.Fields = fieldsJSON(map[string]any{"from": before.machine.Machine.Name, "to": m.Name})
	return one(e)
}

func auditProjectLink(action string) auditor {
	return func(_ *tx, c *Command, before auditBefore, body any) []*AuditEntry {
		m := body.(*Machine)
		if unchanged(before, m) {
			return nil
		}
		var p MachineProjectPayload
		_ = json.Unmarshal(c.Payload, &p)
		e := machineEntry(c, action, SeverityMedium, m)
		e.Fields = fieldsJSON(map[string]any{"projectId": p.ProjectID})
		return one(e)
	}
}

func auditGrants(_ *tx, c *Command, before auditBefore, body any) []*AuditEntry {
	m := body.(*Machine)
	var old []SecretID
	if before.machine != nil {
		old = before.machine.Machine.Grants
	}
	added := slices.DeleteFunc(slices.Clone(m.Grants), func(id SecretID) bool { return slices.Contains(old, id) })
	removed := slices.DeleteFunc(slices.Clone(old), func(id SecretID) bool { return slices.Contains(m.Grants, id) })

	var out []*AuditEntry
	for _, change := range []struct {
		action string
		ids    []SecretID
	}{{"permission_grant", added}, {"permission_revoke", removed}} {
		if len(change.ids) == 0 {
			continue
		}
		e := machineEntry(c, change.action, SeverityMedium, m)
		if len(change.ids) == 1 {
			e.SecretID = change.ids[0]
		}
		e.Fields = fieldsJSON(map[string]any{"secretIds": change.ids})
		out = append(out, e)
	}
	return out
}

func auditExtend(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	m := body.(*Machine)
	x := m.Extensions[len(m.Extensions)-1]
	e := machineEntry(c, "temp_machine_extend", SeverityMedium, m)
	e.Detail = fmt.Sprintf("expiry moved from %s to %s: %s", formatMs(x.PreviousExpiresAt), formatMs(x.NewExpiresAt), x.Reason)
	e.Fields = fieldsJSON(map[string]any{
		"extensionId": x.ID, "oldExpiresAt": x.PreviousExpiresAt, "newExpiresAt": x.NewExpiresAt, "reason": x.Reason,
	})
	return one(e)
}

func auditRevert(_ *tx, c *Command, before auditBefore, body any) []*AuditEntry {
	m := body.(*Machine)
	i := slices.IndexFunc(m.Extensions, func(x Extension) bool { return x.RevertedAt == c.Time && x.RevertedBy == c.Actor.ID })
	fields := map[string]any{"newExpiresAt": m.ExpiresAt, "reason": "", "expired": m.Status == StatusExpired}
	if before.machine != nil {
		fields["oldExpiresAt"] = before.machine.Machine.ExpiresAt
	}
	if i >= 0 {
		fields["extensionId"], fields["reason"] = m.Extensions[i].ID, m.Extensions[i].RevertReason
	}
	e := machineEntry(c, "temp_machine_extend_revert", SeverityMedium, m)
	e.Fields = fieldsJSON(fields)
	out := one(e)
	if m.Status == StatusExpired {
		out = append(out, expireEntry(c, m))
	}
	return out
}

func auditGuardrails(_ *tx, c *Command, before auditBefore, body any) []*AuditEntry {
	m := body.(*Machine)
	if unchanged(before, m) {
		return nil
	}
	fields := map[string]any{"guardrails": m.Guardrails}
	if before.machine != nil {
		fields["previous"] = before.machine.Machine.Guardrails
	}
	e := machineEntry(c, "temp_machine_guardrails_update", SeverityMedium, m)
	e.Fields = fieldsJSON(fields)
	return one(e)
}

// expireEntry is the entry of a machine whose expiry passed. The sweep and
// a revert to a past expiry write it. Both skip a machine whose status is
// already expired, so each machine gets one such entry.
func expireEntry(c *Command, m *Machine) *AuditEntry {
	action := "machine_expire"
	if m.Kind == KindTemp {
		action = "temp_machine_expire"
	}
	e := machineEntry(c, action, SeverityMedium, m)
	e.Detail = fmt.Sprintf("machine %q expired at %s", m.Name, formatMs(m.ExpiresAt))
	e.Fields = fieldsJSON(map[string]any{"expiresAt": m.ExpiresAt, "name": m.Name})
	return e
}

func auditExpire(t *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	res := body.(ExpireResult)
	out := make([]*AuditEntry, 0, len(res.Expired))
	for _, id := range res.Expired {
		if e, ok := t.machine(id); ok {
			out = append(out, expireEntry(c, &e.Machine))
		}
	}
	return out
}

func auditPurge(t *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
	m := body.(*Machine)
	t.stageDelete(kindExpiryWarning, expiryWarningKey(m.ID), string(m.ID))
	e := machineEntry(c, "machine_purge", SeverityHigh, m)
	e.Detail = fmt.Sprintf("%s machine %q (%s) purged", m.Kind, m.Name, m.Status)
	e.Fields = fieldsJSON(map[string]any{"name": m.Name, "kind": m.Kind, "status": m.Status})
	return one(e)
}

func auditSettings(action string) auditor {
	return func(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
		s := body.(*AlertSettings)
		e := systemEntry(c, action, SeverityMedium)
		e.VaultID = s.VaultID
		e.Fields = fieldsJSON(map[string]any{
			"retentionDays": s.Retention(), "email": s.Email, "expiryWarnings": s.ExpiryWarnings,
		})
		return one(e)
	}
}

func auditWebhook(action string) auditor {
	return func(_ *tx, c *Command, _ auditBefore, body any) []*AuditEntry {
		w := body.(*Webhook)
		e := systemEntry(c, action, SeverityMedium)
		e.VaultID = w.VaultID
		e.Fields = fieldsJSON(map[string]any{"webhookId": w.ID, "url": w.URL, "actions": w.Actions, "enabled": w.Enabled})
		return one(e)
	}
}
