package fsm

// handler applies one command inside a tx. It must validate everything
// before staging any write, read the clock only from Command.Time, and
// never iterate a map where the order could reach the state or the
// response. It returns the object to send back as Response.Body, or an
// error made with rejectf.
type handler func(t *tx, c *Command) (any, error)

// handlers maps each command type to its handler.
var handlers = map[CommandType]handler{
	CmdInit:                 applyInit,
	CmdCreateAdminToken:     applyCreateAdminToken,
	CmdRevokeAdminToken:     applyRevokeAdminToken,
	CmdCreateVault:          applyCreateVault,
	CmdSetVaultAllowlist:    applySetVaultAllowlist,
	CmdCreateProject:        applyCreateProject,
	CmdCreateSecret:         applyCreateSecret,
	CmdUpdateSecret:         applyUpdateSecret,
	CmdDeleteSecret:         applyDeleteSecret,
	CmdCreateBootstrapToken: applyCreateBootstrapToken,
	CmdRevokeBootstrapToken: applyRevokeBootstrapToken,
	CmdRegisterMachine:      applyRegisterMachine,
	CmdSetMachineStatus:     applySetMachineStatus,
	CmdAttachProject:        applyAttachProject,
	CmdDetachProject:        applyDetachProject,
	CmdSetGrants:            applySetGrants,
	CmdExtendMachine:        applyExtendMachine,
	CmdRevertExtension:      applyRevertExtension,
	CmdSetGuardrails:        applySetGuardrails,
	CmdExpireMachines:       applyExpireMachines,
	CmdPurgeMachine:         applyPurgeMachine,
	CmdRenameMachine:        applyRenameMachine,
	CmdRecordLastSeen:       applyRecordLastSeen,

	CmdAuditAppend:       applyAuditAppend,
	CmdAuditCompact:      applyAuditCompact,
	CmdSetAuditRetention: applySetAuditRetention,
	CmdSetEmailAlerts:    applySetEmailAlerts,
	CmdSetExpiryWarnings: applySetExpiryWarnings,
	CmdEmailDelivered:    applyEmailDelivered,
	CmdExpiryWarning:     applyExpiryWarning,
	CmdCreateWebhook:     applyCreateWebhook,
	CmdUpdateWebhook:     applyUpdateWebhook,
	CmdDeleteWebhook:     applyDeleteWebhook,
	CmdRecordDeliveries:  applyRecordDeliveries,
}
