package fsm

import (
	"slices"
	"strings"
)

// knownActions lists every action an audit entry can carry. Alert settings
// may name only these (or "*"), so a typo in an alert's action list is
// rejected instead of leaving an alert that never fires. A new action must
// be added here before an alert can select it.
var knownActions = []string{
	"admin_token_create", "admin_token_revoke",
	"alert_email_failed", "alert_email_update", "alert_expiry_warnings_update",
	"audit_compact", "audit_overflow", "audit_retention_update",
	"auth_failure",
	"bootstrap_token_create", "bootstrap_token_revoke",
	"cluster_init", "cluster_leadership_transfer", "cluster_member_remove",
	"enrollment_token_create", "enrollment_token_revoke",
	"machine_approve", "machine_deny", "machine_disable", "machine_enable", "machine_revoke",
	"machine_project_attach", "machine_project_detach",
	"machine_purge", "machine_register", "machine_rename",
	"permission_grant", "permission_revoke",
	"project_create",
	"secret_create", "secret_delete", "secret_read", "secret_read_denied", "secret_update",
	"snapshot_restore", "snapshot_save",
	"temp_bootstrap_token_create", "temp_bootstrap_token_revoke",
	"temp_machine_blocked", "temp_machine_create", "temp_machine_expire", "temp_machine_expiry_warning",
	"temp_machine_extend", "temp_machine_extend_revert", "temp_machine_guardrails_update",
	"temp_machine_would_block",
	"vault_allowlist_update", "vault_create", "vault_ip_blocked",
	"webhook_create", "webhook_delete", "webhook_delivery_failed", "webhook_disabled", "webhook_update",
}

// IsKnownAction reports whether action is one that audit entries carry.
func IsKnownAction(action string) bool {
	return slices.Contains(knownActions, action)
}

// KnownActions returns the sorted list of audit actions.
func KnownActions() []string {
	out := slices.Clone(knownActions)
	slices.Sort(out)
	return out
}

// unknownActionError names the unknown action and a few known ones that
// share its first word, so the caller can spot the typo.
func unknownActionError(action string) error {
	prefix, _, _ := strings.Cut(action, "_")
	var near []string
	for _, a := range knownActions {
		if strings.HasPrefix(a, prefix+"_") {
			near = append(near, a)
		}
	}
	if len(near) == 0 {
		return rejectf(ErrInvalid, "action %q is not an audit action; use \"*\" or one of the actions listed in docs/audit.md", action)
	}
	return rejectf(ErrInvalid, "action %q is not an audit action; did you mean one of %s?", action, strings.Join(near, ", "))
}
