package audit

import (
	"context"
	"slices"
	"time"

	"github.com/keyward/keyward/fsm"
)

// RunRetention compacts every vault's log, and the entries of no vault,
// once per RetentionInterval, starting at once.
func (d *Dispatcher) RunRetention(ctx context.Context) {
	for {
		d.compactAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.RetentionInterval):
		}
	}
}

func (d *Dispatcher) compactAll(ctx context.Context) {
	buckets := []fsm.VaultID{""}
	for _, v := range d.sm.Vaults() {
		buckets = append(buckets, v.ID)
	}
	for _, vault := range buckets {
		for ctx.Err() == nil {
			var res fsm.AuditCompactResult
			resp, err := d.apply(ctx, fsm.CmdAuditCompact, fsm.AuditCompactPayload{VaultID: vault})
			if err != nil || decodeBody(resp, &res) != nil || !res.More {
				break
			}
		}
	}
}

// RunExpiryWarnings writes expiry warnings every ExpiryCheckInterval,
// starting at once.
func (d *Dispatcher) RunExpiryWarnings(ctx context.Context) {
	for {
		d.warnAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.ExpiryCheckInterval):
		}
	}
}

// warnAll proposes, for each machine of a vault with warning offsets, the
// smallest offset that is due, unless it was written for this expiry.
// Larger offsets that are also due are skipped: a machine that already
// expires within a day gets the one-day warning, not the week one as well.
func (d *Dispatcher) warnAll(ctx context.Context) {
	now := d.cfg.Now().UnixMilli()
	offsets := make(map[fsm.VaultID][]int64)
	var horizon int64
	for _, v := range d.sm.Vaults() {
		s, err := d.sm.AlertSettings(v.ID)
		if err != nil || len(s.ExpiryWarnings) == 0 {
			continue
		}
		offsets[v.ID] = s.ExpiryWarnings
		horizon = max(horizon, slices.Max(s.ExpiryWarnings))
	}
	if len(offsets) == 0 {
		return
	}
	// Only machines expiring within the largest offset can be due.
	for _, e := range d.sm.MachinesExpiringBy(now + horizon) {
		if ctx.Err() != nil {
			return
		}
		m := &e.Machine
		vaultOffsets, ok := offsets[m.VaultID]
		if !ok {
			continue
		}
		if offset, ok := dueOffset(m, vaultOffsets, now); ok && !d.warned(m, offset) {
			d.apply(ctx, fsm.CmdExpiryWarning, fsm.ExpiryWarningPayload{
				VaultID: m.VaultID, MachineID: m.ID, OffsetMs: offset, ExpiresAt: m.ExpiresAt,
			})
		}
	}
}

// dueOffset returns the smallest offset whose warning time has come for m.
func dueOffset(m *fsm.Machine, offsets []int64, now int64) (int64, bool) {
	if m.ExpiresAt == 0 || now >= m.ExpiresAt || (m.Status != fsm.StatusActive && m.Status != fsm.StatusPending) {
		return 0, false
	}
	best, ok := int64(0), false
	for _, o := range offsets {
		if now >= m.ExpiresAt-o && (!ok || o < best) {
			best, ok = o, true
		}
	}
	return best, ok
}

func (d *Dispatcher) warned(m *fsm.Machine, offset int64) bool {
	expiresAt, sent := d.sm.ExpiryWarningsSent(m.ID)
	return expiresAt == m.ExpiresAt && slices.Contains(sent, offset)
}
