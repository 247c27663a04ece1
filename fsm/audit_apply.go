package fsm

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

const dayMs = int64(86_400_000)

// applyAuditAppend appends the entries a node recorded. The batch is
// checked whole first, so an invalid entry rejects it without a gap in the
// sequence.
func applyAuditAppend(t *tx, c *Command) (any, error) {
	var p AuditAppendPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if len(p.Entries) == 0 || len(p.Entries) > MaxAuditBatch {
		return nil, rejectf(ErrInvalid, "%d audit entries in one batch; send 1 to %d", len(p.Entries), MaxAuditBatch)
	}
	entries := make([]*AuditEntry, len(p.Entries))
	for i := range p.Entries {
		e := &p.Entries[i]
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("audit entry %d: %w", i, err)
		}
		entries[i] = e
	}

	t.appendAudit(entries...)
	return struct {
		First uint64 `json:"first"`
		Last  uint64 `json:"last"`
	}{entries[0].ID, entries[len(entries)-1].ID}, nil
}

// applyAuditCompact deletes the oldest entries of one vault while they are
// older than the vault's retention at Command.Time. It walks in sequence
// order, which is close to time order, and stops at the first entry inside
// the retention. An entry is therefore deleted only after every earlier
// entry of its vault.
func applyAuditCompact(t *tx, c *Command) (any, error) {
	var p AuditCompactPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	limit := p.Max
	if limit == 0 {
		limit = MaxAuditCompact
	}
	if limit < 0 || limit > MaxAuditCompact {
		return nil, rejectf(ErrInvalid, "compaction limit %d is not between 1 and %d", p.Max, MaxAuditCompact)
	}
	retention := int64(DefaultAuditRetentionDays)
	if p.VaultID != "" {
		if _, ok := t.vault(p.VaultID); !ok {
			return nil, rejectf(ErrNotFound, "vault %s not found", p.VaultID)
		}
		s := t.alertSettings(p.VaultID)
		retention = int64(s.Retention())
	}

	cutoff := c.Time - retention*dayMs
	res := t.compactBucket(p.VaultID, cutoff, limit)
	if res.Deleted > 0 {
		e := systemEntry(c, "audit_compact", SeverityInfo)
		e.VaultID = p.VaultID
		e.Detail = fmt.Sprintf("removed %d entries older than %d days", res.Deleted, retention)
		e.Fields = fieldsJSON(map[string]any{"deleted": res.Deleted, "cutoff": cutoff, "retentionDays": retention})
		t.appendAudit(e)
	}
	return res, nil
}

// compactBucket stages the deletion of the oldest entries of a bucket with
// a timestamp before cutoff, up to limit.
func (t *tx) compactBucket(vault VaultID, cutoff int64, limit int) AuditCompactResult {
	prefix := auditBucketPrefix(vault)
	iter := t.mustIter(prefix)
	defer iter.Close()

	var res AuditCompactResult
	for iter.First(); iter.Valid(); iter.Next() {
		seq, ok := seqOfKey(iter.Key())
		if !ok {
			panic(fmt.Sprintf("fsm: malformed audit index key %q (replicas would diverge)", iter.Key()))
		}
		// NOTE: an entry dated in the future (a proposer with a clock far
		// ahead) stops the walk until its own time passes the cutoff.
		if t.entryTime(seq) >= cutoff {
			break
		}
		if res.Deleted == limit {
			res.More = true
			break
		}
		t.stageDelete(kindAuditEntry, string(slices.Clone(iter.Key())), "")
		t.stageDelete(kindAuditEntry, auditKey(seq), "")
		res.Deleted++
	}
	return res
}

// entryTime returns the timestamp of the entry with sequence seq.
func (t *tx) entryTime(seq uint64) int64 {
	raw, ok := t.get(auditKey(seq))
	if !ok {
		panic(fmt.Sprintf("fsm: audit index names entry %d, which is missing (replicas would diverge)", seq))
	}
	var e struct {
		Timestamp int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		panic(fmt.Sprintf("fsm: decode audit entry %d: %v (replicas would diverge)", seq, err))
	}
	return e.Timestamp
}

// mustIter opens an iterator over the batch (committed store plus the
// batch's writes) for one prefix.
func (t *tx) mustIter(prefix string) *pebble.Iterator {
	iter, err := t.batch.NewIter(&pebble.IterOptions{
		LowerBound: []byte(prefix),
		UpperBound: []byte(prefixEnd(prefix)),
	})
	if err != nil {
		panic(fmt.Sprintf("fsm: open iterator on %s: %v (replicas would diverge)", prefix, err))
	}
	return iter
}

// alertSettings returns a copy of a vault's settings, the defaults when it
// has none.
func (t *tx) alertSettings(vault VaultID) *AlertSettings {
	s := &AlertSettings{VaultID: vault, Email: EmailAlerts{To: []string{}, Actions: []string{}}}
	raw, ok := t.rawValue(alertSettingsKey(vault))
	if !ok {
		return s
	}
	if err := json.Unmarshal(raw, s); err != nil {
		panic(fmt.Sprintf("fsm: decode alert settings of %s: %v (replicas would diverge)", vault, err))
	}
	return s
}

func (t *tx) stageAlertSettings(s *AlertSettings) {
	t.stage(kindAlertSettings, alertSettingsKey(s.VaultID), string(s.VaultID), s, nil)
}

// settingsOfExistingVault returns the settings of a vault that exists.
func (t *tx) settingsOfExistingVault(vault VaultID) (*AlertSettings, error) {
	if _, ok := t.vault(vault); !ok {
		return nil, rejectf(ErrNotFound, "vault %s not found", vault)
	}
	return t.alertSettings(vault), nil
}

// applySetAuditRetention sets how many days a vault keeps its entries.
func applySetAuditRetention(t *tx, c *Command) (any, error) {
	var p SetAuditRetentionPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if p.Days < 1 || p.Days > MaxAuditRetention {
		return nil, rejectf(ErrInvalid, "retention of %d days is not between 1 and %d", p.Days, MaxAuditRetention)
	}
	s, err := t.settingsOfExistingVault(p.VaultID)
	if err != nil {
		return nil, err
	}
	s.RetentionDays = p.Days
	s.UpdatedAt = c.Time
	t.stageAlertSettings(s)
	return s, nil
}

// applySetEmailAlerts replaces a vault's email recipients and actions.
func applySetEmailAlerts(t *tx, c *Command) (any, error) {
	var p SetEmailAlertsPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if err := checkRecipients(p.Email.To); err != nil {
		return nil, err
	}
	if err := checkActions(p.Email.Actions); err != nil {
		return nil, err
	}
	s, err := t.settingsOfExistingVault(p.VaultID)
	if err != nil {
		return nil, err
	}
	if len(s.Email.To) == 0 || len(s.Email.Actions) == 0 {
		// Turning email on starts from now rather than mailing the past.
		s.EmailCursor = t.lastAuditSeq()
	}
	s.Email = EmailAlerts{To: nonNil(p.Email.To), Actions: nonNil(p.Email.Actions)}
	s.UpdatedAt = c.Time
	t.stageAlertSettings(s)
	return s, nil
}

// applySetExpiryWarnings replaces a vault's expiry warning offsets, stored
// largest first.
func applySetExpiryWarnings(t *tx, c *Command) (any, error) {
	var p SetExpiryWarningsPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if err := checkExpiryOffsets(p.Offsets); err != nil {
		return nil, err
	}
	s, err := t.settingsOfExistingVault(p.VaultID)
	if err != nil {
		return nil, err
	}
	offsets := slices.Clone(p.Offsets)
	slices.Sort(offsets)
	slices.Reverse(offsets)
	s.ExpiryWarnings = offsets
	s.UpdatedAt = c.Time
	t.stageAlertSettings(s)
	return s, nil
}

// applyEmailDelivered moves a vault's email cursor forward; it never moves
// back, so a batch repeated after a leader change changes nothing.
func applyEmailDelivered(t *tx, c *Command) (any, error) {
	var p EmailDeliveredPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if p.Failed < 0 || len(p.Error) > MaxDeliveryErrorText {
		return nil, rejectf(ErrInvalid, "failed count %d is negative or the error is over %d bytes", p.Failed, MaxDeliveryErrorText)
	}
	s, err := t.settingsOfExistingVault(p.VaultID)
	if err != nil {
		return nil, err
	}
	if p.Cursor <= s.EmailCursor {
		return s, nil
	}
	if p.Cursor > t.lastAuditSeq() {
		return nil, rejectf(ErrInvalid, "email cursor %d is past the last audit entry %d", p.Cursor, t.lastAuditSeq())
	}

	from := s.EmailCursor + 1
	s.EmailCursor = p.Cursor
	t.stageAlertSettings(s)
	if p.Failed > 0 {
		e := systemEntry(c, "alert_email_failed", SeverityHigh)
		e.VaultID = p.VaultID
		e.Detail = fmt.Sprintf("gave up mailing %d audit entries: %s", p.Failed, p.Error)
		e.Fields = fieldsJSON(map[string]any{"fromSeq": from, "toSeq": p.Cursor, "failed": p.Failed, "error": p.Error})
		t.appendAudit(e)
	}
	return s, nil
}

// applyExpiryWarning writes a temp_machine_expiry_warning entry once per
// machine, offset and expiry. It rejects a warning for an expiry that is
// no longer the machine's, for an offset the vault does not configure, or
// outside the span from OffsetMs before the expiry to the expiry.
func applyExpiryWarning(t *tx, c *Command) (any, error) {
	var p ExpiryWarningPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	m := &e.Machine
	if err := checkWarnable(t, m, p, c.Time); err != nil {
		return nil, err
	}

	rec := t.expiryWarnings(m.ID)
	if rec.ExpiresAt != m.ExpiresAt {
		rec = &expiryWarningRecord{ExpiresAt: m.ExpiresAt, Sent: []int64{}}
	}
	if slices.Contains(rec.Sent, p.OffsetMs) {
		return ExpiryWarningResult{Written: false}, nil
	}
	rec.Sent = append(rec.Sent, p.OffsetMs)
	t.stage(kindExpiryWarning, expiryWarningKey(m.ID), string(m.ID), rec, nil)

	entry := systemEntry(c, "temp_machine_expiry_warning", SeverityMedium)
	entry.VaultID, entry.MachineID = m.VaultID, m.ID
	entry.Detail = fmt.Sprintf("machine %q expires at %s (warning %s before)", m.Name, formatMs(m.ExpiresAt), formatOffset(p.OffsetMs))
	entry.Fields = fieldsJSON(map[string]any{
		"expiresAt": m.ExpiresAt, "offsetMs": p.OffsetMs, "offset": formatOffset(p.OffsetMs), "name": m.Name,
	})
	t.appendAudit(entry)
	return ExpiryWarningResult{Written: true}, nil
}

func checkWarnable(t *tx, m *Machine, p ExpiryWarningPayload, now int64) error {
	switch {
	case m.ExpiresAt == 0 || m.ExpiresAt != p.ExpiresAt:
		return rejectf(ErrConflict, "machine %s expires at %d, not %d", m.ID, m.ExpiresAt, p.ExpiresAt)
	case m.Status != StatusActive && m.Status != StatusPending:
		return rejectf(ErrNotAllowed, "machine %s is %s", m.ID, m.Status)
	case !slices.Contains(t.alertSettings(m.VaultID).ExpiryWarnings, p.OffsetMs):
		return rejectf(ErrNotFound, "vault %s has no expiry warning %s", m.VaultID, formatOffset(p.OffsetMs))
	case now >= m.ExpiresAt || now < m.ExpiresAt-p.OffsetMs:
		return rejectf(ErrNotAllowed, "command time %d is outside the warning span of machine %s", now, m.ID)
	}
	return nil
}

func (t *tx) expiryWarnings(id MachineID) *expiryWarningRecord {
	rec := &expiryWarningRecord{}
	raw, ok := t.rawValue(expiryWarningKey(id))
	if !ok {
		return rec
	}
	if err := json.Unmarshal(raw, rec); err != nil {
		panic(fmt.Sprintf("fsm: decode expiry warnings of %s: %v (replicas would diverge)", id, err))
	}
	return rec
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return slices.Clone(s)
}
