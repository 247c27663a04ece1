package fsm

import (
	"strings"
	"testing"
)

func TestFSM_InitOnce(t *testing.T) {
	h := newHarness(t)
	if h.f.Initialized() {
		t.Fatal("a new FSM reports initialized")
	}

	var tok AdminToken
	h.mustApply(CmdInit, InitPayload{TokenID: "tok_root", TokenHash: tokenHash("root")}, &tok)
	if tok.Role != RoleOwner || tok.Name != RootTokenName || tok.CreatedAt != h.now {
		t.Fatalf("root token = %+v", tok)
	}
	if len(tok.Vaults) != 1 || tok.Vaults[0] != "*" {
		t.Fatalf("root token vaults = %v, want [*]", tok.Vaults)
	}
	if !h.f.Initialized() {
		t.Fatal("Initialized is false after init")
	}
	if got, ok := h.f.AdminTokenByHash(tokenHash("root")); !ok || got.ID != "tok_root" {
		t.Fatalf("AdminTokenByHash = %v, %v", got, ok)
	}

	h.expectReject(CmdInit, InitPayload{TokenID: "tok_other", TokenHash: tokenHash("other")}, ErrAlreadyInitialized)
	if _, ok := h.f.AdminTokenByHash(tokenHash("other")); ok {
		t.Fatal("a second init stored a token")
	}
}

func TestFSM_InitRejectsBadToken(t *testing.T) {
	cases := []struct {
		name    string
		payload InitPayload
	}{
		{"empty id", InitPayload{TokenHash: tokenHash("x")}},
		{"short hash", InitPayload{TokenID: "tok_root", TokenHash: "abc"}},
		{"upper-case hash", InitPayload{TokenID: "tok_root", TokenHash: strings.ToUpper(tokenHash("x"))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemHarness(t)
			h.expectReject(CmdInit, tc.payload, ErrInvalid)
			if h.f.Initialized() {
				t.Fatal("rejected init marked the cluster initialized")
			}
		})
	}
}

func TestFSM_CreateAdminToken(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	valid := func() AdminToken {
		return AdminToken{ID: "tok_ops", Hash: tokenHash("ops"), Name: "ops", Role: RoleOperator, Vaults: []string{string(vaultA)}}
	}

	var got AdminToken
	h.mustApply(CmdCreateAdminToken, CreateAdminTokenPayload{Token: valid()}, &got)
	if got.CreatedAt != h.now {
		t.Fatalf("CreatedAt = %d, want the command time %d", got.CreatedAt, h.now)
	}
	if _, ok := h.f.AdminTokenByHash(tokenHash("ops")); !ok {
		t.Fatal("token not indexed by hash")
	}

	cases := []struct {
		name   string
		mutate func(*AdminToken)
		want   error
	}{
		{"duplicate hash", func(tok *AdminToken) {}, ErrAlreadyExists},
		{"unknown role", func(tok *AdminToken) { tok.Hash = tokenHash("a"); tok.Role = "root" }, ErrInvalid},
		{"empty name", func(tok *AdminToken) { tok.Hash = tokenHash("b"); tok.Name = "" }, ErrInvalid},
		{"unknown vault", func(tok *AdminToken) { tok.Hash = tokenHash("c"); tok.Vaults = []string{string(vaultB)} }, ErrNotFound},
		{"empty scope", func(tok *AdminToken) { tok.Hash = tokenHash("d"); tok.Vaults = nil }, ErrInvalid},
		{"star mixed with ids", func(tok *AdminToken) { tok.Hash = tokenHash("e"); tok.Vaults = []string{string(vaultA), "*"} }, ErrInvalid},
		{"repeated vault", func(tok *AdminToken) {
			tok.Hash = tokenHash("f")
			tok.Vaults = []string{string(vaultA), string(vaultA)}
		}, ErrInvalid},
		{"expired", func(tok *AdminToken) { tok.Hash = tokenHash("g"); tok.ExpiresAt = h.now }, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := valid()
			tc.mutate(&tok)
			h.expectReject(CmdCreateAdminToken, CreateAdminTokenPayload{Token: tok}, tc.want)
		})
	}
}

func TestFSM_CreateVault(t *testing.T) {
	h := newHarness(t)
	var v Vault
	h.mustApply(CmdCreateVault, CreateVaultPayload{ID: vaultA, Name: "production"}, &v)
	if v.ID != vaultA || v.Name != "production" || v.CreatedAt != h.now || v.IPAllowlist.Enabled {
		t.Fatalf("vault = %+v", v)
	}
	if got, ok := h.f.Vault(vaultA); !ok || got.Name != "production" {
		t.Fatalf("Vault(%s) = %v, %v", vaultA, got, ok)
	}
	if h.f.VaultAllowlist(vaultA) != nil {
		t.Fatal("a new vault has an allowlist")
	}

	cases := []struct {
		name    string
		payload CreateVaultPayload
		want    error
	}{
		{"duplicate id", CreateVaultPayload{ID: vaultA, Name: "again"}, ErrAlreadyExists},
		{"duplicate name", CreateVaultPayload{ID: vaultB, Name: "production"}, ErrAlreadyExists},
		{"bad id prefix", CreateVaultPayload{ID: "vlt_aaaaaaaaaaaaaaaa", Name: "x"}, ErrInvalid},
		{"upper-case id", CreateVaultPayload{ID: "vault_AAAAAAAAAAAAAAAA", Name: "x"}, ErrInvalid},
		{"short id", CreateVaultPayload{ID: "vault_abc", Name: "x"}, ErrInvalid},
		{"empty name", CreateVaultPayload{ID: vaultB, Name: ""}, ErrInvalid},
		{"long name", CreateVaultPayload{ID: vaultB, Name: strings.Repeat("n", MaxVaultNameChars+1)}, ErrInvalid},
		{"control character", CreateVaultPayload{ID: vaultB, Name: "a\x00b"}, ErrInvalid},
		{"padded name", CreateVaultPayload{ID: vaultB, Name: " prod"}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(CmdCreateVault, tc.payload, tc.want)
		})
	}
	if vs := h.f.Vaults(); len(vs) != 1 {
		t.Fatalf("Vaults() has %d entries, want 1", len(vs))
	}
}

func TestFSM_SetVaultAllowlist(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)

	var v Vault
	h.mustApply(CmdSetVaultAllowlist, SetVaultAllowlistPayload{VaultID: vaultA, IPAllowlist: IPAllowlist{
		Enabled: true,
		Entries: []IPAllowEntry{{CIDR: "203.0.113.0/24", Label: "office"}, {CIDR: "2001:db8::1", Label: "bastion"}},
	}}, &v)
	if !v.IPAllowlist.Enabled || len(v.IPAllowlist.Entries) != 2 {
		t.Fatalf("allowlist = %+v", v.IPAllowlist)
	}
	allow := h.f.VaultAllowlist(vaultA)
	if allow == nil {
		t.Fatal("enabled allowlist not compiled")
	}
	if !allow.Contains(mustAddr(t, "203.0.113.7")) || allow.Contains(mustAddr(t, "198.51.100.7")) {
		t.Fatal("compiled allowlist matches the wrong addresses")
	}

	cases := []struct {
		name      string
		allowlist IPAllowlist
		vault     VaultID
		want      error
	}{
		{"unknown vault", IPAllowlist{}, vaultB, ErrNotFound},
		{"bad cidr", IPAllowlist{Enabled: true, Entries: []IPAllowEntry{{CIDR: "203.0.113.0/33"}}}, vaultA, ErrInvalid},
		{"enabled and empty", IPAllowlist{Enabled: true}, vaultA, ErrInvalid},
		{"label with newline", IPAllowlist{Entries: []IPAllowEntry{{CIDR: "192.0.2.1", Label: "a\nb"}}}, vaultA, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(CmdSetVaultAllowlist, SetVaultAllowlistPayload{VaultID: tc.vault, IPAllowlist: tc.allowlist}, tc.want)
		})
	}

	h.mustApply(CmdSetVaultAllowlist, SetVaultAllowlistPayload{VaultID: vaultA, IPAllowlist: IPAllowlist{
		Entries: []IPAllowEntry{{CIDR: "203.0.113.0/24"}},
	}}, nil)
	if h.f.VaultAllowlist(vaultA) != nil {
		t.Fatal("disabled allowlist still enforced")
	}
}

func TestFSM_CreateProject(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupProject(vaultA, projA, "payments")

	p, ok := h.f.Project(projA)
	if !ok || p.Name != "payments" || p.VaultID != vaultA {
		t.Fatalf("Project(%s) = %v, %v", projA, p, ok)
	}

	key := h.projectKey(projA2)
	cases := []struct {
		name    string
		payload CreateProjectPayload
		want    error
	}{
		{"duplicate id", CreateProjectPayload{ID: projA, VaultID: vaultA, Name: "other", WrappedKey: key}, ErrAlreadyExists},
		{"duplicate name in vault", CreateProjectPayload{ID: projA2, VaultID: vaultA, Name: "payments", WrappedKey: key}, ErrAlreadyExists},
		{"unknown vault", CreateProjectPayload{ID: projA2, VaultID: "vault_cccccccccccccccc", Name: "x", WrappedKey: key}, ErrNotFound},
		{"bad id", CreateProjectPayload{ID: "proj_x", VaultID: vaultA, Name: "x", WrappedKey: key}, ErrInvalid},
		{"long name", CreateProjectPayload{ID: projA2, VaultID: vaultA, Name: strings.Repeat("é", MaxProjectNameChars+1), WrappedKey: key}, ErrInvalid},
		{"short key", CreateProjectPayload{ID: projA2, VaultID: vaultA, Name: "x", WrappedKey: key[:10]}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(CmdCreateProject, tc.payload, tc.want)
		})
	}

	// The same name in another vault is allowed; 100 characters is the limit.
	h.setupProject(vaultB, projB, "payments")
	h.setupProject(vaultA, projA2, strings.Repeat("é", MaxProjectNameChars))
	if got := h.f.Projects(vaultA); len(got) != 2 || got[0].ID != projA2 || got[1].ID != projA {
		t.Fatalf("Projects(%s) = %v, want [%s %s]", vaultA, got, projA2, projA)
	}
}

func TestFSM_RevokeAdminToken(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	owner := func(id string, vaults ...string) AdminToken {
		return AdminToken{ID: id, Hash: tokenHash(id), Name: id, Role: RoleOwner, Vaults: vaults}
	}
	h.mustApply(CmdCreateAdminToken, CreateAdminTokenPayload{Token: owner("at_root1", "*")}, nil)
	h.mustApply(CmdCreateAdminToken, CreateAdminTokenPayload{Token: owner("at_root2", "*")}, nil)
	h.mustApply(CmdCreateAdminToken, CreateAdminTokenPayload{Token: owner("at_team", string(vaultA))}, nil)
	expiring := owner("at_expiring", "*")
	expiring.ExpiresAt = h.now + 60_000
	h.mustApply(CmdCreateAdminToken, CreateAdminTokenPayload{Token: expiring}, nil)

	roots := 0
	for _, tok := range h.f.AdminTokens() {
		if isRootOwner(tok) {
			roots++
		}
	}
	if roots != 2 {
		t.Fatalf("%d root owner tokens, want 2", roots)
	}

	var got AdminToken
	h.mustApply(CmdRevokeAdminToken, RevokeAdminTokenPayload{ID: "at_root2"}, &got)
	if got.RevokedAt != h.now {
		t.Fatalf("RevokedAt = %d, want %d", got.RevokedAt, h.now)
	}
	if tok, _ := h.f.AdminTokenByHash(tokenHash("at_root2")); tok == nil || tok.RevokedAt != h.now {
		t.Fatalf("indexed token = %+v, want revoked", tok)
	}

	// A vault-scoped owner does not count as a root owner, so the last
	// root owner cannot be revoked.
	for _, tok := range h.f.AdminTokens() {
		if isRootOwner(tok) {
			h.expectReject(CmdRevokeAdminToken, RevokeAdminTokenPayload{ID: tok.ID}, ErrConflict)
		}
	}
	h.mustApply(CmdRevokeAdminToken, RevokeAdminTokenPayload{ID: "at_team"}, nil)
	h.expectReject(CmdRevokeAdminToken, RevokeAdminTokenPayload{ID: "at_missing"}, ErrNotFound)
}
