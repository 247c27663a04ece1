package fsm

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

func TestFSM_RegisterStandardMachine(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupToken(vaultA, "t1", TokenKindStandard, nil)

	var m Machine
	h.mustApply(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash("t1"), VaultID: vaultA, MachineID: machine1, PublicKey: publicKey(1), Hostname: "web-1",
	}, &m)
	if m.Kind != KindStandard || m.Status != StatusPending || m.Name != "web-1" || m.VaultID != vaultA {
		t.Fatalf("machine = %+v", m)
	}
	if m.ExpiresAt != 0 || m.RegisteredAt != h.now || !bytes.Equal(m.PublicKey, publicKey(1)) {
		t.Fatalf("machine = %+v", m)
	}

	e, ok := h.f.Machine(machine1)
	if !ok || e.Key == nil || e.Policy != nil {
		t.Fatalf("Machine(%s) = %+v, %v", machine1, e, ok)
	}
	if tok, _ := h.f.BootstrapTokenByHash(tokenHash("t1")); tok.Uses != 1 {
		t.Fatalf("token uses = %d, want 1", tok.Uses)
	}

	// A single-use token is used up.
	h.expectReject(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash("t1"), MachineID: machine2, PublicKey: publicKey(2), Hostname: "web-2",
	}, ErrTokenInvalid)
}

func TestFSM_RegisterNameDefaults(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupToken(vaultA, "t1", TokenKindStandard, nil)
	h.setupToken(vaultA, "t2", TokenKindStandard, nil)

	var m Machine
	h.mustApply(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash("t1"), MachineID: machine1, PublicKey: publicKey(1), Hostname: "web-1", Name: "api",
	}, &m)
	if m.Name != "api" {
		t.Fatalf("name = %q, want the given name", m.Name)
	}
	h.expectReject(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash("t2"), MachineID: machine2, PublicKey: publicKey(2),
	}, ErrInvalid)
}

func TestFSM_RegisterTempMachine(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	rails := &guard.Guardrails{
		IPAllowlist: &guard.IPAxis{CIDRs: []string{"203.0.113.0/24"}},
		TimeWindow:  &guard.WindowAxis{Start: "22:00", End: "06:00", Timezone: "Europe/Oslo"},
	}
	h.now = ms(time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC))
	h.setupToken(vaultA, "temp", TokenKindTemp, func(b *BootstrapToken) {
		b.Lifetime = &Lifetime{Months: 1, Days: 2, Hours: 3}
		b.Guardrails = rails
	})

	var m Machine
	h.mustApply(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash("temp"), VaultID: vaultA, MachineID: machine1, PublicKey: publicKey(1), Hostname: "laptop", Name: "ignored",
	}, &m)
	// 31 January + 1 month clamps to 28 February, then 2 days and 3 hours.
	want := ms(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	if m.ExpiresAt != want {
		t.Fatalf("expiresAt = %s, want %s", formatMs(m.ExpiresAt), formatMs(want))
	}
	if m.Kind != KindTemp || m.Name != "contractor-laptop" || m.Purpose != "incident response" || m.Status != StatusPending {
		t.Fatalf("machine = %+v", m)
	}
	if m.Guardrails == nil || m.Guardrails.TimeWindow == nil {
		t.Fatal("guardrails not copied from the token")
	}
	if e, _ := h.f.Machine(machine1); e.Policy == nil {
		t.Fatal("temp machine has no compiled policy")
	}
}

func TestFSM_RegisterEnrollmentMachine(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "web")
	h.setupSecret(projA, secA, "db", "v1")
	h.setupToken(vaultA, "enroll", TokenKindEnrollment, func(b *BootstrapToken) {
		b.MaxUses = 2
		b.Lifetime = &Lifetime{Days: 1}
		b.ProjectIDs = []ProjectID{projA, projA}
		b.SecretIDs = []SecretID{secA}
	})
	for i, id := range []MachineID{machine1, machine2} {
		var m Machine
		h.mustApply(CmdRegisterMachine, RegisterMachinePayload{
			TokenHash: tokenHash("enroll"), MachineID: id, PublicKey: publicKey(byte(i + 1)), Hostname: "runner",
		}, &m)
		if m.Kind != KindEphemeral {
			t.Fatalf("kind = %q, want %q", m.Kind, KindEphemeral)
		}
		if m.ExpiresAt != h.now+int64(24*time.Hour/time.Millisecond) {
			t.Fatalf("expiresAt = %d, want one day after %d", m.ExpiresAt, h.now)
		}
		if m.Status != StatusActive || m.ApprovedAt != h.now {
			t.Fatalf("status = %q approvedAt = %d, want active at %d", m.Status, m.ApprovedAt, h.now)
		}
		if !slices.Equal(m.Projects, []ProjectID{projA}) {
			t.Fatalf("projects = %v, want [%s]", m.Projects, projA)
		}
		if !slices.Equal(m.Grants, []SecretID{secA}) {
			t.Fatalf("grants = %v, want [%s]", m.Grants, secA)
		}
		if e, _ := h.f.Machine(id); e == nil {
			t.Fatalf("enrolled machine %s is not in the index", id)
		} else if !e.HasGrant(secA) {
			t.Fatalf("index entry of %s has no grant on %s", id, secA)
		}
	}
	h.expectReject(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash("enroll"), MachineID: machine3, PublicKey: publicKey(3), Hostname: "runner",
	}, ErrTokenInvalid)
}

func TestFSM_EnrollmentTokenAccessLists(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupProject(vaultA, projA, "web")
	h.setupProject(vaultA, projA2, "batch")
	h.setupProject(vaultB, projB, "other")
	h.setupSecret(projA, secA, "db", "v1")
	h.setupSecret(projA2, secA2, "queue", "v1")

	enroll := func(b *BootstrapToken) { b.MaxUses = 5; b.Lifetime = &Lifetime{Days: 1} }
	cases := []struct {
		name   string
		kind   string
		mutate func(*BootstrapToken)
		want   error
	}{
		{"project of another vault", TokenKindEnrollment, func(b *BootstrapToken) {
			enroll(b)
			b.ProjectIDs = []ProjectID{projB}
		}, ErrNotFound},
		{"unknown secret", TokenKindEnrollment, func(b *BootstrapToken) {
			enroll(b)
			b.ProjectIDs = []ProjectID{projA}
			b.SecretIDs = []SecretID{"sk_missing00"}
		}, ErrNotFound},
		{"secret outside listed projects", TokenKindEnrollment, func(b *BootstrapToken) {
			enroll(b)
			b.ProjectIDs = []ProjectID{projA}
			b.SecretIDs = []SecretID{secA2}
		}, ErrInvalid},
		{"standard with projects", TokenKindStandard, func(b *BootstrapToken) { b.ProjectIDs = []ProjectID{projA} }, ErrInvalid},
		{"temp with secrets", TokenKindTemp, func(b *BootstrapToken) { b.SecretIDs = []SecretID{secA} }, ErrInvalid},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := bootstrapToken(h.now, vaultA, "acl-"+string(rune('a'+i)), tc.kind, tc.mutate)
			h.expectReject(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: tok}, tc.want)
		})
	}
}

func TestFSM_RegisterRejects(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupToken(vaultA, "good", TokenKindStandard, nil)
	h.setupMachine(vaultA, machine2, TokenKindStandard, 2)

	smallOrder := make([]byte, 32)
	smallOrder[0] = 1 // the identity point
	nonCanonical := bytes.Repeat([]byte{0xff}, 32)
	nonCanonical[31] = 0x7f

	valid := RegisterMachinePayload{TokenHash: tokenHash("good"), VaultID: vaultA, MachineID: machine1, PublicKey: publicKey(1), Hostname: "h"}
	cases := []struct {
		name   string
		mutate func(*RegisterMachinePayload)
		want   error
	}{
		{"unknown token", func(p *RegisterMachinePayload) { p.TokenHash = tokenHash("nope") }, ErrTokenInvalid},
		{"other vault", func(p *RegisterMachinePayload) { p.VaultID = vaultB }, ErrTokenInvalid},
		{"malformed token hash", func(p *RegisterMachinePayload) { p.TokenHash = "x" }, ErrTokenInvalid},
		{"existing machine", func(p *RegisterMachinePayload) { p.MachineID = machine2 }, ErrAlreadyExists},
		{"upper-case id", func(p *RegisterMachinePayload) { p.MachineID = "AAAAAAAA-1111-4111-8111-111111111111" }, ErrInvalid},
		{"uuid version 1", func(p *RegisterMachinePayload) { p.MachineID = "11111111-1111-1111-8111-111111111111" }, ErrInvalid},
		{"short key", func(p *RegisterMachinePayload) { p.PublicKey = publicKey(1)[:31] }, ErrInvalid},
		{"small-order key", func(p *RegisterMachinePayload) { p.PublicKey = smallOrder }, ErrInvalid},
		{"non-canonical key", func(p *RegisterMachinePayload) { p.PublicKey = nonCanonical }, ErrInvalid},
		{"hostname with newline", func(p *RegisterMachinePayload) { p.Hostname = "a\nb" }, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := valid
			tc.mutate(&p)
			h.expectReject(CmdRegisterMachine, p, tc.want)
		})
	}
	if tok, _ := h.f.BootstrapTokenByHash(tokenHash("good")); tok.Uses != 0 {
		t.Fatalf("rejected registrations used the token %d times", tok.Uses)
	}
}

func TestFSM_RegisterTokenExpiryInstant(t *testing.T) {
	cases := []struct {
		name   string
		offset int64
		want   error
	}{
		{"one millisecond before", -1, nil},
		{"at expiry", 0, ErrTokenInvalid},
		{"after expiry", 1, ErrTokenInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemHarness(t)
			h.setupVault(vaultA)
			h.setupToken(vaultA, "t", TokenKindStandard, nil)
			tok, _ := h.f.BootstrapTokenByHash(tokenHash("t"))
			h.now = tok.ExpiresAt + tc.offset

			p := RegisterMachinePayload{TokenHash: tokenHash("t"), MachineID: machine1, PublicKey: publicKey(1), Hostname: "h"}
			if tc.want == nil {
				h.mustApply(CmdRegisterMachine, p, nil)
				return
			}
			h.expectReject(CmdRegisterMachine, p, tc.want)
		})
	}
}

func TestFSM_MachineStatusTransitions(t *testing.T) {
	cases := []struct {
		name   string
		before []string // actions applied first
		action string
		want   string // resulting status, or "" when rejected
	}{
		{"approve pending", nil, ActionApprove, StatusActive},
		{"deny pending", nil, ActionDeny, StatusRevoked},
		{"revoke pending", nil, ActionRevoke, StatusRevoked},
		{"disable pending", nil, ActionDisable, ""},
		{"enable pending", nil, ActionEnable, ""},
		{"approve active", []string{ActionApprove}, ActionApprove, ""},
		{"deny active", []string{ActionApprove}, ActionDeny, ""},
		{"disable active", []string{ActionApprove}, ActionDisable, StatusDisabled},
		{"revoke active", []string{ActionApprove}, ActionRevoke, StatusRevoked},
		{"enable disabled", []string{ActionApprove, ActionDisable}, ActionEnable, StatusActive},
		{"revoke disabled", []string{ActionApprove, ActionDisable}, ActionRevoke, StatusRevoked},
		{"approve disabled", []string{ActionApprove, ActionDisable}, ActionApprove, ""},
		{"revoke revoked", []string{ActionRevoke}, ActionRevoke, StatusRevoked},
		{"approve revoked", []string{ActionRevoke}, ActionApprove, ""},
		{"enable revoked", []string{ActionRevoke}, ActionEnable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemHarness(t)
			h.setupVault(vaultA)
			h.setupMachine(vaultA, machine1, TokenKindStandard, 1)
			for _, a := range tc.before {
				h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: a}, nil)
			}

			p := SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: tc.action}
			if tc.want == "" {
				h.expectReject(CmdSetMachineStatus, p, ErrNotAllowed)
				return
			}
			var m Machine
			h.mustApply(CmdSetMachineStatus, p, &m)
			if m.Status != tc.want || h.machine(machine1).Status != tc.want {
				t.Fatalf("status = %s (index %s), want %s", m.Status, h.machine(machine1).Status, tc.want)
			}
		})
	}
}

func TestFSM_MachineStatusRejects(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)

	h.expectReject(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: "delete"}, ErrInvalid)
	h.expectReject(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultB, MachineID: machine1, Action: ActionApprove}, ErrNotFound)
	h.expectReject(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine2, Action: ActionApprove}, ErrNotFound)

	var m Machine
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: ActionApprove}, &m)
	if m.ApprovedAt != h.now {
		t.Fatalf("ApprovedAt = %d, want %d", m.ApprovedAt, h.now)
	}
}

func TestFSM_ExpiredMachineCannotBeApprovedOrEnabled(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	pending := h.setupMachine(vaultA, machine1, TokenKindTemp, 1)
	h.setupActiveTemp(vaultA, machine2, 2)
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine2, Action: ActionDisable}, nil)

	h.now = pending.ExpiresAt
	h.expectReject(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: ActionApprove}, ErrNotAllowed)
	h.expectReject(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine2, Action: ActionEnable}, ErrNotAllowed)
	// Revoking stays possible after expiry.
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine2, Action: ActionRevoke}, nil)
}

func TestFSM_AttachDetachProject(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupProject(vaultA, projA, "a")
	h.setupProject(vaultA, projA2, "a2")
	h.setupProject(vaultB, projB, "b")
	h.setupSecret(projA, secA, "s", "v")
	h.setupSecret(projA2, secA2, "s2", "v")
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)

	for _, p := range []ProjectID{projA2, projA, projA} {
		h.mustApply(CmdAttachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine1, ProjectID: p}, nil)
	}
	m := h.machine(machine1)
	if len(m.Projects) != 2 || m.Projects[0] != projA2 || m.Projects[1] != projA {
		t.Fatalf("projects = %v, want sorted [%s %s]", m.Projects, projA2, projA)
	}
	if e, _ := h.f.Machine(machine1); !e.HasProject(projA) || !e.HasProject(projA2) {
		t.Fatal("entry does not list both attached projects")
	}

	h.expectReject(CmdAttachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine1, ProjectID: projB}, ErrNotFound)
	h.expectReject(CmdAttachProject, MachineProjectPayload{VaultID: vaultB, MachineID: machine1, ProjectID: projB}, ErrNotFound)
	h.expectReject(CmdAttachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine1, ProjectID: "proj_zzzzzzzzzz"}, ErrNotFound)

	h.mustApply(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1, SecretIDs: []SecretID{secA, secA2}}, nil)
	h.mustApply(CmdDetachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine1, ProjectID: projA}, nil)
	m = h.machine(machine1)
	if len(m.Projects) != 1 || m.Projects[0] != projA2 {
		t.Fatalf("projects after detach = %v", m.Projects)
	}
	if len(m.Grants) != 1 || m.Grants[0] != secA2 {
		t.Fatalf("grants after detach = %v, want only %s", m.Grants, secA2)
	}
	// Detaching again is a no-op.
	h.mustApply(CmdDetachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine1, ProjectID: projA}, nil)
}

func TestFSM_SetGrants(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupProject(vaultA, projA, "a")
	h.setupProject(vaultB, projB, "b")
	h.setupSecret(projA, secA, "s", "v")
	h.setupSecret(projA, secA2, "s2", "v")
	h.setupSecret(projB, secB, "sb", "v")
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)

	var m Machine
	h.mustApply(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1, SecretIDs: []SecretID{secA2, secA, secA2}}, &m)
	if len(m.Grants) != 2 || m.Grants[0] != secA2 || m.Grants[1] != secA {
		t.Fatalf("grants = %v, want sorted without repeats", m.Grants)
	}
	e, _ := h.f.Machine(machine1)
	if !e.HasGrant(secA2) {
		t.Fatal("entry lacks a granted secret")
	}

	h.expectReject(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1, SecretIDs: []SecretID{secA, secB}}, ErrNotFound)
	h.expectReject(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1, SecretIDs: []SecretID{"sk_zzzzzzzzzz"}}, ErrNotFound)
	h.expectReject(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1, SecretIDs: make([]SecretID, MaxGrants+1)}, ErrInvalid)

	h.mustApply(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1}, &m)
	if m.Grants == nil || len(m.Grants) != 0 {
		t.Fatalf("grants after clearing = %#v, want an empty list", m.Grants)
	}
	if e, _ := h.f.Machine(machine1); e.HasGrant(secA) || e.HasGrant(secA2) {
		t.Fatal("cleared grants still in the index")
	}
}

func TestFSM_SetGuardrails(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupActiveTemp(vaultA, machine1, 1)
	before, _ := h.f.Machine(machine1)

	rails := &guard.Guardrails{Countries: &guard.CountryAxis{Codes: []string{"NO", "SE"}, Observe: true}}
	var m Machine
	h.mustApply(CmdSetGuardrails, SetGuardrailsPayload{VaultID: vaultA, MachineID: machine1, Guardrails: rails}, &m)
	if m.Guardrails == nil || m.Guardrails.Countries == nil || len(m.Guardrails.Countries.Codes) != 2 {
		t.Fatalf("guardrails = %+v", m.Guardrails)
	}
	after, _ := h.f.Machine(machine1)
	if after.Policy == nil || after == before {
		t.Fatal("the index did not publish a new entry with a policy")
	}
	if before.Machine.Guardrails != nil {
		t.Fatal("the old entry was modified in place")
	}

	bad := []struct {
		name  string
		rails *guard.Guardrails
	}{
		{"placeholder country", &guard.Guardrails{Countries: &guard.CountryAxis{Codes: []string{"--"}}}},
		{"bad cidr", &guard.Guardrails{IPAllowlist: &guard.IPAxis{CIDRs: []string{"10.0.0.0/40"}}}},
		{"zone abbreviation", &guard.Guardrails{TimeWindow: &guard.WindowAxis{Start: "09:00", End: "17:00", Timezone: "CEST"}}},
		{"empty window", &guard.Guardrails{TimeWindow: &guard.WindowAxis{Start: "09:00", End: "09:00", Timezone: "Europe/Oslo"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(CmdSetGuardrails, SetGuardrailsPayload{VaultID: vaultA, MachineID: machine1, Guardrails: tc.rails}, ErrInvalid)
		})
	}

	var cleared Machine
	h.mustApply(CmdSetGuardrails, SetGuardrailsPayload{VaultID: vaultA, MachineID: machine1, Guardrails: &guard.Guardrails{}}, &cleared)
	if cleared.Guardrails != nil || h.machine(machine1).Guardrails != nil {
		t.Fatalf("empty guardrails stored as %+v, want none", cleared.Guardrails)
	}
	if e, _ := h.f.Machine(machine1); e.Policy != nil {
		t.Fatal("policy kept after guardrails were removed")
	}
}

func TestFSM_PurgeMachine(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)
	h.setupActiveTemp(vaultA, machine2, 2)

	h.expectReject(CmdPurgeMachine, PurgeMachinePayload{VaultID: vaultA, MachineID: machine1}, ErrNotAllowed)
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: ActionRevoke}, nil)

	var purged Machine
	h.mustApply(CmdPurgeMachine, PurgeMachinePayload{VaultID: vaultA, MachineID: machine1}, &purged)
	if purged.ID != machine1 || purged.Status != StatusRevoked {
		t.Fatalf("purge body = %+v", purged)
	}
	if _, ok := h.f.Machine(machine1); ok {
		t.Fatal("purged machine still in the index")
	}
	if ms := h.f.Machines(vaultA); len(ms) != 1 || ms[0].Machine.ID != machine2 {
		t.Fatalf("Machines(%s) after purge = %d entries", vaultA, len(ms))
	}
	h.expectReject(CmdPurgeMachine, PurgeMachinePayload{VaultID: vaultA, MachineID: machine1}, ErrNotFound)

	// An expired machine can be purged too.
	h.now = h.machine(machine2).ExpiresAt
	h.mustApply(CmdExpireMachines, ExpireMachinesPayload{MachineIDs: []MachineID{machine2}}, nil)
	h.mustApply(CmdPurgeMachine, PurgeMachinePayload{VaultID: vaultA, MachineID: machine2}, nil)
	if len(h.f.Machines(vaultA)) != 0 {
		t.Fatal("machines left after purging both")
	}
}

func TestFSM_MachinesSortedByRegistration(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupMachine(vaultA, machine3, TokenKindStandard, 3)
	h.now += 10
	h.setupMachine(vaultA, machine2, TokenKindStandard, 2)
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)

	got := h.f.Machines(vaultA)
	want := []MachineID{machine3, machine1, machine2}
	for i, e := range got {
		if e.Machine.ID != want[i] {
			t.Fatalf("Machines order = %v, want %v", ids(got), want)
		}
	}
}

func ids(entries []*MachineEntry) []MachineID {
	out := make([]MachineID, len(entries))
	for i, e := range entries {
		out[i] = e.Machine.ID
	}
	return out
}

func TestFSM_MachineJSONFields(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupMachine(vaultA, machine1, TokenKindTemp, 1)
	r := h.apply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine1, Action: ActionApprove})

	var fields map[string]any
	if err := json.Unmarshal(r.Body, &fields); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"id", "vaultId", "kind", "status", "expiresAt", "purpose", "projects", "grants", "registeredAt", "approvedAt"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("machine JSON lacks %q: %s", name, r.Body)
		}
	}
}

func TestFSM_RenameMachine(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)

	var m Machine
	h.mustApply(CmdRenameMachine, RenameMachinePayload{VaultID: vaultA, MachineID: machine1, Name: "worker-2"}, &m)
	if m.Name != "worker-2" {
		t.Fatalf("name = %q, want worker-2", m.Name)
	}
	if got := h.machine(machine1).Name; got != "worker-2" {
		t.Fatalf("stored name = %q, want worker-2", got)
	}
	renames := func() int {
		return strings.Count(strings.Join(actionsOf(auditEntries(t, h.f, vaultA)), " "), "machine_rename")
	}
	if n := renames(); n != 1 {
		t.Fatalf("%d machine_rename entries, want 1", n)
	}
	// Renaming to the same name changes nothing and audits nothing.
	h.mustApply(CmdRenameMachine, RenameMachinePayload{VaultID: vaultA, MachineID: machine1, Name: "worker-2"}, nil)
	if n := renames(); n != 1 {
		t.Fatalf("%d machine_rename entries after a no-op rename, want 1", n)
	}

	h.expectReject(CmdRenameMachine, RenameMachinePayload{VaultID: vaultA, MachineID: machine1, Name: ""}, ErrInvalid)
	h.expectReject(CmdRenameMachine, RenameMachinePayload{VaultID: vaultB, MachineID: machine1, Name: "x"}, ErrNotFound)
	h.expectReject(CmdRenameMachine, RenameMachinePayload{VaultID: vaultA, MachineID: machine2, Name: "x"}, ErrNotFound)
}
