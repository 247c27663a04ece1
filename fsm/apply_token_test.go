package fsm

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

func TestFSM_CreateBootstrapToken(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)

	var tok BootstrapToken
	h.mustApply(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(h.now, vaultA, "t1", TokenKindStandard, func(b *BootstrapToken) {
		b.MaxUses = 0
		b.Uses = 5
	})}, &tok)
	if tok.MaxUses != 1 || tok.Uses != 0 || tok.CreatedAt != h.now {
		t.Fatalf("token = %+v, want maxUses 1, uses 0, createdAt %d", tok, h.now)
	}
	if got, ok := h.f.BootstrapTokenByHash(tokenHash("t1")); !ok || got.ID != "bt_t1" {
		t.Fatalf("BootstrapTokenByHash = %v, %v", got, ok)
	}

	h.setupToken(vaultA, "temp1", TokenKindTemp, func(b *BootstrapToken) {
		b.Guardrails = &guard.Guardrails{IPAllowlist: &guard.IPAxis{CIDRs: []string{"203.0.113.0/24"}}}
	})
	h.setupToken(vaultA, "enroll1", TokenKindEnrollment, func(b *BootstrapToken) {
		b.MaxUses = MaxEnrollmentUses
		b.Lifetime = &Lifetime{Days: 7}
	})
	if got := h.f.BootstrapTokens(vaultA, TokenKindTemp); len(got) != 1 || got[0].ID != "bt_temp1" {
		t.Fatalf("BootstrapTokens(temp) = %v", got)
	}
	if got := h.f.BootstrapTokens(vaultA, ""); len(got) != 3 {
		t.Fatalf("BootstrapTokens(all) has %d tokens, want 3", len(got))
	}

	cases := []struct {
		name   string
		kind   string
		mutate func(*BootstrapToken)
		want   error
	}{
		{"duplicate hash", TokenKindStandard, func(b *BootstrapToken) { b.ID = "other"; b.Hash = tokenHash("t1") }, ErrAlreadyExists},
		{"duplicate id", TokenKindStandard, func(b *BootstrapToken) { b.ID = "bt_t1" }, ErrAlreadyExists},
		{"unknown vault", TokenKindStandard, func(b *BootstrapToken) { b.VaultID = vaultB }, ErrNotFound},
		{"unknown kind", "forever", nil, ErrInvalid},
		{"expiry at now", TokenKindStandard, func(b *BootstrapToken) { b.ExpiresAt = h.now }, ErrInvalid},
		{"lifetime over 7 days", TokenKindStandard, func(b *BootstrapToken) { b.ExpiresAt = h.now + int64(8*24*time.Hour/time.Millisecond) }, ErrInvalid},
		{"standard with two uses", TokenKindStandard, func(b *BootstrapToken) { b.MaxUses = 2 }, ErrInvalid},
		{"standard with a lifetime", TokenKindStandard, func(b *BootstrapToken) { b.Lifetime = &Lifetime{Days: 1} }, ErrInvalid},
		{"temp without name", TokenKindTemp, func(b *BootstrapToken) { b.MachineName = "" }, ErrInvalid},
		{"temp without lifetime", TokenKindTemp, func(b *BootstrapToken) { b.Lifetime = nil }, ErrInvalid},
		{"temp lifetime under an hour", TokenKindTemp, func(b *BootstrapToken) { b.Lifetime = &Lifetime{} }, ErrInvalid},
		{"temp lifetime over twelve months", TokenKindTemp, func(b *BootstrapToken) { b.Lifetime = &Lifetime{Months: 12, Days: 1} }, ErrInvalid},
		{"temp negative lifetime", TokenKindTemp, func(b *BootstrapToken) { b.Lifetime = &Lifetime{Months: 2, Days: -1} }, ErrInvalid},
		{"temp bad guardrails", TokenKindTemp, func(b *BootstrapToken) {
			b.Guardrails = &guard.Guardrails{Countries: &guard.CountryAxis{Codes: []string{"EU"}}}
		}, ErrInvalid},
		{"enrollment over max uses", TokenKindEnrollment, func(b *BootstrapToken) { b.MaxUses = MaxEnrollmentUses + 1; b.Lifetime = &Lifetime{Days: 1} }, ErrInvalid},
		{"enrollment with machine name", TokenKindEnrollment, func(b *BootstrapToken) { b.MachineName = "x"; b.Lifetime = &Lifetime{Days: 1} }, ErrInvalid},
		{"bad hash", TokenKindStandard, func(b *BootstrapToken) { b.Hash = "zz" }, ErrInvalid},
		{"bad id", TokenKindStandard, func(b *BootstrapToken) { b.ID = "has space" }, ErrInvalid},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := bootstrapToken(h.now, vaultA, "case-"+string(rune('a'+i)), tc.kind, tc.mutate)
			h.expectReject(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: tok}, tc.want)
		})
	}
}

func TestFSM_RevokeBootstrapToken(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupToken(vaultA, "t1", TokenKindStandard, nil)

	h.expectReject(CmdRevokeBootstrapToken, RevokeBootstrapTokenPayload{VaultID: vaultB, ID: "bt_t1"}, ErrNotFound)
	h.expectReject(CmdRevokeBootstrapToken, RevokeBootstrapTokenPayload{VaultID: vaultA, ID: "bt_missing"}, ErrNotFound)

	var tok BootstrapToken
	h.mustApply(CmdRevokeBootstrapToken, RevokeBootstrapTokenPayload{VaultID: vaultA, ID: "bt_t1"}, &tok)
	if tok.RevokedAt != h.now {
		t.Fatalf("RevokedAt = %d, want %d", tok.RevokedAt, h.now)
	}

	first := h.now
	h.now += 5000
	h.mustApply(CmdRevokeBootstrapToken, RevokeBootstrapTokenPayload{VaultID: vaultA, ID: "bt_t1"}, &tok)
	if tok.RevokedAt != first {
		t.Fatalf("second revoke moved RevokedAt to %d, want %d", tok.RevokedAt, first)
	}

	h.expectReject(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash("t1"), MachineID: machine1, PublicKey: publicKey(1), Hostname: "h",
	}, ErrTokenInvalid)
}

// TestFSM_RevokeUsedTokenRejected keeps a used token's status: revoking a
// token with no use left is rejected, and one with uses left is revoked.
func TestFSM_RevokeUsedTokenRejected(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)
	used := "bt_tok-" + string(machine1)
	r := h.expectReject(CmdRevokeBootstrapToken, RevokeBootstrapTokenPayload{VaultID: vaultA, ID: used}, ErrNotAllowed)
	if !strings.Contains(r.Message, "already used up") {
		t.Fatalf("rejection %q does not say the token is used up", r.Message)
	}

	h.setupToken(vaultA, "fresh", TokenKindStandard, nil)
	var tok BootstrapToken
	h.mustApply(CmdRevokeBootstrapToken, RevokeBootstrapTokenPayload{VaultID: vaultA, ID: "bt_fresh"}, &tok)
	if tok.RevokedAt == 0 {
		t.Fatal("an unused token was not revoked")
	}
}
