package httpapi

import (
	"time"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// Temp token lifetimes: how long an issued token may wait for its machine.
const (
	defaultTempTokenTTL = time.Hour
	maxTempTokenTTL     = 7 * 24 * time.Hour
	minTempTokenTTL     = time.Minute
)

// tempTokenRequest is the body of POST /v1/admin/vaults/{vaultId}/temp-tokens.
type tempTokenRequest struct {
	Name       string            `json:"name"`
	Purpose    string            `json:"purpose"`
	Lifetime   *fsm.Lifetime     `json:"lifetime"`
	TokenTTL   string            `json:"tokenTtl"`
	Guardrails *guard.Guardrails `json:"guardrails"`
}

// createTempToken serves POST …/temp-tokens: a single-use token that
// registers one temporary machine, pending, with the name, purpose,
// lifetime and guardrails fixed here.
func (s *Server) createTempToken(rc *request, ac *adminCall) error {
	var in tempTokenRequest
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	bt, err := tempToken(in, rc.now)
	if err != nil {
		return err
	}
	bt.VaultID = ac.vault.ID
	return s.issueBootstrapToken(rc, ac, bt, ActionTempTokenCreate)
}

// tempToken validates a temp-token request and returns the token record
// without its id and hash.
func tempToken(in tempTokenRequest, now time.Time) (fsm.BootstrapToken, error) {
	if err := checkName("name", in.Name, maxMachineNameLength); err != nil {
		return fsm.BootstrapToken{}, err
	}
	if err := checkText("purpose", in.Purpose, maxPurposeLength); err != nil {
		return fsm.BootstrapToken{}, err
	}
	if in.Lifetime == nil {
		return fsm.BootstrapToken{}, fail(ErrBadRequest, "lifetime is required: {\"months\",\"days\",\"hours\"}, from 1 hour to 12 months")
	}
	lt := in.Lifetime
	if err := guard.ValidateLifetime(lt.Months, lt.Days, lt.Hours, now); err != nil {
		return fsm.BootstrapToken{}, err
	}
	ttl, err := tempTokenTTL(in.TokenTTL)
	if err != nil {
		return fsm.BootstrapToken{}, err
	}
	guardrails, err := compileGuardrails(in.Guardrails)
	if err != nil {
		return fsm.BootstrapToken{}, err
	}

	return fsm.BootstrapToken{
		Kind:        fsm.TokenKindTemp,
		ExpiresAt:   now.Add(ttl).UnixMilli(),
		MaxUses:     1,
		MachineName: in.Name,
		Purpose:     in.Purpose,
		Lifetime:    &fsm.Lifetime{Months: lt.Months, Days: lt.Days, Hours: lt.Hours},
		Guardrails:  guardrails,
	}, nil
}

// tempTokenTTL parses tokenTtl: a Go duration from 1 minute to 7 days,
// 1 hour when empty.
func tempTokenTTL(text string) (time.Duration, error) {
	if text == "" {
		return defaultTempTokenTTL, nil
	}
	ttl, err := time.ParseDuration(text)
	if err != nil {
		return 0, fail(ErrBadRequest, "tokenTtl %q is not a Go duration such as 1h or 48h", clip(text))
	}
	if ttl < minTempTokenTTL || ttl > maxTempTokenTTL {
		return 0, fail(ErrBadRequest, "tokenTtl %v is out of range; use %v to %v", ttl, minTempTokenTTL, maxTempTokenTTL)
	}
	return ttl, nil
}

// compileGuardrails validates guardrails with guard's compiler, which names
// the failing field. It returns nil for nil or empty guardrails.
func compileGuardrails(g *guard.Guardrails) (*guard.Guardrails, error) {
	if g == nil || (g.IPAllowlist == nil && g.Countries == nil && g.TimeWindow == nil) {
		return nil, nil
	}
	if _, err := g.Compile(); err != nil {
		return nil, err
	}
	return g, nil
}

// extendRequest is the body of POST …/machines/{machineId}/extend: exactly
// one of ExpiresAt (Unix milliseconds) and Duration (a Go duration added to
// the current expiry), and a reason.
type extendRequest struct {
	ExpiresAt *int64  `json:"expiresAt"`
	Duration  *string `json:"duration"`
	Reason    string  `json:"reason"`
}

// extendMachine serves POST …/machines/{machineId}/extend. The new expiry
// and the cap (now plus twelve calendar months) are computed here and
// carried in the command, so every node stores the same values. The state
// machine checks them again against the state at apply time. A request
// over the cap is rejected with 422 and changes nothing, because a
// silently capped expiry would mislead the caller.
func (s *Server) extendMachine(rc *request, ac *adminCall) error {
	var in extendRequest
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if err := checkName("reason", in.Reason, maxReasonLength); err != nil {
		return err
	}
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	m := &entry.Machine
	if err := checkExtendable(m, rc.now); err != nil {
		return err
	}
	newExpiresAt, err := requestedExpiry(in, m.ExpiresAt)
	if err != nil {
		return err
	}
	capMs := guard.ExtensionCap(rc.now).UnixMilli()
	if err := checkNewExpiry(m.ExpiresAt, newExpiresAt, capMs); err != nil {
		return err
	}

	payload := fsm.ExtendMachinePayload{
		VaultID: ac.vault.ID, MachineID: m.ID, ExtensionID: newHandle("ext_"),
		NewExpiresAt: newExpiresAt, Cap: capMs, Reason: in.Reason,
	}
	fields := map[string]any{
		"previousExpiresAt": m.ExpiresAt, "newExpiresAt": newExpiresAt,
		"cap": capMs, "reason": in.Reason,
	}
	if in.Duration != nil {
		// A duration counts from the expiry the leader applies, not from
		// this node's copy, which may not hold an extension committed a
		// moment ago. The checks above used this node's copy only to
		// reject what can never pass.
		payload.NewExpiresAt, payload.ExtendByMs = 0, newExpiresAt-m.ExpiresAt
		delete(fields, "newExpiresAt")
		delete(fields, "previousExpiresAt")
		fields["extendByMs"] = payload.ExtendByMs
	}
	return s.proposeMachine(rc, ac, proposal{typ: fsm.CmdExtendMachine, payload: payload},
		ActionTempMachineExtend, severityMedium, fields)
}

// checkExtendable allows extending only a machine that has an expiry, is
// active or pending, and has not reached its expiry.
func checkExtendable(m *fsm.Machine, now time.Time) error {
	if m.ExpiresAt == 0 {
		return fail(ErrConflict, "Machine %s does not expire (kind %s); only machines with an expiry can be extended", m.ID, m.Kind)
	}
	if m.Status != fsm.StatusActive && m.Status != fsm.StatusPending {
		return fail(ErrConflict, "Machine %s is %s; only active or pending machines can be extended", m.ID, m.Status)
	}
	if machineExpired(m, now) {
		return fail(ErrConflict, "Machine %s expired at %s; an expired machine cannot be extended", m.ID, formatMs(m.ExpiresAt))
	}
	return nil
}

// requestedExpiry returns the new expiry in Unix milliseconds.
func requestedExpiry(in extendRequest, current int64) (int64, error) {
	switch {
	case in.ExpiresAt != nil && in.Duration != nil:
		return 0, fail(ErrBadRequest, "send either expiresAt or duration, not both")
	case in.ExpiresAt != nil:
		if *in.ExpiresAt <= 0 {
			return 0, fail(ErrBadRequest, "expiresAt %d must be a positive Unix time in milliseconds", *in.ExpiresAt)
		}
		return *in.ExpiresAt, nil
	case in.Duration != nil:
		d, err := time.ParseDuration(*in.Duration)
		if err != nil {
			return 0, fail(ErrBadRequest, "duration %q is not a Go duration such as 720h", clip(*in.Duration))
		}
		if d < time.Millisecond {
			return 0, fail(ErrBadRequest, "duration %q must be at least 1ms; an extension moves the expiry later", clip(*in.Duration))
		}
		// current is near 2^41 and d.Milliseconds() below 2^53, so the sum
		// cannot overflow int64.
		return current + d.Milliseconds(), nil
	}
	return 0, fail(ErrBadRequest, "expiresAt (Unix milliseconds) or duration (a Go duration such as 720h) is required")
}

// checkNewExpiry requires current < next <= capMs.
func checkNewExpiry(current, next, capMs int64) error {
	if next > capMs {
		return fail(ErrOverCap,
			"New expiry %s (%d ms) is after the extension cap %s (%d ms): an expiry may be at most 12 calendar months from now. The expiry is unchanged at %s.",
			formatMs(next), next, formatMs(capMs), capMs, formatMs(current))
	}
	if next <= current {
		return fail(ErrBadRequest, "New expiry %s is not after the current expiry %s; an extension must move the expiry later",
			formatMs(next), formatMs(current))
	}
	return nil
}

// revertExtension serves POST …/machines/{machineId}/revert {"reason"}
// (the reason is optional): the latest extension still in force is undone. If the restored expiry
// has passed, the state machine expires the machine at once.
func (s *Server) revertExtension(rc *request, ac *adminCall) error {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decodeOptionalJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if err := checkText("reason", in.Reason, maxReasonLength); err != nil {
		return err
	}
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	m := &entry.Machine
	if !hasActiveExtension(m) {
		return fail(ErrConflict, "Machine %s has no extension in force to revert", m.ID)
	}

	payload := fsm.RevertExtensionPayload{VaultID: ac.vault.ID, MachineID: m.ID, Reason: in.Reason}
	fields := map[string]any{"previousExpiresAt": m.ExpiresAt, "reason": in.Reason}
	return s.proposeMachine(rc, ac, proposal{typ: fsm.CmdRevertExtension, payload: payload},
		ActionTempMachineExtendRevert, severityMedium, fields)
}

func hasActiveExtension(m *fsm.Machine) bool {
	for _, e := range m.Extensions {
		if e.RevertedAt == 0 {
			return true
		}
	}
	return false
}

// listExtensions serves GET …/machines/{machineId}/extensions: the whole
// history, reverted entries included, oldest first.
func (s *Server) listExtensions(rc *request, ac *adminCall) error {
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	ext := entry.Machine.Extensions
	if ext == nil {
		ext = []fsm.Extension{}
	}
	return writeOK(rc, map[string]any{"extensions": ext})
}

// setGuardrails serves PUT …/machines/{machineId}/guardrails. The body is
// the whole guardrail set; {} removes every guardrail. It is validated by
// guard's compiler, whose message names the failing field.
func (s *Server) setGuardrails(rc *request, ac *adminCall) error {
	var in guard.Guardrails
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	guardrails, err := compileGuardrails(&in)
	if err != nil {
		return err
	}
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}

	payload := fsm.SetGuardrailsPayload{VaultID: ac.vault.ID, MachineID: entry.Machine.ID, Guardrails: guardrails}
	fields := map[string]any{"guardrails": guardrails, "previous": entry.Machine.Guardrails}
	return s.proposeMachine(rc, ac, proposal{typ: fsm.CmdSetGuardrails, payload: payload},
		ActionTempMachineGuardrails, severityMedium, fields)
}

// getGuardrails serves GET …/machines/{machineId}/guardrails; {} when none
// are set.
func (s *Server) getGuardrails(rc *request, ac *adminCall) error {
	entry, err := s.vaultMachine(ac, rc.param("machineId"))
	if err != nil {
		return err
	}
	if entry.Machine.Guardrails == nil {
		return writeOK(rc, guard.Guardrails{})
	}
	return writeOK(rc, entry.Machine.Guardrails)
}

// rfc3339Milli formats instants in messages and audit fields.
const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

// formatMs formats Unix milliseconds as RFC 3339 in UTC.
func formatMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(rfc3339Milli)
}
