package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
)

// applyCreateWebhook stores a webhook whose cursor starts at the last
// audit entry, so it receives only what happens after it was created.
func applyCreateWebhook(t *tx, c *Command) (any, error) {
	var p CreateWebhookPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	w := p.Webhook
	if err := checkNewWebhook(t, &w); err != nil {
		return nil, err
	}

	w.Actions = nonNil(w.Actions)
	w.CreatedAt, w.UpdatedAt = c.Time, c.Time
	w.Cursor = t.lastAuditSeq()
	w.ConsecutiveFailures, w.Delivered, w.Failed = 0, 0, 0
	w.DisabledAt, w.DisabledReason = 0, ""
	t.stageWebhook(&w)
	return &w, nil
}

func checkNewWebhook(t *tx, w *Webhook) error {
	if err := checkWebhookID(w.ID); err != nil {
		return err
	}
	if _, ok := t.vault(w.VaultID); !ok {
		return rejectf(ErrNotFound, "vault %s not found", w.VaultID)
	}
	if _, exists := t.webhook(w.VaultID, w.ID); exists {
		return rejectf(ErrAlreadyExists, "webhook %s already exists", w.ID)
	}
	if n := t.countPrefix(webhookPrefix(w.VaultID)); n >= MaxWebhooksPerVault {
		return rejectf(ErrInvalid, "vault %s already has %d webhooks, the limit", w.VaultID, n)
	}
	if err := CheckWebhookURL(w.URL); err != nil {
		return err
	}
	if err := checkActions(w.Actions); err != nil {
		return err
	}
	if len(w.WrappedKey) != wrappedKeySize {
		return rejectf(ErrInvalid, "webhook key is %d bytes, want a %d-byte wrapped key", len(w.WrappedKey), wrappedKeySize)
	}
	return checkSealed(w.Secret)
}

// applyUpdateWebhook changes a webhook's URL, actions or enabled flag.
func applyUpdateWebhook(t *tx, c *Command) (any, error) {
	var p UpdateWebhookPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	old, ok := t.webhook(p.VaultID, p.ID)
	if !ok {
		return nil, rejectf(ErrNotFound, "webhook %s not found in vault %s", p.ID, p.VaultID)
	}
	w := *old
	if p.URL != nil {
		if err := CheckWebhookURL(*p.URL); err != nil {
			return nil, err
		}
		w.URL = *p.URL
	}
	if p.Actions != nil {
		if err := checkActions(*p.Actions); err != nil {
			return nil, err
		}
		w.Actions = nonNil(*p.Actions)
	}
	if p.Enabled != nil {
		if *p.Enabled && !w.Enabled {
			w.ConsecutiveFailures, w.DisabledAt, w.DisabledReason = 0, 0, ""
			w.Cursor = max(w.Cursor, t.lastAuditSeq())
		}
		w.Enabled = *p.Enabled
	}
	w.UpdatedAt = c.Time
	t.stageWebhook(&w)
	return &w, nil
}

// applyDeleteWebhook removes a webhook and its delivery log.
func applyDeleteWebhook(t *tx, c *Command) (any, error) {
	var p DeleteWebhookPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	w, ok := t.webhook(p.VaultID, p.ID)
	if !ok {
		return nil, rejectf(ErrNotFound, "webhook %s not found in vault %s", p.ID, p.VaultID)
	}
	for _, key := range t.keysWithPrefix(deliveryPrefix(w.ID), -1) {
		t.stageDelete(kindDelivery, key, w.ID)
	}
	t.stageDelete(kindWebhook, webhookKey(w.VaultID, w.ID), w.ID)
	return w, nil
}

// applyRecordDeliveries stores delivery outcomes, updates the webhook's
// counters and cursor, audits each final failure and disables the webhook
// after DisableAfter failed events in a row.
func applyRecordDeliveries(t *tx, c *Command) (any, error) {
	var p RecordDeliveriesPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	old, ok := t.webhook(p.VaultID, p.WebhookID)
	if !ok {
		return nil, rejectf(ErrNotFound, "webhook %s not found in vault %s", p.WebhookID, p.VaultID)
	}
	if err := checkDeliveries(t, &p); err != nil {
		return nil, err
	}

	w := *old
	var entries []*AuditEntry
	added := 0
	for i := range p.Records {
		r := p.Records[i]
		if r.Seq <= old.Cursor {
			continue
		}
		t.stage(kindDelivery, deliveryKey(w.ID, r.Seq), w.ID, r, nil)
		entries = append(entries, countDelivery(c, &w, &r, p.DisableAfter)...)
		added++
	}
	w.Cursor = max(w.Cursor, p.Cursor)
	t.stageWebhook(&w)
	t.pruneDeliveryLog(w.ID, added)
	t.appendAudit(entries...)
	return &w, nil
}

func checkDeliveries(t *tx, p *RecordDeliveriesPayload) error {
	if len(p.Records) > MaxDeliveryLog {
		return rejectf(ErrInvalid, "%d delivery records in one batch, limit %d", len(p.Records), MaxDeliveryLog)
	}
	if p.DisableAfter < 0 {
		return rejectf(ErrInvalid, "disableAfter %d is negative", p.DisableAfter)
	}
	if last := t.lastAuditSeq(); p.Cursor > last {
		return rejectf(ErrInvalid, "delivery cursor %d is past the last audit entry %d", p.Cursor, last)
	}
	for i := range p.Records {
		if err := checkDeliveryRecord(p.WebhookID, &p.Records[i]); err != nil {
			return err
		}
		if p.Records[i].Seq > p.Cursor {
			return rejectf(ErrInvalid, "delivery record for entry %d is past the cursor %d", p.Records[i].Seq, p.Cursor)
		}
	}
	return nil
}

// countDelivery updates w for one outcome and returns the audit entries it
// causes: one for a final failure, and one when the failure run disables
// the webhook.
func countDelivery(c *Command, w *Webhook, r *DeliveryRecord, disableAfter int) []*AuditEntry {
	if r.Status == DeliveryDelivered {
		w.Delivered++
		w.ConsecutiveFailures = 0
		return nil
	}
	w.Failed++
	w.ConsecutiveFailures++

	failed := systemEntry(c, "webhook_delivery_failed", SeverityMedium)
	failed.VaultID = w.VaultID
	failed.Detail = fmt.Sprintf("delivery of %s (entry %d) to webhook %s failed after %d attempts: %s",
		r.Event, r.Seq, w.ID, r.Attempts, r.Error)
	failed.Fields = fieldsJSON(map[string]any{
		"webhookId": w.ID, "deliveryId": r.DeliveryID, "seq": r.Seq, "event": r.Event,
		"attempts": r.Attempts, "statusCode": r.StatusCode, "error": r.Error,
	})
	out := []*AuditEntry{failed}
	if disableAfter == 0 || !w.Enabled || w.ConsecutiveFailures < disableAfter {
		return out
	}

	w.Enabled = false
	w.DisabledAt = c.Time
	w.DisabledReason = fmt.Sprintf("%d deliveries in a row failed", w.ConsecutiveFailures)
	disabled := systemEntry(c, "webhook_disabled", SeverityHigh)
	disabled.VaultID = w.VaultID
	disabled.Detail = fmt.Sprintf("webhook %s disabled: %s", w.ID, w.DisabledReason)
	disabled.Fields = fieldsJSON(map[string]any{"webhookId": w.ID, "url": w.URL, "consecutiveFailures": w.ConsecutiveFailures})
	return append(out, disabled)
}

// pruneDeliveryLog keeps the newest MaxDeliveryLog records of a webhook.
// added records were staged by this command and are newer than any stored.
func (t *tx) pruneDeliveryLog(webhookID string, added int) {
	stored := t.keysWithPrefix(deliveryPrefix(webhookID), -1)
	excess := len(stored) + added - MaxDeliveryLog
	for i := 0; i < excess && i < len(stored); i++ {
		t.stageDelete(kindDelivery, stored[i], webhookID)
	}
}

func (t *tx) webhook(vault VaultID, id string) (*Webhook, bool) {
	raw, ok := t.rawValue(webhookKey(vault, id))
	if !ok {
		return nil, false
	}
	var w Webhook
	if err := json.Unmarshal(raw, &w); err != nil {
		panic(fmt.Sprintf("fsm: decode webhook %s: %v (replicas would diverge)", id, err))
	}
	return &w, true
}

func (t *tx) stageWebhook(w *Webhook) {
	w.Actions = slices.Clone(w.Actions)
	t.stage(kindWebhook, webhookKey(w.VaultID, w.ID), w.ID, w, nil)
}

// keysWithPrefix returns up to limit keys (all when limit < 0) of the
// batch with prefix, in order.
func (t *tx) keysWithPrefix(prefix string, limit int) []string {
	iter := t.mustIter(prefix)
	defer iter.Close()
	var keys []string
	for iter.First(); iter.Valid() && (limit < 0 || len(keys) < limit); iter.Next() {
		keys = append(keys, string(iter.Key()))
	}
	return keys
}

func (t *tx) countPrefix(prefix string) int {
	return len(t.keysWithPrefix(prefix, -1))
}
