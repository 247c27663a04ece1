package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/fsm/seal"
)

func TestFSM_CreateSecret(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "payments")

	var s Secret
	h.mustApply(CmdCreateSecret, CreateSecretPayload{
		ID: secA, ProjectID: projA, Name: "app/db-password", Type: SecretTypeSecret, Sealed: h.seal(projA, secA, "hunter2"),
	}, &s)
	if s.Version != 1 || s.VaultID != vaultA || s.CreatedAt != h.now || s.UpdatedAt != h.now {
		t.Fatalf("secret = %+v", s)
	}
	value, err := h.f.SecretValue(secA)
	if err != nil {
		t.Fatalf("SecretValue: %v", err)
	}
	if string(value) != "hunter2" {
		t.Fatalf("SecretValue = %q, want hunter2", value)
	}
	if got := h.f.Secrets(projA); len(got) != 1 || got[0].Name != "app/db-password" {
		t.Fatalf("Secrets(%s) = %v", projA, got)
	}

	sealed := h.seal(projA, secA2, "v")
	oversized := sealed
	oversized.Ciphertext = make([]byte, MaxSecretValueBytes+seal.TagSize+1)
	cases := []struct {
		name    string
		payload CreateSecretPayload
		want    error
	}{
		{"duplicate id", CreateSecretPayload{ID: secA, ProjectID: projA, Name: "x", Type: SecretTypeSecret, Sealed: sealed}, ErrAlreadyExists},
		{"duplicate name", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "app/db-password", Type: SecretTypeSecret, Sealed: sealed}, ErrAlreadyExists},
		{"unknown project", CreateSecretPayload{ID: secA2, ProjectID: projB, Name: "x", Type: SecretTypeSecret, Sealed: sealed}, ErrNotFound},
		{"bad id", CreateSecretPayload{ID: "sk_short", ProjectID: projA, Name: "x", Type: SecretTypeSecret, Sealed: sealed}, ErrInvalid},
		{"empty name", CreateSecretPayload{ID: secA2, ProjectID: projA, Type: SecretTypeSecret, Sealed: sealed}, ErrInvalid},
		{"long name", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: strings.Repeat("s", MaxSecretNameChars+1), Type: SecretTypeSecret, Sealed: sealed}, ErrInvalid},
		{"unknown type", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "x", Type: "blob", Sealed: sealed}, ErrInvalid},
		{"fields on a plain secret", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "x", Type: SecretTypeSecret, FieldNames: []string{"a"}, Sealed: sealed}, ErrInvalid},
		{"structured without fields", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "x", Type: SecretTypeStructured, Sealed: sealed}, ErrInvalid},
		{"repeated field", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "x", Type: SecretTypeStructured, FieldNames: []string{"a", "a"}, Sealed: sealed}, ErrInvalid},
		{"oversized ciphertext", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "x", Type: SecretTypeSecret, Sealed: oversized}, ErrInvalid},
		{"missing nonce", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "x", Type: SecretTypeSecret, Sealed: Sealed{WrappedKey: sealed.WrappedKey, Ciphertext: sealed.Ciphertext}}, ErrInvalid},
		{"short wrapped key", CreateSecretPayload{ID: secA2, ProjectID: projA, Name: "x", Type: SecretTypeSecret, Sealed: Sealed{WrappedKey: []byte{1}, Nonce: sealed.Nonce, Ciphertext: sealed.Ciphertext}}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(CmdCreateSecret, tc.payload, tc.want)
		})
	}
}

func TestFSM_SecretValueMaxSize(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "payments")
	value := strings.Repeat("v", MaxSecretValueBytes)
	h.setupSecret(projA, secA, "big", value)

	got, err := h.f.SecretValue(secA)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != value {
		t.Fatalf("SecretValue returned %d bytes, want %d", len(got), len(value))
	}
}

func TestFSM_UpdateSecretVersions(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "payments")
	h.mustApply(CmdCreateSecret, CreateSecretPayload{
		ID: secA, ProjectID: projA, Name: "db", Type: SecretTypeStructured, FieldNames: []string{"user", "password"},
		Sealed: h.seal(projA, secA, `{"user":"a","password":"b"}`),
	}, nil)

	h.now += 1000
	var s Secret
	h.mustApply(CmdUpdateSecret, UpdateSecretPayload{
		ID: secA, ExpectedVersion: 1, FieldNames: []string{"user", "password", "host"},
		Sealed: h.seal(projA, secA, `{"user":"a","password":"c","host":"h"}`),
	}, &s)
	if s.Version != 2 || s.UpdatedAt != h.now || s.CreatedAt == s.UpdatedAt || len(s.FieldNames) != 3 {
		t.Fatalf("updated secret = %+v", s)
	}
	value, err := h.f.SecretValue(secA)
	if err != nil || !strings.Contains(string(value), `"c"`) {
		t.Fatalf("SecretValue = %q, %v; want the version 2 value", value, err)
	}

	versions, err := h.f.SecretVersions(secA)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[0].Version != 1 || versions[1].Version != 2 {
		t.Fatalf("SecretVersions = %+v, want versions 1 and 2", versions)
	}
	old, err := h.keyring.Open(h.projectKey(projA), string(secA), versions[0].Sealed)
	if err != nil || !bytes.Contains(old, []byte(`"b"`)) {
		t.Fatalf("version 1 opens to %q, %v", old, err)
	}

	sealed := h.seal(projA, secA, "{}")
	cases := []struct {
		name    string
		payload UpdateSecretPayload
		want    error
	}{
		{"stale version", UpdateSecretPayload{ID: secA, ExpectedVersion: 1, FieldNames: []string{"x"}, Sealed: sealed}, ErrConflict},
		{"future version", UpdateSecretPayload{ID: secA, ExpectedVersion: 3, FieldNames: []string{"x"}, Sealed: sealed}, ErrConflict},
		{"unknown secret", UpdateSecretPayload{ID: secB, ExpectedVersion: 1, Sealed: sealed}, ErrNotFound},
		{"structured without fields", UpdateSecretPayload{ID: secA, ExpectedVersion: 2, Sealed: sealed}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(CmdUpdateSecret, tc.payload, tc.want)
		})
	}
}

func TestFSM_SecretValueErrors(t *testing.T) {
	h := newHarness(t)
	if _, err := h.f.SecretValue(secA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown secret: error = %v, want ErrNotFound", err)
	}
	if _, err := h.f.SecretVersions(secA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown secret versions: error = %v, want ErrNotFound", err)
	}

	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	f, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := newProposer(t)
	for _, l := range []any{
		p.entry(CmdCreateVault, CreateVaultPayload{ID: vaultA, Name: "a"}),
		p.entry(CmdCreateProject, CreateProjectPayload{ID: projA, VaultID: vaultA, Name: "p", WrappedKey: p.projectKey(projA)}),
		p.entry(CmdCreateSecret, CreateSecretPayload{ID: secA, ProjectID: projA, Name: "s", Type: SecretTypeSecret, Sealed: p.seal(projA, secA, "v")}),
	} {
		if r := asResponse(t, f.Apply(l.(*raft.Log))); r.Code != "" {
			t.Fatal(r.Message)
		}
	}
	if _, err := f.SecretValue(secA); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("no keyring: error = %v, want ErrNoKeyring", err)
	}
}

func TestFSM_DeleteSecret(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.setupProject(vaultA, projA, "payments")
	h.setupSecret(projA, secA, "db", "v1")
	h.setupSecret(projA, secA2, "queue", "q1")
	h.mustApply(CmdUpdateSecret, UpdateSecretPayload{ID: secA, ExpectedVersion: 1, Sealed: h.seal(projA, secA, "v2")}, nil)
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)
	h.setupMachine(vaultA, machine2, TokenKindStandard, 2)
	h.mustApply(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1, SecretIDs: []SecretID{secA, secA2}}, nil)
	h.mustApply(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine2, SecretIDs: []SecretID{secA2}}, nil)

	h.expectReject(CmdDeleteSecret, DeleteSecretPayload{VaultID: vaultB, ID: secA}, ErrNotFound)

	var d DeletedSecret
	h.mustApply(CmdDeleteSecret, DeleteSecretPayload{VaultID: vaultA, ID: secA}, &d)
	if d.Secret.ID != secA || !slices.Equal(d.RevokedGrants, []MachineID{machine1}) {
		t.Fatalf("delete result = %+v, want secret %s and revoked grants [%s]", d, secA, machine1)
	}
	if _, ok := h.f.Secret(secA); ok {
		t.Fatal("deleted secret is still indexed")
	}
	if got := h.f.Secrets(projA); len(got) != 1 || got[0].ID != secA2 {
		t.Fatalf("project secrets = %v, want only %s", got, secA2)
	}
	if _, err := h.f.SecretVersions(secA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SecretVersions of a deleted secret: %v, want ErrNotFound", err)
	}
	if got := h.machine(machine1).Grants; !slices.Equal(got, []SecretID{secA2}) {
		t.Fatalf("machine1 grants = %v, want [%s]", got, secA2)
	}
	if e, _ := h.f.Machine(machine1); e == nil {
		t.Fatal("machine1 missing from the index")
	} else if e.HasGrant(secA) {
		t.Fatal("machine1's index entry still grants the deleted secret")
	}
	if got := h.machine(machine2).Grants; !slices.Equal(got, []SecretID{secA2}) {
		t.Fatalf("machine2 grants = %v, want [%s] unchanged", got, secA2)
	}
	if n := strings.Count(strings.Join(actionsOf(auditEntries(t, h.f, vaultA)), " "), "secret_delete"); n != 1 {
		t.Fatalf("%d secret_delete entries, want 1", n)
	}

	h.expectReject(CmdDeleteSecret, DeleteSecretPayload{VaultID: vaultA, ID: secA}, ErrNotFound)
	// The name is free again.
	h.setupSecret(projA, secB, "db", "new")
}

func TestFSM_SecretVersionsBounded(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "payments")
	h.setupSecret(projA, secA, "db", "v1")
	last := MaxSecretVersions + 5
	for v := 1; v < last; v++ {
		h.mustApply(CmdUpdateSecret, UpdateSecretPayload{ID: secA, ExpectedVersion: v, Sealed: h.seal(projA, secA, "value")}, nil)
	}
	versions, err := h.f.SecretVersions(secA)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != MaxSecretVersions {
		t.Fatalf("%d versions kept, want %d", len(versions), MaxSecretVersions)
	}
	if versions[0].Version != last-MaxSecretVersions+1 || versions[len(versions)-1].Version != last {
		t.Fatalf("kept versions %d to %d, want %d to %d",
			versions[0].Version, versions[len(versions)-1].Version, last-MaxSecretVersions+1, last)
	}
}

// TestFSM_DeleteSecretGrantedInSameBatch grants a secret and deletes it in
// one apply batch: the grant, known only to the batch, is still revoked.
func TestFSM_DeleteSecretGrantedInSameBatch(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "payments")
	h.setupSecret(projA, secA, "db", "v1")
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)

	grant := h.entry(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: machine1, SecretIDs: []SecretID{secA}})
	del := h.entry(CmdDeleteSecret, DeleteSecretPayload{VaultID: vaultA, ID: secA})
	out := h.f.ApplyBatch([]*raft.Log{grant, del})

	var d DeletedSecret
	if err := json.Unmarshal(asResponse(t, out[1]).Body, &d); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.RevokedGrants, []MachineID{machine1}) {
		t.Fatalf("revoked grants = %v, want [%s]", d.RevokedGrants, machine1)
	}
	if got := h.machine(machine1).Grants; len(got) != 0 {
		t.Fatalf("machine1 grants = %v, want none", got)
	}
	checkMachineIndex(t, h.f)
}
