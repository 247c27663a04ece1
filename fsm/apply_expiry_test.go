package fsm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

// extend builds an extension payload with the cap the proposer computes
// from the harness clock.
func (h *harness) extend(id MachineID, extID string, newExpiresAt int64) ExtendMachinePayload {
	return ExtendMachinePayload{
		VaultID:      vaultA,
		MachineID:    id,
		ExtensionID:  extID,
		NewExpiresAt: newExpiresAt,
		Cap:          guard.ExtensionCap(time.UnixMilli(h.now)).UnixMilli(),
		Reason:       "project overran",
	}
}

func TestFSM_ExtendMachine(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	h.now += 1000

	target := m.ExpiresAt + int64(30*24*time.Hour/time.Millisecond)
	var got Machine
	h.mustApply(CmdExtendMachine, h.extend(machine1, "ext-1", target), &got)
	if got.ExpiresAt != target || len(got.Extensions) != 1 {
		t.Fatalf("machine = %+v", got)
	}
	x := got.Extensions[0]
	want := Extension{ID: "ext-1", PreviousExpiresAt: m.ExpiresAt, NewExpiresAt: target, Reason: "project overran", Actor: h.actor.ID, CreatedAt: h.now}
	if x != want {
		t.Fatalf("extension = %+v, want %+v", x, want)
	}
	if h.machine(machine1).ExpiresAt != target {
		t.Fatal("index not updated")
	}
}

func TestFSM_ExtendRejects(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	h.setupMachine(vaultA, machine2, TokenKindStandard, 2)
	later := m.ExpiresAt + 1000
	h.mustApply(CmdExtendMachine, h.extend(machine1, "ext-1", later), nil)

	cases := []struct {
		name   string
		mutate func(*ExtendMachinePayload)
		want   error
	}{
		{"not after current", func(p *ExtendMachinePayload) { p.NewExpiresAt = later }, ErrInvalid},
		{"earlier than current", func(p *ExtendMachinePayload) { p.NewExpiresAt = later - 1 }, ErrInvalid},
		{"zero expiry", func(p *ExtendMachinePayload) { p.NewExpiresAt = 0 }, ErrInvalid},
		{"negative expiry", func(p *ExtendMachinePayload) { p.NewExpiresAt = -1 }, ErrInvalid},
		{"one millisecond over the cap", func(p *ExtendMachinePayload) { p.NewExpiresAt = p.Cap + 1 }, ErrOverCap},
		{"far future", func(p *ExtendMachinePayload) {
			p.NewExpiresAt = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli()
		}, ErrOverCap},
		{"cap beyond twelve months", func(p *ExtendMachinePayload) { p.Cap += 1; p.NewExpiresAt = p.Cap }, ErrInvalid},
		{"cap in the past", func(p *ExtendMachinePayload) { p.Cap = h.now }, ErrInvalid},
		{"missing reason", func(p *ExtendMachinePayload) { p.Reason = "" }, ErrInvalid},
		{"long reason", func(p *ExtendMachinePayload) { p.Reason = strings.Repeat("r", MaxReasonChars+1) }, ErrInvalid},
		{"repeated extension id", func(p *ExtendMachinePayload) { p.ExtensionID = "ext-1" }, ErrAlreadyExists},
		{"missing extension id", func(p *ExtendMachinePayload) { p.ExtensionID = "" }, ErrInvalid},
		{"other vault", func(p *ExtendMachinePayload) { p.VaultID = vaultB }, ErrNotFound},
		{"no expiry", func(p *ExtendMachinePayload) { p.MachineID = machine2 }, ErrNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := h.extend(machine1, "ext-2", later+1000)
			tc.mutate(&p)
			h.expectReject(CmdExtendMachine, p, tc.want)
		})
	}
}

func TestFSM_ExtendOverCapNamesCap(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)

	p := h.extend(machine1, "ext-1", 0)
	p.NewExpiresAt = p.Cap + 1
	r := h.expectReject(CmdExtendMachine, p, ErrOverCap)
	if !strings.Contains(r.Message, formatMs(p.Cap)) || !strings.Contains(r.Message, formatMs(m.ExpiresAt)) {
		t.Fatalf("message %q names neither the cap nor the kept expiry", r.Message)
	}
	if h.machine(machine1).ExpiresAt != m.ExpiresAt {
		t.Fatal("expiry moved on a rejected extension")
	}
}

func TestFSM_ExtendStatusRules(t *testing.T) {
	cases := []struct {
		name    string
		actions []string
		want    error
	}{
		{"pending", nil, nil},
		{"active", []string{ActionApprove}, nil},
		{"disabled", []string{ActionApprove, ActionDisable}, ErrNotAllowed},
		{"revoked", []string{ActionRevoke}, ErrNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemHarness(t)
			h.setupVault(vaultA)
			m := h.setupMachine(vaultA, machine1, TokenKindTemp, 1)
			for _, a := range tc.actions {
				h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: a}, nil)
			}
			p := h.extend(machine1, "ext-1", m.ExpiresAt+1)
			if tc.want == nil {
				h.mustApply(CmdExtendMachine, p, nil)
				return
			}
			h.expectReject(CmdExtendMachine, p, tc.want)
		})
	}
}

func TestFSM_ExtendAtExpiryInstant(t *testing.T) {
	cases := []struct {
		name   string
		offset int64
		want   error
	}{
		{"one millisecond before expiry", -1, nil},
		{"at expiry", 0, ErrNotAllowed},
		{"after expiry", 1, ErrNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemHarness(t)
			h.setupVault(vaultA)
			m := h.setupActiveTemp(vaultA, machine1, 1)
			h.now = m.ExpiresAt + tc.offset
			p := h.extend(machine1, "ext-1", m.ExpiresAt+1000)
			if tc.want == nil {
				h.mustApply(CmdExtendMachine, p, nil)
				return
			}
			h.expectReject(CmdExtendMachine, p, tc.want)
		})
	}
}

// TestFSM_ExtendCapOnLeapDay follows the cap from 29 February 2028: twelve
// calendar months later is 28 February 2029 at the same time of day.
func TestFSM_ExtendCapOnLeapDay(t *testing.T) {
	cases := []struct {
		name   string
		target time.Time
		want   error
	}{
		{"cap exactly", time.Date(2029, 2, 28, 10, 0, 0, 0, time.UTC), nil},
		{"1 March", time.Date(2029, 3, 1, 10, 0, 0, 0, time.UTC), ErrOverCap},
		{"1 March plus a second", time.Date(2029, 3, 1, 10, 0, 1, 0, time.UTC), ErrOverCap},
		{"cap plus a millisecond", time.Date(2029, 2, 28, 10, 0, 0, int(time.Millisecond), time.UTC), ErrOverCap},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemHarness(t)
			h.now = ms(time.Date(2028, 2, 20, 10, 0, 0, 0, time.UTC))
			h.setupVault(vaultA)
			h.setupActiveTemp(vaultA, machine1, 1)

			h.now = ms(time.Date(2028, 2, 29, 10, 0, 0, 0, time.UTC))
			p := h.extend(machine1, "ext-1", ms(tc.target))
			if p.Cap != ms(time.Date(2029, 2, 28, 10, 0, 0, 0, time.UTC)) {
				t.Fatalf("cap = %s, want 2029-02-28T10:00:00Z", formatMs(p.Cap))
			}
			if tc.want == nil {
				h.mustApply(CmdExtendMachine, p, nil)
				return
			}
			h.expectReject(CmdExtendMachine, p, tc.want)
		})
	}
}

// TestFSM_ExtendDailyNeverPassesCap extends by eleven months every
// simulated day for sixty days; the expiry never passes the clock plus
// twelve months.
func TestFSM_ExtendDailyNeverPassesCap(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupActiveTemp(vaultA, machine1, 1)

	day := int64(24 * time.Hour / time.Millisecond)
	applied := 0
	for i := range 60 {
		h.now += day
		want := guard.AddMonths(time.UnixMilli(h.now), 11).UnixMilli()
		p := h.extend(machine1, "ext-"+string(rune('A'+i%26))+string(rune('a'+i/26)), want)
		r := h.apply(CmdExtendMachine, p)
		if r.Code == "" {
			applied++
		}
		m := h.machine(machine1)
		if m.ExpiresAt > guard.ExtensionCap(time.UnixMilli(h.now)).UnixMilli() {
			t.Fatalf("day %d: expiry %s is past the cap", i, formatMs(m.ExpiresAt))
		}
	}
	if applied != 60 || len(h.machine(machine1).Extensions) != 60 {
		t.Fatalf("%d extensions applied, %d in history; want 60", applied, len(h.machine(machine1).Extensions))
	}
}

func TestFSM_RevertWalksTheStack(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	a := m.ExpiresAt
	b, c, d := a+1000, a+2000, a+3000

	h.mustApply(CmdExtendMachine, h.extend(machine1, "e1", b), nil)
	h.mustApply(CmdExtendMachine, h.extend(machine1, "e2", c), nil)

	h.actor.ID = "tok_security"
	var got Machine
	h.mustApply(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1, Reason: "too long"}, &got)
	if got.ExpiresAt != b {
		t.Fatalf("after first revert expiry = %d, want %d", got.ExpiresAt, b)
	}
	x := got.Extensions[1]
	if x.RevertedAt != h.now || x.RevertedBy != "tok_security" || x.RevertReason != "too long" {
		t.Fatalf("reverted extension = %+v", x)
	}

	h.mustApply(CmdExtendMachine, h.extend(machine1, "e3", d), nil)
	h.mustApply(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1}, &got)
	if got.ExpiresAt != b {
		t.Fatalf("revert of e3 gave %d, want %d", got.ExpiresAt, b)
	}
	h.mustApply(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1}, &got)
	if got.ExpiresAt != a {
		t.Fatalf("revert of e1 gave %d, want the original %d", got.ExpiresAt, a)
	}
	if len(got.Extensions) != 3 {
		t.Fatalf("history has %d entries, want all 3 kept", len(got.Extensions))
	}
	for _, x := range got.Extensions {
		if x.RevertedAt == 0 {
			t.Fatalf("extension %s not marked reverted", x.ID)
		}
	}

	h.expectReject(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1}, ErrNotAllowed)
}

func TestFSM_RevertIntoThePastExpires(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	h.now = m.ExpiresAt - 1000
	h.mustApply(CmdExtendMachine, h.extend(machine1, "e1", m.ExpiresAt+int64(time.Hour/time.Millisecond)), nil)

	h.now = m.ExpiresAt
	var got Machine
	h.mustApply(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1}, &got)
	if got.Status != StatusExpired || got.ExpiresAt != m.ExpiresAt {
		t.Fatalf("machine after revert = status %s expiry %d, want expired at %d", got.Status, got.ExpiresAt, m.ExpiresAt)
	}
	h.expectReject(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1}, ErrNotAllowed)
}

func TestFSM_RevertRejects(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupActiveTemp(vaultA, machine1, 1)
	h.expectReject(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1}, ErrNotAllowed)
	h.expectReject(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine2}, ErrNotFound)
	h.expectReject(CmdRevertExtension, RevertExtensionPayload{VaultID: vaultA, MachineID: machine1, Reason: strings.Repeat("r", MaxReasonChars+1)}, ErrInvalid)
}

// TestFSM_ExpireExactInstant checks that the sweep expires a machine at
// its expiry exactly, not one millisecond before.
func TestFSM_ExpireExactInstant(t *testing.T) {
	expiry := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		at      time.Time
		expired bool
	}{
		{"11:59:59.999", expiry.Add(-time.Millisecond), false},
		{"12:00:00.000", expiry, true},
		{"12:00:00.001", expiry.Add(time.Millisecond), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemHarness(t)
			h.now = ms(time.Date(2026, 6, 29, 12, 0, 0, 0, time.UTC))
			h.setupVault(vaultA)
			h.setupToken(vaultA, "temp", TokenKindTemp, func(b *BootstrapToken) { b.Lifetime = &Lifetime{Days: 1} })
			h.mustApply(CmdRegisterMachine, RegisterMachinePayload{TokenHash: tokenHash("temp"), MachineID: machine1, PublicKey: publicKey(1), Hostname: "h"}, nil)
			if got := h.machine(machine1).ExpiresAt; got != ms(expiry) {
				t.Fatalf("expiry = %s, want %s", formatMs(got), expiry)
			}

			h.now = ms(tc.at)
			var res ExpireResult
			h.mustApply(CmdExpireMachines, ExpireMachinesPayload{MachineIDs: []MachineID{machine1}}, &res)
			m := h.machine(machine1)
			if got := m.Status == StatusExpired; got != tc.expired {
				t.Fatalf("status %s at %s, want expired=%v", m.Status, tc.at.Format(time.RFC3339Nano), tc.expired)
			}
			if got := len(res.Expired) == 1; got != tc.expired {
				t.Fatalf("result %v, want expired=%v", res.Expired, tc.expired)
			}
			if m.Expired(h.now) != tc.expired {
				t.Fatalf("Machine.Expired disagrees with the sweep at %s", tc.at.Format(time.RFC3339Nano))
			}
		})
	}
}

func TestFSM_ExpireSweepOnce(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m1 := h.setupActiveTemp(vaultA, machine1, 1)
	h.setupMachine(vaultA, machine2, TokenKindTemp, 2)
	h.setupMachine(vaultA, machine3, TokenKindStandard, 3)
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine2, Action: ActionRevoke}, nil)

	h.now = m1.ExpiresAt
	sweep := ExpireMachinesPayload{MachineIDs: []MachineID{machine1, machine2, machine3, "44444444-4444-4444-8444-444444444444", machine1}}
	r := h.apply(CmdExpireMachines, sweep)
	var res ExpireResult
	if err := json.Unmarshal(r.Body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Expired) != 1 || res.Expired[0] != machine1 {
		t.Fatalf("expired = %v, want only %s", res.Expired, machine1)
	}
	if h.machine(machine2).Status != StatusRevoked || h.machine(machine3).Status != StatusPending {
		t.Fatal("the sweep changed a revoked or non-expiring machine")
	}

	r = h.apply(CmdExpireMachines, sweep)
	if string(r.Body) != `{"expired":[]}` {
		t.Fatalf("second sweep body = %s, want nothing expired", r.Body)
	}

	h.expectReject(CmdExpireMachines, ExpireMachinesPayload{MachineIDs: make([]MachineID, MaxExpireBatch+1)}, ErrInvalid)
}

func TestFSM_ExtensionHistoryBounded(t *testing.T) {
	h := newMemHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	for i := range MaxExtensions {
		h.mustApply(CmdExtendMachine, h.extend(machine1, "e"+itoa(i), m.ExpiresAt+int64(i+1)), nil)
	}
	h.expectReject(CmdExtendMachine, h.extend(machine1, "overflow", m.ExpiresAt+int64(MaxExtensions+1)), ErrNotAllowed)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestFSM_ExtendByCountsFromAppliedExpiry proposes two extensions by a
// duration, as two nodes with the same old copy of the machine would. Each
// moves the expiry from the one Apply finds, so neither is lost or
// rejected.
func TestFSM_ExtendByCountsFromAppliedExpiry(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	day := int64(24 * time.Hour / time.Millisecond)

	by := func(id string, ms int64) ExtendMachinePayload {
		p := h.extend(machine1, id, 0)
		p.ExtendByMs = ms
		return p
	}
	h.mustApply(CmdExtendMachine, by("ext-a", day), nil)
	var got Machine
	h.mustApply(CmdExtendMachine, by("ext-b", day), &got)
	if got.ExpiresAt != m.ExpiresAt+2*day {
		t.Fatalf("expiry after two one-day extensions = %s, want %s", formatMs(got.ExpiresAt), formatMs(m.ExpiresAt+2*day))
	}
	if x := got.Extensions[1]; x.PreviousExpiresAt != m.ExpiresAt+day || x.NewExpiresAt != m.ExpiresAt+2*day {
		t.Fatalf("second extension = %+v", x)
	}

	both := by("ext-c", day)
	both.NewExpiresAt = m.ExpiresAt + 3*day
	h.expectReject(CmdExtendMachine, both, ErrInvalid)
	h.expectReject(CmdExtendMachine, by("ext-d", -day), ErrInvalid)
	h.expectReject(CmdExtendMachine, by("ext-e", 400*day), ErrOverCap)
}
