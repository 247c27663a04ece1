package fsm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/fsm/seal"
)

// foreignKeyring returns a keyring whose root key differs from testKeyring's.
func foreignKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	root := make([]byte, seal.KeySize)
	for i := range root {
		root[i] = byte(0xF0 - i)
	}
	k, err := seal.NewKeyring(root)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rootKeyCheck(t testing.TB, k *seal.Keyring) []byte {
	t.Helper()
	check, err := k.NewRootKeyCheck()
	if err != nil {
		t.Fatal(err)
	}
	return check
}

func (h *harness) initWithCheck(check []byte) {
	h.t.Helper()
	h.mustApply(CmdInit, InitPayload{TokenID: "tok_root", TokenHash: tokenHash("root"), RootKeyCheck: check}, nil)
}

// verify runs VerifyRootKey and fails the test on an error other than a
// root key mismatch.
func verify(t *testing.T, f *FSM) (bool, error) {
	t.Helper()
	checked, err := f.VerifyRootKey()
	if err != nil && !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("VerifyRootKey: unexpected error %v", err)
	}
	return checked, err
}

func TestVerifyRootKey_CheckValueMatches(t *testing.T) {
	h := newHarness(t)
	h.initWithCheck(rootKeyCheck(t, h.keyring))

	checked, err := verify(t, h.f)
	if err != nil {
		t.Fatalf("VerifyRootKey error = %v, want nil", err)
	}
	if !checked {
		t.Fatal("VerifyRootKey reported nothing to check after init stored a check value")
	}
	if err := h.f.RootKeyMismatch(); err != nil {
		t.Fatalf("RootKeyMismatch = %v after a match, want nil", err)
	}
}

func TestVerifyRootKey_CheckValueMismatch(t *testing.T) {
	h := newHarness(t)
	h.initWithCheck(rootKeyCheck(t, foreignKeyring(t)))

	checked, err := verify(t, h.f)
	if !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("VerifyRootKey error = %v, want ErrRootKeyMismatch", err)
	}
	if !checked {
		t.Fatal("VerifyRootKey reported nothing to check")
	}
	if !strings.Contains(err.Error(), "--root-key-file") {
		t.Fatalf("error %q does not name the fix", err)
	}
	if got := h.f.RootKeyMismatch(); !errors.Is(got, ErrRootKeyMismatch) {
		t.Fatalf("RootKeyMismatch = %v, want the recorded mismatch", got)
	}
}

// The check value decides even when a project opens: a project sealed by
// a node with the cluster's key proves nothing once init stored a check.
func TestVerifyRootKey_CheckValueWinsOverProjects(t *testing.T) {
	h := newHarness(t)
	h.initWithCheck(rootKeyCheck(t, foreignKeyring(t)))
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "billing")

	if _, err := verify(t, h.f); !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("VerifyRootKey error = %v, want ErrRootKeyMismatch", err)
	}
}

func TestVerifyRootKey_OldStateUsesFirstProject(t *testing.T) {
	h := newHarness(t)
	h.initWithCheck(nil)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projB, "payments")

	checked, err := verify(t, h.f)
	if err != nil {
		t.Fatalf("VerifyRootKey error = %v, want nil", err)
	}
	if !checked {
		t.Fatal("VerifyRootKey reported nothing to check with a project present")
	}

	// projA sorts before projB, so its key, sealed under another root key,
	// decides from now on.
	foreign, err := foreignKeyring(t).NewProjectKey()
	if err != nil {
		t.Fatal(err)
	}
	h.mustApply(CmdCreateProject, CreateProjectPayload{ID: projA, VaultID: vaultA, Name: "billing", WrappedKey: foreign}, nil)

	checked, err = verify(t, h.f)
	if !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("VerifyRootKey error = %v, want ErrRootKeyMismatch", err)
	}
	if !checked {
		t.Fatal("VerifyRootKey reported nothing to check")
	}
	if !strings.Contains(err.Error(), string(projA)) {
		t.Fatalf("error %q does not name project %s", err, projA)
	}
}

func TestVerifyRootKey_EmptyState(t *testing.T) {
	h := newHarness(t)
	checked, err := verify(t, h.f)
	if err != nil || checked {
		t.Fatalf("empty state: checked %v, error %v; want false, nil", checked, err)
	}

	h.initWithCheck(nil)
	h.setupVault(vaultA)
	checked, err = verify(t, h.f)
	if err != nil || checked {
		t.Fatalf("init without a check value and no project: checked %v, error %v; want false, nil", checked, err)
	}
	if err := h.f.RootKeyMismatch(); err != nil {
		t.Fatalf("RootKeyMismatch = %v, want nil", err)
	}
}

func TestVerifyRootKey_NoKeyring(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	f, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := newProposer(t)
	asResponse(t, f.Apply(p.entry(CmdInit, InitPayload{
		TokenID: "tok_root", TokenHash: tokenHash("root"), RootKeyCheck: rootKeyCheck(t, foreignKeyring(t)),
	})))

	checked, err := f.VerifyRootKey()
	if err != nil || checked {
		t.Fatalf("no keyring: checked %v, error %v; want false, nil", checked, err)
	}
}

func TestVerifyRootKey_RestoreReplacesOutcome(t *testing.T) {
	foreign := newHarness(t)
	foreign.initWithCheck(rootKeyCheck(t, foreignKeyring(t)))
	matching := newHarness(t)
	matching.initWithCheck(rootKeyCheck(t, matching.keyring))

	h := newHarness(t)
	if err := restore(h.f, takeSnapshot(t, foreign.f)); err != nil {
		t.Fatalf("restore foreign snapshot: %v", err)
	}
	if _, err := verify(t, h.f); !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("after restoring a foreign state: %v, want ErrRootKeyMismatch", err)
	}

	if err := restore(h.f, takeSnapshot(t, matching.f)); err != nil {
		t.Fatalf("restore matching snapshot: %v", err)
	}
	if _, err := verify(t, h.f); err != nil {
		t.Fatalf("after restoring a matching state: %v, want nil", err)
	}
	if err := h.f.RootKeyMismatch(); err != nil {
		t.Fatalf("RootKeyMismatch = %v after a later match, want nil", err)
	}
}

func TestVerifyRootKey_AfterClose(t *testing.T) {
	h := newHarness(t)
	h.initWithCheck(rootKeyCheck(t, h.keyring))
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.f.VerifyRootKey(); err == nil {
		t.Fatal("VerifyRootKey after Close returned no error")
	}
}

func TestApplyInit_StoresRootKeyCheck(t *testing.T) {
	h := newHarness(t)
	check := rootKeyCheck(t, h.keyring)
	h.initWithCheck(check)

	var rec initRecord
	found, err := getJSON(h.f.db, keyInit, &rec)
	if err != nil || !found {
		t.Fatalf("read init record: found %v, error %v", found, err)
	}
	if string(rec.RootKeyCheck) != string(check) {
		t.Fatal("stored root key check value differs from the payload's")
	}
}

func TestApplyInit_RejectsBadRootKeyCheckSize(t *testing.T) {
	for _, size := range []int{1, seal.RootKeyCheckSize - 1, seal.RootKeyCheckSize + 1, 4096} {
		h := newHarness(t)
		r := h.expectReject(CmdInit, InitPayload{
			TokenID: "tok_root", TokenHash: tokenHash("root"), RootKeyCheck: make([]byte, size),
		}, ErrInvalid)
		if !strings.Contains(r.Message, "root key check value") {
			t.Errorf("size %d: message %q does not name the field", size, r.Message)
		}
		if h.f.Initialized() {
			t.Errorf("size %d: rejected init marked the cluster initialised", size)
		}
	}
}

// An init record written before the check value existed decodes and leaves
// the field empty.
func TestInitRecord_OldFormatDecodes(t *testing.T) {
	var rec initRecord
	if err := json.Unmarshal([]byte(`{"initializedAt":1,"tokenId":"tok_root"}`), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RootKeyCheck != nil {
		t.Fatalf("RootKeyCheck = %x, want empty", rec.RootKeyCheck)
	}
}

func TestCheckKeysOf_ForeignRootKeyCheckRejected(t *testing.T) {
	foreign := newHarness(t)
	foreign.initWithCheck(rootKeyCheck(t, foreignKeyring(t)))
	matching := newHarness(t)
	matching.initWithCheck(rootKeyCheck(t, matching.keyring))

	h := newHarness(t)
	if err := h.f.CheckKeysOf(foreign.f); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("state with a foreign check value: %v, want ErrSnapshotCorrupt", err)
	}
	if err := h.f.CheckKeysOf(matching.f); err != nil {
		t.Fatalf("state with a matching check value: %v, want nil", err)
	}
}
