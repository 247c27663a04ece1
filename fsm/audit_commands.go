package fsm

// Payloads of the audit and alerting commands.

// AuditAppendPayload appends entries recorded by a node. Apply assigns each
// the next sequence, in payload order; ID must be zero.
type AuditAppendPayload struct {
	Entries []AuditEntry `json:"entries"`
}

// AuditCompactPayload deletes a vault's entries that are older than its
// retention at Command.Time. An empty VaultID compacts the entries that
// belong to no vault, with the default retention. At most Max entries go
// per command (MaxAuditCompact when zero).
type AuditCompactPayload struct {
	VaultID VaultID `json:"vaultId,omitempty"`
	Max     int     `json:"max,omitempty"`
}

// AuditCompactResult is the Response.Body of a compaction. More is true
// when entries past the cutoff remain because Max was reached.
type AuditCompactResult struct {
	Deleted int  `json:"deleted"`
	More    bool `json:"more"`
}

// SetAuditRetentionPayload sets a vault's retention in days.
type SetAuditRetentionPayload struct {
	VaultID VaultID `json:"vaultId"`
	Days    int     `json:"days"`
}

// SetEmailAlertsPayload replaces a vault's email recipients and actions.
type SetEmailAlertsPayload struct {
	VaultID VaultID     `json:"vaultId"`
	Email   EmailAlerts `json:"email"`
}

// SetExpiryWarningsPayload replaces a vault's expiry warning offsets, in
// milliseconds before expiry.
type SetExpiryWarningsPayload struct {
	VaultID VaultID `json:"vaultId"`
	Offsets []int64 `json:"offsets"`
}

// EmailDeliveredPayload moves a vault's email cursor after the leader sent
// (or gave up on) the entries up to Cursor. Failed counts the entries that
// were given up on, with the last error; a non-zero Failed writes an
// alert_email_failed entry.
type EmailDeliveredPayload struct {
	VaultID VaultID `json:"vaultId"`
	Cursor  uint64  `json:"cursor"`
	Failed  int     `json:"failed,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// ExpiryWarningPayload writes one expiry warning for a machine whose
// expiry is ExpiresAt, OffsetMs before it. Apply writes it once per
// machine, offset and expiry, so a sweep repeated by a new leader does not
// warn twice.
type ExpiryWarningPayload struct {
	VaultID   VaultID   `json:"vaultId"`
	MachineID MachineID `json:"machineId"`
	OffsetMs  int64     `json:"offsetMs"`
	ExpiresAt int64     `json:"expiresAt"`
}

// ExpiryWarningResult is the Response.Body of an expiry warning.
type ExpiryWarningResult struct {
	// Written is false when the warning had been written before.
	Written bool `json:"written"`
}

// CreateWebhookPayload stores a webhook. Apply sets CreatedAt, UpdatedAt,
// the counters and the cursor.
type CreateWebhookPayload struct {
	Webhook Webhook `json:"webhook"`
}

// UpdateWebhookPayload changes the fields that are set. Enabling a webhook
// clears its failure run and moves its cursor to the last entry, so it
// receives nothing written while it was disabled.
type UpdateWebhookPayload struct {
	VaultID VaultID   `json:"vaultId"`
	ID      string    `json:"id"`
	URL     *string   `json:"url,omitempty"`
	Actions *[]string `json:"actions,omitempty"`
	Enabled *bool     `json:"enabled,omitempty"`
}

// DeleteWebhookPayload removes a webhook and its delivery log.
type DeleteWebhookPayload struct {
	VaultID VaultID `json:"vaultId"`
	ID      string  `json:"id"`
}

// RecordDeliveriesPayload stores the outcomes of deliveries to one webhook
// and moves its cursor to Cursor. Records at or below the stored cursor
// were stored before and are skipped, so a batch sent again after a leader
// change counts once. After DisableAfter failed events in a row (0 never)
// the webhook is disabled.
type RecordDeliveriesPayload struct {
	VaultID      VaultID          `json:"vaultId"`
	WebhookID    string           `json:"webhookId"`
	Records      []DeliveryRecord `json:"records"`
	Cursor       uint64           `json:"cursor"`
	DisableAfter int              `json:"disableAfter,omitempty"`
}
