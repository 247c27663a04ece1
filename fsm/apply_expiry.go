package fsm

import (
	"slices"
	"time"

	"github.com/keyward/keyward/guard"
)

// ExpireResult is the Response.Body of an expiry sweep.
type ExpireResult struct {
	// Expired lists the machines this command expired, in command order.
	Expired []MachineID `json:"expired"`
}

// applyExtendMachine moves a machine's expiry later and appends the change
// to its history. The proposer fixes NewExpiresAt and Cap (now plus twelve
// calendar months) before proposing; Apply re-derives the cap from
// Command.Time and rejects a Cap above it, so a faulty proposer cannot
// widen the rule.
func applyExtendMachine(t *tx, c *Command) (any, error) {
	var p ExtendMachinePayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	m := &e.Machine
	if err := checkExtendable(m, c.Time); err != nil {
		return nil, err
	}
	if p.ExtendByMs != 0 {
		if p.NewExpiresAt != 0 {
			return nil, rejectf(ErrInvalid, "extension sets both newExpiresAt and extendByMs; set one")
		}
		if p.ExtendByMs < 1 || p.ExtendByMs > maxExtendByMs {
			return nil, rejectf(ErrInvalid, "extendByMs %d is outside 1 to %d", p.ExtendByMs, int64(maxExtendByMs))
		}
		p.NewExpiresAt = m.ExpiresAt + p.ExtendByMs
	}
	if err := checkExtension(m, p, c.Time); err != nil {
		return nil, err
	}

	return t.updateMachine(e, func(m *Machine) {
		m.Extensions = append(m.Extensions, Extension{
			ID:                p.ExtensionID,
			PreviousExpiresAt: m.ExpiresAt,
			NewExpiresAt:      p.NewExpiresAt,
			Reason:            p.Reason,
			Actor:             c.Actor.ID,
			CreatedAt:         c.Time,
		})
		m.ExpiresAt = p.NewExpiresAt
	}), nil
}

// maxExtendByMs bounds ExtendMachinePayload.ExtendByMs far above any
// allowed extension (the cap is twelve months away), so the sum with an
// expiry cannot overflow.
const maxExtendByMs = 100 * 365 * 24 * 3600 * 1000

// checkExtendable requires an active or pending machine with an expiry that
// has not passed.
func checkExtendable(m *Machine, now int64) error {
	if m.Status != StatusActive && m.Status != StatusPending {
		return rejectf(ErrNotAllowed, "cannot extend machine %s: it is %s; only active or pending machines can be extended", m.ID, m.Status)
	}
	if m.ExpiresAt == 0 {
		return rejectf(ErrNotAllowed, "cannot extend machine %s: it has no expiry", m.ID)
	}
	if m.Expired(now) {
		return rejectf(ErrNotAllowed, "cannot extend machine %s: it expired at %s", m.ID, formatMs(m.ExpiresAt))
	}
	if len(m.Extensions) >= MaxExtensions {
		return rejectf(ErrNotAllowed, "cannot extend machine %s: its history holds the maximum of %d extensions", m.ID, MaxExtensions)
	}
	return nil
}

// checkExtension validates the payload against the machine and the cap.
func checkExtension(m *Machine, p ExtendMachinePayload, now int64) error {
	if err := checkHandle("extension id", p.ExtensionID); err != nil {
		return err
	}
	if slices.ContainsFunc(m.Extensions, func(x Extension) bool { return x.ID == p.ExtensionID }) {
		return rejectf(ErrAlreadyExists, "machine %s already has an extension with id %s", m.ID, p.ExtensionID)
	}
	if err := checkText("reason", p.Reason, 1, MaxReasonChars); err != nil {
		return err
	}

	limit := guard.ExtensionCap(time.UnixMilli(now)).UnixMilli()
	switch {
	case p.Cap <= now || p.Cap > limit:
		return rejectf(ErrInvalid, "extension cap %d is not within twelve calendar months after the command time %d (at most %d)", p.Cap, now, limit)
	case p.NewExpiresAt > p.Cap:
		return rejectf(ErrOverCap, "new expiry %s is after the cap %s (twelve calendar months from now); the expiry stays %s",
			formatMs(p.NewExpiresAt), formatMs(p.Cap), formatMs(m.ExpiresAt))
	case p.NewExpiresAt <= m.ExpiresAt:
		return rejectf(ErrInvalid, "new expiry %s is not after the current expiry %s",
			formatMs(p.NewExpiresAt), formatMs(m.ExpiresAt))
	}
	return nil
}

// applyRevertExtension undoes the latest extension that is still in force:
// the expiry returns to its PreviousExpiresAt and the extension is marked
// reverted, never removed. When the restored expiry has passed, the
// machine is expired at once.
func applyRevertExtension(t *tx, c *Command) (any, error) {
	var p RevertExtensionPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	e, err := t.machineInVault(p.VaultID, p.MachineID)
	if err != nil {
		return nil, err
	}
	if err := checkText("reason", p.Reason, 0, MaxReasonChars); err != nil {
		return nil, err
	}
	m := &e.Machine
	if m.Status == StatusExpired || m.Status == StatusRevoked {
		return nil, rejectf(ErrNotAllowed, "cannot revert an extension of machine %s: it is %s", m.ID, m.Status)
	}
	i := latestInForce(m.Extensions)
	if i < 0 {
		return nil, rejectf(ErrNotAllowed, "machine %s has no extension in force to revert", m.ID)
	}

	return t.updateMachine(e, func(m *Machine) {
		x := &m.Extensions[i]
		x.RevertedAt = c.Time
		x.RevertedBy = c.Actor.ID
		x.RevertReason = p.Reason
		m.ExpiresAt = x.PreviousExpiresAt
		if m.Expired(c.Time) {
			m.Status = StatusExpired
		}
	}), nil
}

// latestInForce returns the index of the last un-reverted extension, or -1.
func latestInForce(history []Extension) int {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].RevertedAt == 0 {
			return i
		}
	}
	return -1
}

// applyExpireMachines marks each listed machine expired when its expiry
// has passed at Command.Time. Unknown machines, machines already expired
// or revoked, and machines not yet due are skipped, so a sweep that runs
// twice, or on two leaders in turn, expires each machine once.
func applyExpireMachines(t *tx, c *Command) (any, error) {
	var p ExpireMachinesPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if len(p.MachineIDs) > MaxExpireBatch {
		return nil, rejectf(ErrInvalid, "%d machines in one sweep, limit %d", len(p.MachineIDs), MaxExpireBatch)
	}

	res := ExpireResult{Expired: []MachineID{}}
	for _, id := range p.MachineIDs {
		e, ok := t.machine(id)
		if !ok || !isDue(&e.Machine, c.Time) {
			continue
		}
		t.updateMachine(e, func(m *Machine) { m.Status = StatusExpired })
		res.Expired = append(res.Expired, id)
	}
	return res, nil
}

// isDue reports whether the sweep should expire m at now.
func isDue(m *Machine, now int64) bool {
	if m.Status == StatusExpired || m.Status == StatusRevoked {
		return false
	}
	return m.Expired(now)
}

// formatMs renders Unix milliseconds as RFC 3339 UTC for messages.
func formatMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}
