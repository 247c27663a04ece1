package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestRootKeyCheck_SameKeyOpens(t *testing.T) {
	k := newTestKeyring(t)
	check, err := k.NewRootKeyCheck()
	if err != nil {
		t.Fatalf("NewRootKeyCheck: %v", err)
	}
	if len(check) != RootKeyCheckSize {
		t.Fatalf("check value is %d bytes, want %d", len(check), RootKeyCheckSize)
	}
	if err := k.CheckRootKey(check); err != nil {
		t.Fatalf("CheckRootKey with the same root key: %v", err)
	}
}

func TestRootKeyCheck_FreshEachTime(t *testing.T) {
	k := newTestKeyring(t)
	first, err := k.NewRootKeyCheck()
	if err != nil {
		t.Fatal(err)
	}
	second, err := k.NewRootKeyCheck()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, second) {
		t.Fatal("two check values are equal")
	}
}

func TestRootKeyCheck_Rejects(t *testing.T) {
	k := newTestKeyring(t)
	check, err := k.NewRootKeyCheck()
	if err != nil {
		t.Fatal(err)
	}
	projectKey, err := k.NewProjectKey()
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(check)
	flipped[len(flipped)-1] ^= 0x01

	cases := []struct {
		name    string
		keyring *Keyring
		check   []byte
	}{
		{"other root key", newTestKeyring(t), check},
		{"changed tag", k, flipped},
		{"short", k, check[:10]},
		{"empty", k, nil},
		{"project key", k, projectKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.keyring.CheckRootKey(tc.check); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("CheckRootKey error = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestRootKeyCheck_NotAProjectKey(t *testing.T) {
	k := newTestKeyring(t)
	check, err := k.NewRootKeyCheck()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.CheckProjectKey(check); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("CheckProjectKey on a check value: %v, want ErrDecrypt", err)
	}
}
