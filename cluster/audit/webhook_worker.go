package audit

import (
	"bytes"
	"context"
	"time"

	"github.com/keyward/keyward/fsm"
)

// worker delivers the entries of one webhook in sequence order and writes
// the outcomes, with the cursor, through Raft in batches.
type worker struct {
	d     *Dispatcher
	vault fsm.VaultID
	id    string

	// cursor is the last entry handled here; stored is the cursor Raft
	// holds.
	cursor, stored uint64
	pending        []fsm.DeliveryRecord
	pendingSince   time.Time
	// failRun counts failed events in a row, stored ones included.
	failRun int
	// lastFlush is when outcomes or the cursor were last written.
	lastFlush time.Time
}

// maxPendingRecords is the batch size of delivery outcomes.
const maxPendingRecords = 50

// runWorker delivers until the webhook is gone or disabled or ctx ends.
func (d *Dispatcher) runWorker(ctx context.Context, vault fsm.VaultID, id string) {
	wk := &worker{d: d, vault: vault, id: id}
	for ctx.Err() == nil {
		changed := d.sm.AuditChanged()
		w, ok := wk.current()
		if !ok {
			wk.flush(ctx)
			return
		}
		progressed := wk.step(ctx, w)
		if wk.due() {
			wk.flush(ctx)
		}
		if !progressed && !d.waitChange(ctx, changed, min(d.cfg.PollInterval, d.cfg.FlushInterval)) {
			return
		}
	}
}

// current reads the webhook and merges its stored state into the worker.
func (wk *worker) current() (*fsm.Webhook, bool) {
	w, found, err := wk.d.sm.Webhook(wk.vault, wk.id)
	if err != nil || !found || !w.Enabled {
		return nil, false
	}
	if w.Cursor > wk.stored {
		wk.stored = w.Cursor
		wk.failRun = w.ConsecutiveFailures
	}
	wk.cursor = max(wk.cursor, w.Cursor)
	return w, true
}

// step delivers the next entries; it reports whether it handled any.
func (wk *worker) step(ctx context.Context, w *fsm.Webhook) bool {
	entries, err := wk.d.sm.AuditAfter(w.VaultID, wk.cursor, wk.d.cfg.Lookahead)
	if err != nil || len(entries) == 0 {
		return false
	}
	secret, err := wk.d.keyring.Open(w.WrappedKey, w.ID, w.Secret)
	if err != nil {
		wk.d.logger.Error("open webhook signing secret", "webhook_id", w.ID, "err", err)
		return false
	}
	defer clear(secret)

	for i := range entries {
		e := &entries[i]
		if !wk.wants(w, e) {
			wk.cursor = e.ID
			continue
		}
		rec := wk.d.sender.deliver(ctx, w, secret, e, wk.d.metrics)
		if ctx.Err() != nil {
			return true // not recorded: the next leader delivers it again, same id
		}
		wk.record(rec)
		if wk.due() || wk.disabling() {
			wk.flush(ctx)
		}
		if wk.disabling() {
			return true
		}
	}
	return true
}

// wants reports whether e goes to w. Entries about the webhook's own
// delivery failures never go to it, which would feed a failing receiver
// its own failures.
func (wk *worker) wants(w *fsm.Webhook, e *fsm.AuditEntry) bool {
	if !fsm.ActionMatches(w.Actions, e.Action) {
		return false
	}
	switch e.Action {
	case "webhook_delivery_failed", "webhook_disabled":
		return !aboutWebhook(e, w.ID)
	}
	return true
}

func aboutWebhook(e *fsm.AuditEntry, id string) bool {
	return bytes.Contains(e.Fields, []byte(`"webhookId":"`+id+`"`))
}

func (wk *worker) record(rec fsm.DeliveryRecord) {
	wk.d.metrics.Deliveries.WithLabelValues(rec.Status).Inc()
	if rec.Status == fsm.DeliveryDelivered {
		wk.failRun = 0
	} else {
		wk.failRun++
	}
	if len(wk.pending) == 0 {
		wk.pendingSince = wk.d.cfg.Now()
	}
	wk.pending = append(wk.pending, rec)
	wk.cursor = rec.Seq
}

// disabling reports whether the failures in a row reached the threshold,
// after which Raft disables the webhook and the worker must stop.
func (wk *worker) disabling() bool {
	return wk.d.cfg.DisableAfter > 0 && wk.failRun >= wk.d.cfg.DisableAfter
}

// due reports whether the outcomes or a moved cursor should be written.
func (wk *worker) due() bool {
	if len(wk.pending) >= maxPendingRecords {
		return true
	}
	if len(wk.pending) > 0 {
		return wk.d.cfg.Now().Sub(wk.pendingSince) >= wk.d.cfg.FlushInterval
	}
	// Entries the webhook does not want only move the cursor; writing that
	// less often keeps a busy log from costing a Raft write per poll.
	return wk.cursor > wk.stored && wk.d.cfg.Now().Sub(wk.lastFlush) >= cursorOnlyEvery*wk.d.cfg.FlushInterval
}

// cursorOnlyEvery spaces writes that only move the cursor, in flush
// intervals.
const cursorOnlyEvery = 10

// flush writes the pending outcomes and the cursor. On failure they stay
// pending; if leadership is gone, the next leader delivers them again.
func (wk *worker) flush(ctx context.Context) {
	if len(wk.pending) == 0 && wk.cursor <= wk.stored {
		return
	}
	_, err := wk.d.apply(ctx, fsm.CmdRecordDeliveries, fsm.RecordDeliveriesPayload{
		VaultID: wk.vault, WebhookID: wk.id, Records: wk.pending, Cursor: wk.cursor, DisableAfter: wk.d.cfg.DisableAfter,
	})
	if err != nil {
		wk.d.logger.Debug("write webhook deliveries", "webhook_id", wk.id, "err", err)
		return
	}
	wk.pending = nil
	wk.stored = wk.cursor
	wk.lastFlush = wk.d.cfg.Now()
}
