package audit

import (
	"context"
	"time"

	"github.com/keyward/keyward/fsm"
)

// maxEmailBatch bounds the entries one pass mails for a vault.
const maxEmailBatch = 200

// RunEmail mails each vault's matching entries from its email cursor and
// moves the cursor through Raft. It does nothing when no relay is set.
func (d *Dispatcher) RunEmail(ctx context.Context) {
	if d.mailer == nil {
		d.warnEmailWithoutSMTP()
		return
	}
	// moved records when each vault's cursor was last written without a
	// message, so entries that mail nobody cost a Raft write only now and
	// then rather than on every commit.
	moved := map[fsm.VaultID]time.Time{}
	for {
		changed := d.sm.AuditChanged()
		for _, v := range d.sm.Vaults() {
			if ctx.Err() != nil {
				return
			}
			d.emailVault(ctx, v.ID, moved)
		}
		if !d.waitChange(ctx, changed, d.cfg.PollInterval) {
			return
		}
	}
}

// EmailEnabled reports whether this node can send email alerts, which
// needs --smtp-addr.
func (d *Dispatcher) EmailEnabled() bool { return d.mailer != nil }

// warnEmailWithoutSMTP logs, when this node becomes leader without a mail
// relay, each vault whose email alerts it therefore cannot send.
func (d *Dispatcher) warnEmailWithoutSMTP() {
	for _, v := range d.sm.Vaults() {
		s, err := d.sm.AlertSettings(v.ID)
		if err != nil || len(s.Email.To) == 0 {
			continue
		}
		d.logger.Warn("email alerts are configured but this leader has no --smtp-addr, so none are sent; "+
			"start every node that can become leader with --smtp-addr", "vault_id", v.ID, "recipients", len(s.Email.To))
	}
}

// emailVault sends one pass of a vault's entries: one message per entry,
// or one digest when more than DigestThreshold match.
func (d *Dispatcher) emailVault(ctx context.Context, vault fsm.VaultID, moved map[fsm.VaultID]time.Time) {
	s, err := d.sm.AlertSettings(vault)
	if err != nil || len(s.Email.To) == 0 || len(s.Email.Actions) == 0 {
		return
	}
	entries, err := d.sm.AuditAfter(vault, s.EmailCursor, maxEmailBatch)
	if err != nil || len(entries) == 0 {
		return
	}
	var matched []fsm.AuditEntry
	for _, e := range entries {
		if fsm.ActionMatches(s.Email.Actions, e.Action) && e.Action != "alert_email_failed" {
			matched = append(matched, e)
		}
	}
	cursor := entries[len(entries)-1].ID
	if len(matched) == 0 && len(entries) < maxEmailBatch && d.cfg.Now().Sub(moved[vault]) < cursorOnlyEvery*d.cfg.PollInterval {
		return
	}

	var msgs []message
	switch {
	case len(matched) > d.cfg.SMTP.DigestThreshold:
		msgs = []message{digestMessage(s.Email.To, vault, matched)}
	default:
		for i := range matched {
			msgs = append(msgs, eventMessage(s.Email.To, &matched[i]))
		}
	}
	failed, lastErr := d.sendAll(ctx, msgs)
	if ctx.Err() != nil {
		return // the next leader mails them again
	}
	p := fsm.EmailDeliveredPayload{VaultID: vault, Cursor: cursor}
	if failed > 0 {
		p.Failed, p.Error = failed, clipText(lastErr.Error(), fsm.MaxDeliveryErrorText)
	}
	if _, err := d.apply(ctx, fsm.CmdEmailDelivered, p); err != nil {
		d.logger.Debug("write email cursor", "vault_id", vault, "err", err)
		return
	}
	if len(matched) == 0 {
		moved[vault] = d.cfg.Now()
	}
}

// sendAll sends each message with retries and returns how many failed.
func (d *Dispatcher) sendAll(ctx context.Context, msgs []message) (int, error) {
	failed := 0
	var lastErr error
	for _, msg := range msgs {
		err := d.sendWithRetry(ctx, msg)
		if err == nil {
			d.metrics.Emails.WithLabelValues("sent").Inc()
			continue
		}
		if ctx.Err() != nil {
			return failed, ctx.Err()
		}
		d.metrics.Emails.WithLabelValues("failed").Inc()
		d.logger.Warn("alert email failed", "err", err)
		failed++
		lastErr = err
	}
	return failed, lastErr
}

func (d *Dispatcher) sendWithRetry(ctx context.Context, msg message) error {
	var err error
	for n := 1; n <= d.cfg.SMTP.MaxAttempts; n++ {
		if err = d.mailer.send(ctx, msg); err == nil {
			return nil
		}
		if n < d.cfg.SMTP.MaxAttempts {
			select {
			case <-time.After(d.sender.backoff(n)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return err
}
