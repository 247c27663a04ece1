package fsm

import (
	"encoding/json"

	"github.com/keyward/keyward/guard"
)

// CommandType names a replicated command.
type CommandType string

// Command types. Every input that depends on the clock, on randomness or on
// a secret (ids, times, token hashes, sealed values) is chosen by the node
// that proposes the command, so Apply stays deterministic.
const (
	CmdInit                 CommandType = "init"
	CmdCreateAdminToken     CommandType = "admin_token.create"
	CmdCreateVault          CommandType = "vault.create"
	CmdSetVaultAllowlist    CommandType = "vault.allowlist"
	CmdCreateProject        CommandType = "project.create"
	CmdCreateSecret         CommandType = "secret.create"
	CmdUpdateSecret         CommandType = "secret.update"
	CmdCreateBootstrapToken CommandType = "bootstrap_token.create"
	CmdRevokeBootstrapToken CommandType = "bootstrap_token.revoke"
	CmdRegisterMachine      CommandType = "machine.register"
	CmdSetMachineStatus     CommandType = "machine.status"
	CmdAttachProject        CommandType = "machine.attach_project"
	CmdDetachProject        CommandType = "machine.detach_project"
	CmdSetGrants            CommandType = "machine.grants"
	CmdExtendMachine        CommandType = "machine.extend"
	CmdRevertExtension      CommandType = "machine.revert"
	CmdSetGuardrails        CommandType = "machine.guardrails"
	CmdExpireMachines       CommandType = "machine.expire"
	CmdPurgeMachine         CommandType = "machine.purge"
	CmdRenameMachine        CommandType = "machine.rename"
	CmdRevokeAdminToken     CommandType = "admin_token.revoke"
	CmdDeleteSecret         CommandType = "secret.delete"
	CmdRecordLastSeen       CommandType = "machine.last_seen"

	// Audit and alerting commands; their payloads are in audit_commands.go.
	CmdAuditAppend       CommandType = "audit.append"
	CmdAuditCompact      CommandType = "audit.compact"
	CmdSetAuditRetention CommandType = "audit.retention"
	CmdSetEmailAlerts    CommandType = "alerts.email"
	CmdSetExpiryWarnings CommandType = "alerts.expiry_warnings"
	CmdEmailDelivered    CommandType = "alerts.email_delivered"
	CmdExpiryWarning     CommandType = "machine.expiry_warning"
	CmdCreateWebhook     CommandType = "webhook.create"
	CmdUpdateWebhook     CommandType = "webhook.update"
	CmdDeleteWebhook     CommandType = "webhook.delete"
	CmdRecordDeliveries  CommandType = "webhook.deliveries"
)

// Actor identifies who caused a command, for the audit trail.
type Actor struct {
	Kind     string `json:"kind"` // user, machine, system or external
	ID       string `json:"id"`
	SourceIP string `json:"sourceIp"`
}

// Command is the envelope of every Raft log entry. Time is the proposer's
// clock in Unix milliseconds and is the only "now" that Apply may use.
// RequestID, when set, makes the command idempotent: a second entry with a
// RequestID already applied returns the first entry's Response unchanged.
type Command struct {
	Type      CommandType `json:"type"`
	RequestID string      `json:"requestId,omitempty"`
	// RequestHash fingerprints the client request behind a client-chosen
	// RequestID (method, path and body). A later command with the same
	// RequestID and another hash is rejected with ErrConflict instead of
	// returning the first command's response, so reusing an idempotency
	// key for a different write cannot silently drop that write.
	RequestHash string          `json:"requestHash,omitempty"`
	Time        int64           `json:"time"`
	Node        string          `json:"node"`
	Actor       Actor           `json:"actor"`
	Payload     json.RawMessage `json:"payload"`
}

// InitPayload creates the first owner token of a new cluster.
// RootKeyCheck is a value sealed under the proposer's root key
// (seal.Keyring.NewRootKeyCheck), against which every node tests its own
// root key. It is optional, so that an init proposed by an older node
// still applies.
type InitPayload struct {
	TokenID      string `json:"tokenId"`
	TokenHash    string `json:"tokenHash"`
	RootKeyCheck []byte `json:"rootKeyCheck,omitempty"`
}

// CreateAdminTokenPayload stores a new admin token.
type CreateAdminTokenPayload struct {
	Token AdminToken `json:"token"`
}

// CreateVaultPayload creates a vault.
type CreateVaultPayload struct {
	ID   VaultID `json:"id"`
	Name string  `json:"name"`
}

// SetVaultAllowlistPayload replaces a vault's IP allowlist.
type SetVaultAllowlistPayload struct {
	VaultID     VaultID     `json:"vaultId"`
	IPAllowlist IPAllowlist `json:"ipAllowlist"`
}

// CreateProjectPayload creates a project with its wrapped project key.
type CreateProjectPayload struct {
	ID         ProjectID `json:"id"`
	VaultID    VaultID   `json:"vaultId"`
	Name       string    `json:"name"`
	WrappedKey []byte    `json:"wrappedKey"`
}

// CreateSecretPayload creates a secret at version 1.
type CreateSecretPayload struct {
	ID         SecretID  `json:"id"`
	ProjectID  ProjectID `json:"projectId"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	FieldNames []string  `json:"fieldNames,omitempty"`
	Sealed     Sealed    `json:"sealed"`
}

// UpdateSecretPayload stores a new version of a secret. The version number
// is the current one plus one, computed in Apply. The value is sealed for
// the version the proposer expects (ExpectedVersion), and Apply rejects the
// command with ErrConflict when another update came first.
type UpdateSecretPayload struct {
	ID              SecretID `json:"id"`
	ExpectedVersion int      `json:"expectedVersion"`
	FieldNames      []string `json:"fieldNames,omitempty"`
	Sealed          Sealed   `json:"sealed"`
	// RestoredVersion is set by a rollback: the version whose sealed value
	// the new version copies. It is kept in the audit entry.
	RestoredVersion int `json:"restoredVersion,omitempty"`
}

// CreateBootstrapTokenPayload stores a registration token.
type CreateBootstrapTokenPayload struct {
	Token BootstrapToken `json:"token"`
}

// RevokeBootstrapTokenPayload revokes a registration token by its public id.
type RevokeBootstrapTokenPayload struct {
	VaultID VaultID `json:"vaultId"`
	ID      string  `json:"id"`
}

// RegisterMachinePayload consumes one use of a bootstrap token and creates a
// pending machine. Apply checks the token against Command.Time: it must
// exist, belong to VaultID when set, be unrevoked, unexpired and not used up.
type RegisterMachinePayload struct {
	TokenHash string    `json:"tokenHash"`
	VaultID   VaultID   `json:"vaultId,omitempty"`
	MachineID MachineID `json:"machineId"`
	PublicKey []byte    `json:"publicKey"`
	Hostname  string    `json:"hostname"`
	Name      string    `json:"name,omitempty"`
}

// DeleteSecretPayload deletes a secret with every stored version and
// removes it from the grants of every machine of its vault.
type DeleteSecretPayload struct {
	VaultID VaultID  `json:"vaultId"`
	ID      SecretID `json:"id"`
}

// RecordLastSeenPayload carries the last signed request each node
// accepted per machine since its previous report.
type RecordLastSeenPayload struct {
	Entries []LastSeen `json:"entries"`
}

// LastSeen is one machine's latest accepted signed request: when, in Unix
// milliseconds, and from which client address.
type LastSeen struct {
	MachineID MachineID `json:"machineId"`
	At        int64     `json:"at"`
	IP        string    `json:"ip"`
}

// RevokeAdminTokenPayload revokes an admin token by its public id.
type RevokeAdminTokenPayload struct {
	ID string `json:"id"`
}

// RenameMachinePayload gives a machine a new display name. Names need not
// be unique; the id stays the machine's identity.
type RenameMachinePayload struct {
	VaultID   VaultID   `json:"vaultId"`
	MachineID MachineID `json:"machineId"`
	Name      string    `json:"name"`
}

// Machine status actions.
const (
	ActionApprove = "approve"
	ActionDeny    = "deny"
	ActionRevoke  = "revoke"
	ActionDisable = "disable"
	ActionEnable  = "enable"
)

// SetMachineStatusPayload applies a status action to a machine.
type SetMachineStatusPayload struct {
	VaultID   VaultID   `json:"vaultId"`
	MachineID MachineID `json:"machineId"`
	Action    string    `json:"action"`
}

// MachineProjectPayload attaches or detaches a project.
type MachineProjectPayload struct {
	VaultID   VaultID   `json:"vaultId"`
	MachineID MachineID `json:"machineId"`
	ProjectID ProjectID `json:"projectId"`
}

// SetGrantsPayload replaces a machine's per-secret grants.
type SetGrantsPayload struct {
	VaultID   VaultID    `json:"vaultId"`
	MachineID MachineID  `json:"machineId"`
	SecretIDs []SecretID `json:"secretIds"`
}

// ExtendMachinePayload moves a machine's expiry later. NewExpiresAt and Cap
// (now plus twelve calendar months) are computed by the proposer; Apply
// rejects the command when NewExpiresAt is not after the current expiry or
// is over Cap.
type ExtendMachinePayload struct {
	VaultID      VaultID   `json:"vaultId"`
	MachineID    MachineID `json:"machineId"`
	ExtensionID  string    `json:"extensionId"`
	NewExpiresAt int64     `json:"newExpiresAt"`
	// ExtendByMs, when set in place of NewExpiresAt, moves the expiry that
	// many milliseconds past the one Apply finds. A node that has not yet
	// applied an earlier extension would otherwise compute a new expiry
	// from an old one.
	ExtendByMs int64  `json:"extendByMs,omitempty"`
	Cap        int64  `json:"cap"`
	Reason     string `json:"reason"`
}

// RevertExtensionPayload undoes the latest un-reverted extension.
type RevertExtensionPayload struct {
	VaultID   VaultID   `json:"vaultId"`
	MachineID MachineID `json:"machineId"`
	Reason    string    `json:"reason"`
}

// SetGuardrailsPayload replaces a machine's guardrails.
type SetGuardrailsPayload struct {
	VaultID    VaultID           `json:"vaultId"`
	MachineID  MachineID         `json:"machineId"`
	Guardrails *guard.Guardrails `json:"guardrails"`
}

// ExpireMachinesPayload marks machines expired. Apply skips a machine that
// is already expired or whose expiry is after Command.Time, so a sweep that
// runs twice expires each machine once.
type ExpireMachinesPayload struct {
	MachineIDs []MachineID `json:"machineIds"`
}

// PurgeMachinePayload removes a machine record.
type PurgeMachinePayload struct {
	VaultID   VaultID   `json:"vaultId"`
	MachineID MachineID `json:"machineId"`
}
