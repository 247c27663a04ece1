package fsm

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits of audit and alerting commands.
const (
	MaxAuditBatch        = 1_000
	MaxAuditCompact      = 10_000
	MaxAuditActionBytes  = 64
	MaxAuditDetailChars  = 1_000
	MaxAuditFieldsBytes  = 8 << 10
	MaxAuditRefBytes     = 128
	MaxAuditRetention    = 3_650
	MaxAlertActions      = 200
	MaxEmailRecipients   = 50
	MaxExpiryWarnings    = 10
	MaxWebhooksPerVault  = 50
	MaxWebhookURLBytes   = 2_048
	MaxDeliveryLog       = 1_000
	MaxDeliveryErrorText = 500
)

// WildcardAction in an alert's action list matches every action.
const WildcardAction = "*"

var (
	severities = []string{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInfo}
	actorKinds = []string{ActorUser, ActorMachine, ActorSystem, ActorExternal}
)

// Validate checks an entry proposed by a node: every string bounded and
// printable, known severity and actor kind, positive times and count, and
// fields that are a JSON object. The error names the field.
func (e *AuditEntry) Validate() error {
	if e.ID != 0 {
		return rejectf(ErrInvalid, "audit entry id %d is set; Apply assigns ids", e.ID)
	}

	if err := checkAction("action", e.Action); err != nil {
		return err
	}
	if !slices.Contains(severities, e.Severity) {
		return rejectf(ErrInvalid, "severity %q is not one of %s", e.Severity, strings.Join(severities, ", "))
	}
	if !slices.Contains(actorKinds, e.ActorKind) {
		return rejectf(ErrInvalid, "actor kind %q is not one of %s", e.ActorKind, strings.Join(actorKinds, ", "))
	}
	if e.UUID != "" {
		if _, err := uuid.Parse(e.UUID); err != nil || len(e.UUID) != 36 {
			return rejectf(ErrInvalid, "audit entry uuid %q is not a UUID", e.UUID)
		}
	}

	if e.VaultID != "" {
		if err := checkVaultID(e.VaultID); err != nil {
			return err
		}
	}
	refs := []struct{ name, value string }{
		{"actor id", e.ActorID}, {"machine id", string(e.MachineID)}, {"secret id", string(e.SecretID)},
		{"source ip", e.SourceIP}, {"node", e.Node},
	}
	for _, r := range refs {
		if err := checkRef(r.name, r.value); err != nil {
			return err
		}
	}

	if n := utf8.RuneCountInString(e.Detail); n > MaxAuditDetailChars || !utf8.ValidString(e.Detail) {
		return rejectf(ErrInvalid, "detail is %d characters or not UTF-8; limit %d", n, MaxAuditDetailChars)
	}
	if err := checkFields(e.Fields); err != nil {
		return err
	}

	switch {
	case e.Count < 1:
		return rejectf(ErrInvalid, "count %d is below 1", e.Count)
	case e.Timestamp <= 0:
		return rejectf(ErrInvalid, "timestamp %d is not a positive Unix millisecond value", e.Timestamp)
	case e.FirstAt <= 0 || e.FirstAt > e.Timestamp:
		return rejectf(ErrInvalid, "firstAt %d is not between 1 and the timestamp %d", e.FirstAt, e.Timestamp)
	}
	return nil
}

// checkAction requires 1 to MaxAuditActionBytes lower-case letters, digits
// or '_'.
func checkAction(field, a string) error {
	ok := len(a) > 0 && len(a) <= MaxAuditActionBytes && allBytes(a, func(c byte) bool {
		return isBase36(c) || c == '_'
	})
	if !ok {
		return rejectf(ErrInvalid, "%s %q is not 1 to %d lower-case letters, digits or '_'", field, a, MaxAuditActionBytes)
	}
	return nil
}

// checkRef bounds an identifier or address copied from a request: it may
// be anything the client sent, so only its size and bytes are checked.
func checkRef(field, s string) error {
	if len(s) > MaxAuditRefBytes || !allBytes(s, func(c byte) bool { return c > ' ' && c < 0x7f }) {
		return rejectf(ErrInvalid, "%s is over %d bytes or holds a space or non-printable byte", field, MaxAuditRefBytes)
	}
	return nil
}

func checkFields(raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	if len(raw) > MaxAuditFieldsBytes {
		return rejectf(ErrInvalid, "fields are %d bytes, limit %d", len(raw), MaxAuditFieldsBytes)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return rejectf(ErrInvalid, "fields are not a JSON object: %v", err)
	}
	return nil
}

// checkActions validates an alert's action list: known actions or "*", no
// repeats, at most MaxAlertActions.
func checkActions(actions []string) error {
	if len(actions) > MaxAlertActions {
		return rejectf(ErrInvalid, "%d actions, limit %d", len(actions), MaxAlertActions)
	}
	for i, a := range actions {
		if a != WildcardAction {
			if err := checkAction("action", a); err != nil {
				return err
			}
			if !IsKnownAction(a) {
				return unknownActionError(a)
			}
		}
		if slices.Contains(actions[:i], a) {
			return rejectf(ErrInvalid, "action %q is repeated", a)
		}
	}
	return nil
}

// ActionMatches reports whether action is in list, or list holds "*".
func ActionMatches(list []string, action string) bool {
	return slices.Contains(list, action) || slices.Contains(list, WildcardAction)
}

// CheckWebhookURL checks the form of a webhook URL: http or https, a host,
// no credentials or fragment, at most MaxWebhookURLBytes. Whether the host
// may be reached is the delivering node's decision.
func CheckWebhookURL(raw string) error {
	if len(raw) > MaxWebhookURLBytes {
		return rejectf(ErrInvalid, "webhook url is %d bytes, limit %d", len(raw), MaxWebhookURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return rejectf(ErrInvalid, "webhook url %q: %v", raw, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return rejectf(ErrInvalid, "webhook url %q: scheme must be https", raw)
	case u.Hostname() == "":
		return rejectf(ErrInvalid, "webhook url %q has no host", raw)
	case u.User != nil:
		return rejectf(ErrInvalid, "webhook url %q contains credentials; the signature authenticates the sender", raw)
	case u.Fragment != "":
		return rejectf(ErrInvalid, "webhook url %q has a fragment", raw)
	}
	return nil
}

// checkWebhookID requires "whk_" and 16 lower-case base-36 characters.
func checkWebhookID(id string) error { return checkID("webhook id", id, "whk_", 16) }

// checkRecipients validates email addresses: plain addresses without a
// display name, so no header can be injected through them.
func checkRecipients(to []string) error {
	if len(to) > MaxEmailRecipients {
		return rejectf(ErrInvalid, "%d email recipients, limit %d", len(to), MaxEmailRecipients)
	}
	for i, addr := range to {
		parsed, err := mail.ParseAddress(addr)
		if err != nil || parsed.Address != addr || parsed.Name != "" || len(addr) > 254 {
			return rejectf(ErrInvalid, "email recipient %q is not a plain address such as ops@example.com", addr)
		}
		if slices.Contains(to[:i], addr) {
			return rejectf(ErrInvalid, "email recipient %q is repeated", addr)
		}
	}
	return nil
}

// checkExpiryOffsets requires distinct offsets between one minute and
// twelve months (366 days).
func checkExpiryOffsets(offsets []int64) error {
	const minOffset, maxOffset = int64(60_000), int64(366 * 24 * 3_600_000)
	if len(offsets) > MaxExpiryWarnings {
		return rejectf(ErrInvalid, "%d expiry warnings, limit %d", len(offsets), MaxExpiryWarnings)
	}
	for i, o := range offsets {
		if o < minOffset || o > maxOffset {
			return rejectf(ErrInvalid, "expiry warning offset %s is out of range; use 1m to 366d", time.Duration(o)*time.Millisecond)
		}
		if slices.Contains(offsets[:i], o) {
			return rejectf(ErrInvalid, "expiry warning offset %d ms is repeated", o)
		}
	}
	return nil
}

// checkDeliveryRecord validates one delivery outcome.
func checkDeliveryRecord(webhookID string, r *DeliveryRecord) error {
	switch {
	case r.WebhookID != webhookID:
		return rejectf(ErrInvalid, "delivery record of webhook %q in a batch for %q", r.WebhookID, webhookID)
	case r.Status != DeliveryDelivered && r.Status != DeliveryFailed:
		return rejectf(ErrInvalid, "delivery status %q is not %q or %q", r.Status, DeliveryDelivered, DeliveryFailed)
	case r.Seq == 0 || r.Attempts < 1 || r.DurationMs < 0:
		return rejectf(ErrInvalid, "delivery record needs a sequence, at least one attempt and a duration of 0 or more")
	case len(r.Error) > MaxDeliveryErrorText || !utf8.ValidString(r.Error):
		return rejectf(ErrInvalid, "delivery error text is over %d bytes or not UTF-8", MaxDeliveryErrorText)
	}
	if err := checkRef("delivery id", r.DeliveryID); err != nil {
		return err
	}
	return checkAction("event", r.Event)
}

// formatOffset renders an offset in milliseconds as 7d, 1d, 1h or 30m.
func formatOffset(ms int64) string {
	const minute, hour, day = 60_000, 3_600_000, 86_400_000
	switch {
	case ms%day == 0:
		return fmt.Sprintf("%dd", ms/day)
	case ms%hour == 0:
		return fmt.Sprintf("%dh", ms/hour)
	}
	return fmt.Sprintf("%dm", ms/minute)
}
