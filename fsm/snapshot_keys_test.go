package fsm

import (
	"errors"
	"testing"

	"github.com/keyward/keyward/fsm/seal"
)

func TestCheckKeysOf_ForeignRootKeyRejected(t *testing.T) {
	h := newHarness(t)
	h.setupVault("vault_0000000000000001")
	h.setupProject("vault_0000000000000001", "proj_0000000001", "billing")

	if err := h.f.CheckKeysOf(h.f); err != nil {
		t.Fatalf("project keys sealed under this root key: %v, want nil", err)
	}

	other := DefaultConfig()
	other.Dir = t.TempDir()
	root := make([]byte, seal.KeySize)
	root[0] = 0x42
	keyring, err := seal.NewKeyring(root)
	if err != nil {
		t.Fatal(err)
	}
	other.Keyring = keyring
	foreign, err := Open(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()

	err = foreign.CheckKeysOf(h.f)
	if !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("project keys sealed under another root key: %v, want ErrSnapshotCorrupt", err)
	}
}
