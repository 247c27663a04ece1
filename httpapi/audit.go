package httpapi

import (
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/cluster/audit"
)

// Audit actions emitted by this package.
const (
	ActionAuthFailure             = "auth_failure"
	ActionVaultIPBlocked          = "vault_ip_blocked"
	ActionTempMachineBlocked      = "temp_machine_blocked"
	ActionTempMachineWouldBlock   = "temp_machine_would_block"
	ActionSecretRead              = "secret_read"
	ActionSecretReadDenied        = "secret_read_denied"
	ActionSecretCreate            = "secret_create"
	ActionSecretUpdate            = "secret_update"
	ActionSecretDelete            = "secret_delete"
	ActionMachineRegister         = "machine_register"
	ActionTempMachineCreate       = "temp_machine_create"
	ActionMachinePurge            = "machine_purge"
	ActionMachineRename           = "machine_rename"
	ActionPermissionGrant         = "permission_grant"
	ActionPermissionRevoke        = "permission_revoke"
	ActionProjectAttach           = "machine_project_attach"
	ActionProjectDetach           = "machine_project_detach"
	ActionBootstrapTokenCreate    = "bootstrap_token_create"
	ActionBootstrapTokenRevoke    = "bootstrap_token_revoke"
	ActionTempTokenCreate         = "temp_bootstrap_token_create"
	ActionTempTokenRevoke         = "temp_bootstrap_token_revoke"
	ActionEnrollmentTokenCreate   = "enrollment_token_create"
	ActionEnrollmentTokenRevoke   = "enrollment_token_revoke"
	ActionTempMachineExtend       = "temp_machine_extend"
	ActionTempMachineExtendRevert = "temp_machine_extend_revert"
	ActionTempMachineGuardrails   = "temp_machine_guardrails_update"
	ActionVaultCreate             = "vault_create"
	ActionVaultAllowlistUpdate    = "vault_allowlist_update"
	ActionProjectCreate           = "project_create"
	ActionAdminTokenCreate        = "admin_token_create"
	ActionAdminTokenRevoke        = "admin_token_revoke"
	ActionClusterInit             = "cluster_init"
)

// Machine status actions are audited as "machine_" + the action
// (machine_approve, machine_deny, machine_revoke, machine_disable,
// machine_enable).
const actionMachineStatusPrefix = "machine_"

// Audit severities.
const (
	severityHigh   = "high"
	severityMedium = "medium"
	severityLow    = "low"
	severityInfo   = "info"
)

// Audit actor kinds.
const (
	actorUser     = "user"
	actorMachine  = "machine"
	actorExternal = "external"
	actorSystem   = "system"
)

// AuditEvent is one auditable action, as seen by the node that handled the
// request. Every field is a copy owned by the event: nothing refers to a
// fasthttp buffer, so an Auditor may keep the event and use it from any
// goroutine after the request has finished.
type AuditEvent struct {
	// RequestID is the X-Request-Id of the response, to correlate the event
	// with the request.
	RequestID string `json:"requestId"`
	Action    string `json:"action"`
	Severity  string `json:"severity"`
	// ActorKind is user, machine or external (an unauthenticated caller).
	ActorKind string `json:"actorKind"`
	ActorID   string `json:"actorId,omitempty"`
	VaultID   string `json:"vaultId,omitempty"`
	MachineID string `json:"machineId,omitempty"`
	SecretID  string `json:"secretId,omitempty"`
	// SourceIP is the resolved client address, "unknown" when a trusted
	// proxy did not name one.
	SourceIP string `json:"sourceIp"`
	// ProxyIP is the trusted proxy that forwarded the request, if any.
	ProxyIP string `json:"proxyIp,omitempty"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	// BodySHA256 is the hex SHA-256 of the request body as received.
	BodySHA256 string         `json:"bodySha256,omitempty"`
	Detail     string         `json:"detail,omitempty"`
	Fields     map[string]any `json:"fields,omitempty"`
	// Timestamp is the node's clock in Unix milliseconds.
	Timestamp int64  `json:"timestamp"`
	Node      string `json:"node"`
	// Unverified marks a request rejected before its signature was
	// verified (a guardrail block of a throttled machine and address).
	Unverified bool `json:"unverified,omitempty"`
}

// Auditor receives audit events. Record is called on the request path, from
// many goroutines at once, so it must be safe for concurrent use and must
// not block on I/O: an implementation queues the event and writes it
// asynchronously.
type Auditor interface {
	Record(ev AuditEvent)
}

// AxisFailure is one failing guardrail axis in an audit event's "axes"
// field.
type AxisFailure struct {
	Axis     string `json:"axis"`
	Observed string `json:"observed"`
	Reason   string `json:"reason"`
	Observe  bool   `json:"observe,omitempty"`
}

// logAuditor is the Auditor used when Config.Auditor is nil: it logs each
// event at debug level. The server counts every event by action whichever
// Auditor is set.
type logAuditor struct {
	logger *slog.Logger
}

// Record logs ev.
func (a logAuditor) Record(ev AuditEvent) {
	a.logger.Debug("audit event",
		"action", ev.Action,
		"severity", ev.Severity,
		"request_id", ev.RequestID,
		"actor_kind", ev.ActorKind,
		"actor_id", ev.ActorID,
		"vault_id", ev.VaultID,
		"machine_id", ev.MachineID,
		"secret_id", ev.SecretID,
		"source_ip", ev.SourceIP,
		"detail", ev.Detail,
		"fields", ev.Fields,
	)
}

// audit counts ev and hands it to the Auditor. Callers build ev from
// strings only (each string([]byte) conversion copies), never from slices
// of the request.
func (s *Server) audit(ev AuditEvent) {
	ev.Node = s.nodeID
	s.metrics.auditEvents.WithLabelValues(ev.Action).Inc()
	s.auditor.Record(ev)
}

// RecorderAuditor returns an Auditor that writes events to the replicated
// audit log through rec. Events of writes (every operator event, and
// registrations and init) are left out: the state machine writes their
// entries itself, in the same batch as the change, so recording them here
// would log them twice. Everything else (secret reads,
// blocks, auth failures) goes to rec, which coalesces repeats.
func RecorderAuditor(rec *audit.Recorder) Auditor {
	return recorderAuditor{rec: rec}
}

type recorderAuditor struct {
	rec *audit.Recorder
}

// appliedActions are the actions that the state machine writes on apply.
var appliedActions = map[string]bool{
	ActionSecretCreate: true, ActionSecretUpdate: true, ActionMachineRegister: true,
	ActionTempMachineCreate: true, ActionMachinePurge: true, ActionPermissionGrant: true,
	ActionPermissionRevoke: true, ActionProjectAttach: true, ActionProjectDetach: true,
	ActionBootstrapTokenCreate: true, ActionBootstrapTokenRevoke: true, ActionTempTokenCreate: true,
	ActionTempTokenRevoke: true, ActionEnrollmentTokenCreate: true, ActionEnrollmentTokenRevoke: true,
	ActionTempMachineExtend: true, ActionTempMachineExtendRevert: true,
	ActionTempMachineGuardrails: true, ActionVaultCreate: true, ActionVaultAllowlistUpdate: true,
	ActionProjectCreate: true, ActionAdminTokenCreate: true, ActionClusterInit: true,
	ActionMachineRename: true, ActionAdminTokenRevoke: true, ActionSecretDelete: true,
}

// Record converts ev and hands it to the recorder. Request id, method,
// path, body hash and proxy join the structured fields.
func (a recorderAuditor) Record(ev AuditEvent) {
	if ev.ActorKind == actorUser || appliedActions[ev.Action] {
		return
	}
	raw := auditFieldsJSON(&ev)
	a.rec.Record(audit.Event{
		Action: ev.Action, Severity: ev.Severity, ActorKind: ev.ActorKind, ActorID: ev.ActorID,
		VaultID: ev.VaultID, MachineID: ev.MachineID, SecretID: ev.SecretID, SourceIP: ev.SourceIP,
		Detail: ev.Detail, Fields: raw, Axes: axesKey(ev.Fields), Time: time.UnixMilli(ev.Timestamp),
		Unverified: ev.Unverified,
	})
}

// axesKey names the failing guardrail axes and reasons of an event, in a
// fixed order, for coalescing.
func axesKey(fields map[string]any) string {
	axes, _ := fields["axes"].([]AxisFailure)
	parts := make([]string, 0, len(axes))
	for _, f := range axes {
		parts = append(parts, f.Axis+":"+f.Reason+":"+strconv.FormatBool(f.Observe))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
