package fsm

import "encoding/json"

// Audit severities, from the most to the least urgent.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
	SeverityLow      = "low"
	SeverityInfo     = "info"
)

// Audit actor kinds.
const (
	ActorUser     = "user"
	ActorMachine  = "machine"
	ActorSystem   = "system"
	ActorExternal = "external"
)

// SourceSystem is the source address of entries written by background
// jobs (expiry sweep, retention, alert delivery).
const SourceSystem = "system"

// AuditEntry is one record of the replicated audit log.
//
// ID is the cluster-wide sequence that Apply assigns: it increases by one
// with every entry, in log order, so every node holds the same entries
// under the same ids. UUID is chosen by the proposer for entries recorded
// by a node, and derived from the command for entries that Apply writes
// itself. Timestamp is the time of the last event the entry covers, in
// Unix milliseconds; FirstAt is the first, and Count is how many events the
// entry folds together (1 for a single event).
type AuditEntry struct {
	ID        uint64          `json:"id"`
	UUID      string          `json:"uuid"`
	Action    string          `json:"action"`
	Severity  string          `json:"severity"`
	ActorKind string          `json:"actorKind"`
	ActorID   string          `json:"actorId,omitempty"`
	VaultID   VaultID         `json:"vaultId,omitempty"`
	MachineID MachineID       `json:"machineId,omitempty"`
	SecretID  SecretID        `json:"secretId,omitempty"`
	SourceIP  string          `json:"sourceIp,omitempty"`
	Detail    string          `json:"detail,omitempty"`
	Fields    json.RawMessage `json:"fields,omitempty"`
	Count     int64           `json:"count"`
	FirstAt   int64           `json:"firstAt"`
	Timestamp int64           `json:"timestamp"`
	Node      string          `json:"node,omitempty"`
}

// DefaultAuditRetentionDays is the retention of a vault that has not set
// its own.
const DefaultAuditRetentionDays = 90

// AlertSettings is the audit and alert configuration of one vault.
type AlertSettings struct {
	VaultID VaultID `json:"vaultId"`
	// RetentionDays is how long entries are kept; 0 means
	// DefaultAuditRetentionDays.
	RetentionDays int `json:"retentionDays,omitempty"`
	// Email lists recipients and the actions that mail them.
	Email EmailAlerts `json:"email"`
	// EmailCursor is the sequence of the last entry the leader has handled
	// for email, sent or given up on.
	EmailCursor uint64 `json:"emailCursor"`
	// ExpiryWarnings are offsets in milliseconds before a temporary
	// machine's expiry at which a warning entry is written, largest first.
	ExpiryWarnings []int64 `json:"expiryWarnings,omitempty"`
	UpdatedAt      int64   `json:"updatedAt,omitempty"`
}

// Retention returns the retention in days, with the default applied.
func (s *AlertSettings) Retention() int {
	if s.RetentionDays == 0 {
		return DefaultAuditRetentionDays
	}
	return s.RetentionDays
}

// EmailAlerts is the email part of a vault's alert settings. Actions may
// hold "*" for every action.
type EmailAlerts struct {
	To      []string `json:"to"`
	Actions []string `json:"actions"`
}

// Webhook is an HTTP endpoint that receives the vault's audit entries
// whose action it lists. The signing secret is sealed under WrappedKey by
// the root key, like a secret value, so it never appears in plain text in
// the log or in snapshots.
type Webhook struct {
	ID         string   `json:"id"`
	VaultID    VaultID  `json:"vaultId"`
	URL        string   `json:"url"`
	Actions    []string `json:"actions"`
	Enabled    bool     `json:"enabled"`
	Secret     Sealed   `json:"secret"`
	WrappedKey []byte   `json:"wrappedKey"`
	CreatedAt  int64    `json:"createdAt"`
	UpdatedAt  int64    `json:"updatedAt"`

	// Cursor is the sequence of the last audit entry handled for this
	// webhook, delivered or given up on. It starts at the last entry that
	// existed when the webhook was created.
	Cursor uint64 `json:"cursor"`
	// ConsecutiveFailures counts events whose delivery failed in a row.
	ConsecutiveFailures int    `json:"consecutiveFailures"`
	Delivered           uint64 `json:"delivered"`
	Failed              uint64 `json:"failed"`
	DisabledAt          int64  `json:"disabledAt,omitempty"`
	DisabledReason      string `json:"disabledReason,omitempty"`
}

// Delivery outcomes.
const (
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// DeliveryRecord is the outcome of delivering one audit entry to one
// webhook, after every attempt.
type DeliveryRecord struct {
	DeliveryID string `json:"deliveryId"`
	WebhookID  string `json:"webhookId"`
	Seq        uint64 `json:"seq"`
	Event      string `json:"event"`
	Status     string `json:"status"`
	Attempts   int    `json:"attempts"`
	StatusCode int    `json:"statusCode,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
	At         int64  `json:"at"`
}

// expiryWarningRecord remembers which warnings were written for a machine's
// current expiry; a new expiry (after an extension) starts a new record.
type expiryWarningRecord struct {
	ExpiresAt int64   `json:"expiresAt"`
	Sent      []int64 `json:"sent"`
}
