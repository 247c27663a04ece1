package fsm

import (
	"time"

	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/guard"
)

// scenario returns a log that uses every command type, with rejected
// commands, retried request ids, a configuration entry and a clock that
// moves past an expiry and the idempotency window. Tests apply it to
// several stores in different ways and compare the results.
func scenario(p *proposer) []*raft.Log {
	hour := int64(time.Hour / time.Millisecond)
	var logs []*raft.Log
	add := func(typ CommandType, payload any) { logs = append(logs, p.entry(typ, payload)) }
	addID := func(typ CommandType, id string, payload any) { logs = append(logs, p.entryWithID(typ, id, payload)) }

	add(CmdInit, InitPayload{TokenID: "tok_root", TokenHash: tokenHash("root")})
	add(CmdInit, InitPayload{TokenID: "tok_again", TokenHash: tokenHash("again")})
	add(CmdCreateVault, CreateVaultPayload{ID: vaultA, Name: "production"})
	add(CmdCreateVault, CreateVaultPayload{ID: vaultB, Name: "staging"})
	// The webhook's cursor starts at entry 3, the creation of vault B; its
	// own creation is entry 4.
	add(CmdCreateWebhook, CreateWebhookPayload{Webhook: p.webhook(vaultA, webhookA, []string{"*"})})
	add(CmdCreateWebhook, CreateWebhookPayload{Webhook: p.webhook(vaultA, webhookA2, []string{"secret_read"})})
	add(CmdUpdateWebhook, UpdateWebhookPayload{VaultID: vaultA, ID: webhookA2, Enabled: new(bool)})
	add(CmdDeleteWebhook, DeleteWebhookPayload{VaultID: vaultA, ID: webhookA2})
	add(CmdRecordDeliveries, RecordDeliveriesPayload{VaultID: vaultA, WebhookID: webhookA, Cursor: 4, DisableAfter: 2,
		Records: []DeliveryRecord{{DeliveryID: "whk_aaaaaaaaaaaaaaaa-4", WebhookID: webhookA, Seq: 4, Event: "webhook_create",
			Status: DeliveryFailed, Attempts: 5, StatusCode: 500, Error: "HTTP 500", DurationMs: 10}}})
	add(CmdCreateAdminToken, CreateAdminTokenPayload{Token: AdminToken{ID: "tok_ops", Hash: tokenHash("ops"), Name: "ops", Role: RoleOperator, Vaults: []string{string(vaultA)}}})
	add(CmdSetVaultAllowlist, SetVaultAllowlistPayload{VaultID: vaultA, IPAllowlist: IPAllowlist{Enabled: true, Entries: []IPAllowEntry{{CIDR: "198.51.100.0/24", Label: "dc"}, {CIDR: "203.0.113.0/24"}}}})
	add(CmdCreateProject, CreateProjectPayload{ID: projA, VaultID: vaultA, Name: "payments", WrappedKey: p.projectKey(projA)})
	add(CmdCreateProject, CreateProjectPayload{ID: projB, VaultID: vaultB, Name: "payments", WrappedKey: p.projectKey(projB)})
	add(CmdCreateSecret, CreateSecretPayload{ID: secA, ProjectID: projA, Name: "db", Type: SecretTypeSecret, Sealed: p.seal(projA, secA, "v1")})
	add(CmdCreateSecret, CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "api", Type: SecretTypeStructured, FieldNames: []string{"key"}, Sealed: p.seal(projA, secA2, `{"key":"k"}`)})
	add(CmdCreateSecret, CreateSecretPayload{ID: secB, ProjectID: projB, Name: "db", Type: SecretTypeSecret, Sealed: p.seal(projB, secB, "b")})
	addID(CmdUpdateSecret, "req-update", UpdateSecretPayload{ID: secA, ExpectedVersion: 1, Sealed: p.seal(projA, secA, "v2")})
	addID(CmdUpdateSecret, "req-update", UpdateSecretPayload{ID: secA, ExpectedVersion: 1, Sealed: p.seal(projA, secA, "v2")})
	add(CmdUpdateSecret, UpdateSecretPayload{ID: secA, ExpectedVersion: 1, Sealed: p.seal(projA, secA, "stale")})

	add(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(p.now, vaultA, "std", TokenKindStandard, nil)})
	add(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(p.now, vaultA, "temp", TokenKindTemp, func(b *BootstrapToken) {
		b.Guardrails = &guard.Guardrails{IPAllowlist: &guard.IPAxis{CIDRs: []string{"203.0.113.0/24"}}}
	})})
	add(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(p.now, vaultA, "temp2", TokenKindTemp, nil)})
	add(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(p.now, vaultA, "revoked", TokenKindStandard, nil)})
	add(CmdRevokeBootstrapToken, RevokeBootstrapTokenPayload{VaultID: vaultA, ID: "bt_revoked"})

	addID(CmdRegisterMachine, "req-register", RegisterMachinePayload{TokenHash: tokenHash("std"), VaultID: vaultA, MachineID: machine1, PublicKey: publicKey(1), Hostname: "web-1"})
	addID(CmdRegisterMachine, "req-register", RegisterMachinePayload{TokenHash: tokenHash("std"), VaultID: vaultA, MachineID: machine1, PublicKey: publicKey(1), Hostname: "web-1"})
	add(CmdRegisterMachine, RegisterMachinePayload{TokenHash: tokenHash("temp"), MachineID: machine2, PublicKey: publicKey(2), Hostname: "laptop"})
	add(CmdRegisterMachine, RegisterMachinePayload{TokenHash: tokenHash("temp2"), MachineID: machine3, PublicKey: publicKey(3), Hostname: "runner"})
	add(CmdRegisterMachine, RegisterMachinePayload{TokenHash: tokenHash("revoked"), MachineID: "44444444-4444-4444-8444-444444444444", PublicKey: publicKey(4), Hostname: "x"})

	logs = append(logs, &raft.Log{Index: p.index + 1, Term: 1, Type: raft.LogConfiguration, Data: []byte("config")})
	p.index++

	for _, id := range []MachineID{machine1, machine2, machine3} {
		add(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: id, Action: ActionApprove})
	}
	add(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: ActionDeny})
	add(CmdAttachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine1, ProjectID: projA})
	add(CmdAttachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine2, ProjectID: projA})
	add(CmdAttachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine2, ProjectID: projB})
	add(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1, SecretIDs: []SecretID{secA2, secA}})
	add(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine2, SecretIDs: []SecretID{secA}})
	add(CmdDetachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine1, ProjectID: projA})
	add(CmdSetGuardrails, SetGuardrailsPayload{VaultID: vaultA, MachineID: machine2, Guardrails: &guard.Guardrails{
		Countries:  &guard.CountryAxis{Codes: []string{"NO"}},
		TimeWindow: &guard.WindowAxis{Start: "22:00", End: "06:00", Timezone: "Europe/Oslo", Days: []string{"mon", "fri"}},
	}})
	add(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: ActionDisable})

	p.now += hour
	expiry := p.now + 60*24*hour
	capMs := guard.ExtensionCap(time.UnixMilli(p.now)).UnixMilli()
	addID(CmdExtendMachine, "req-extend", ExtendMachinePayload{VaultID: vaultA, MachineID: machine2, ExtensionID: "e1", NewExpiresAt: expiry + hour, Cap: capMs, Reason: "overran"})
	addID(CmdExtendMachine, "req-extend", ExtendMachinePayload{VaultID: vaultA, MachineID: machine2, ExtensionID: "e1", NewExpiresAt: expiry + hour, Cap: capMs, Reason: "overran"})
	add(CmdExtendMachine, ExtendMachinePayload{VaultID: vaultA, MachineID: machine2, ExtensionID: "e2", NewExpiresAt: capMs + 1, Cap: capMs, Reason: "too far"})
	add(CmdExtendMachine, ExtendMachinePayload{VaultID: vaultA, MachineID: machine2, ExtensionID: "e3", NewExpiresAt: capMs, Cap: capMs, Reason: "to the cap"})
	add(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine2, Reason: "undo"})
	add(CmdExtendMachine, ExtendMachinePayload{VaultID: vaultA, MachineID: machine3, ExtensionID: "e1", NewExpiresAt: expiry, Cap: capMs, Reason: "one more month"})

	// Move past machine 3's original expiry and the idempotency window.
	p.now += 40 * 24 * hour
	add(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine3})
	add(CmdSetAuditRetention, SetAuditRetentionPayload{VaultID: vaultA, Days: 30})
	add(CmdSetEmailAlerts, SetEmailAlertsPayload{VaultID: vaultA, Email: EmailAlerts{To: []string{"ops@example.com"}, Actions: []string{"temp_machine_blocked"}}})
	add(CmdSetExpiryWarnings, SetExpiryWarningsPayload{VaultID: vaultA, Offsets: []int64{30 * 24 * hour, hour}})
	add(CmdExpiryWarning, ExpiryWarningPayload{VaultID: vaultA, MachineID: machine2, OffsetMs: 30 * 24 * hour, ExpiresAt: expiry + hour})
	add(CmdExpiryWarning, ExpiryWarningPayload{VaultID: vaultA, MachineID: machine2, OffsetMs: 30 * 24 * hour, ExpiresAt: expiry + hour})
	add(CmdAuditAppend, AuditAppendPayload{Entries: []AuditEntry{blockedEntry(p.now, machine2, 1), blockedEntry(p.now, machine2, 41)}})
	add(CmdEmailDelivered, EmailDeliveredPayload{VaultID: vaultA, Cursor: 3})
	add(CmdAuditCompact, AuditCompactPayload{VaultID: vaultA})
	add(CmdExpireMachines, ExpireMachinesPayload{MachineIDs: []MachineID{machine3, machine2, machine1}})
	add(CmdExpireMachines, ExpireMachinesPayload{MachineIDs: []MachineID{machine3, machine2}})
	add(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: ActionRevoke})
	add(CmdPurgeMachine, PurgeMachinePayload{VaultID: vaultA, MachineID: machine1})
	addID(CmdUpdateSecret, "req-update", UpdateSecretPayload{ID: secA, ExpectedVersion: 2, Sealed: p.seal(projA, secA, "v3")})
	logs = append(logs, p.entry("machine.unknown", struct{}{}))
	logs = append(logs, &raft.Log{Index: p.index + 1, Term: 2, Type: raft.LogCommand, Data: []byte("{not json")})
	p.index++
	return logs
}
