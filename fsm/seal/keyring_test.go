package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func newTestKeyring(t *testing.T) *Keyring {
	t.Helper()
	root := make([]byte, KeySize)
	if _, err := rand.Read(root); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeyring(root)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return k
}

func sealForTest(t *testing.T, k *Keyring, secretID string, value []byte) ([]byte, Sealed) {
	t.Helper()
	projectKey, err := k.NewProjectKey()
	if err != nil {
		t.Fatalf("NewProjectKey: %v", err)
	}
	sealed, err := k.Seal(projectKey, secretID, value)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return projectKey, sealed
}

func TestSeal_RoundTrip(t *testing.T) {
	k := newTestKeyring(t)
	for _, value := range [][]byte{{}, []byte("hunter2"), bytes.Repeat([]byte{0xAB}, 12*1024)} {
		projectKey, sealed := sealForTest(t, k, "sk_0123456789", value)

		got, err := k.Open(projectKey, "sk_0123456789", sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, value) {
			t.Fatalf("Open returned %d bytes, want the %d sealed", len(got), len(value))
		}
		if len(projectKey) != WrappedKeySize || len(sealed.WrappedKey) != WrappedKeySize {
			t.Fatalf("wrapped key sizes %d and %d, want %d", len(projectKey), len(sealed.WrappedKey), WrappedKeySize)
		}
		if len(value) > 0 && bytes.Contains(sealed.Ciphertext, value) {
			t.Fatal("ciphertext contains the plaintext")
		}
	}
}

func TestSeal_FreshDataKeyEachTime(t *testing.T) {
	k := newTestKeyring(t)
	projectKey, first := sealForTest(t, k, "sk_a", []byte("same"))

	second, err := k.Seal(projectKey, "sk_a", []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first.WrappedKey, second.WrappedKey) || bytes.Equal(first.Ciphertext, second.Ciphertext) {
		t.Fatal("two seals of one value produced equal key or ciphertext")
	}
}

func TestSeal_OpenRejects(t *testing.T) {
	k := newTestKeyring(t)
	projectKey, sealed := sealForTest(t, k, "sk_right", []byte("value"))
	otherProjectKey, err := k.NewProjectKey()
	if err != nil {
		t.Fatal(err)
	}

	flip := func(b []byte, i int) []byte {
		out := bytes.Clone(b)
		out[i] ^= 0x01
		return out
	}

	cases := []struct {
		name       string
		keyring    *Keyring
		projectKey []byte
		secretID   string
		sealed     Sealed
	}{
		{"wrong secret id", k, projectKey, "sk_wrong", sealed},
		{"wrong root key", newTestKeyring(t), projectKey, "sk_right", sealed},
		{"wrong project key", k, otherProjectKey, "sk_right", sealed},
		{"tampered ciphertext", k, projectKey, "sk_right", Sealed{sealed.WrappedKey, sealed.Nonce, flip(sealed.Ciphertext, 0)}},
		{"tampered tag", k, projectKey, "sk_right", Sealed{sealed.WrappedKey, sealed.Nonce, flip(sealed.Ciphertext, len(sealed.Ciphertext)-1)}},
		{"tampered nonce", k, projectKey, "sk_right", Sealed{sealed.WrappedKey, flip(sealed.Nonce, 3), sealed.Ciphertext}},
		{"tampered data key", k, projectKey, "sk_right", Sealed{flip(sealed.WrappedKey, 20), sealed.Nonce, sealed.Ciphertext}},
		{"tampered project key", k, flip(projectKey, 40), "sk_right", sealed},
		{"short data key", k, projectKey, "sk_right", Sealed{sealed.WrappedKey[:10], sealed.Nonce, sealed.Ciphertext}},
		{"short nonce", k, projectKey, "sk_right", Sealed{sealed.WrappedKey, sealed.Nonce[:4], sealed.Ciphertext}},
		{"empty ciphertext", k, projectKey, "sk_right", Sealed{sealed.WrappedKey, sealed.Nonce, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.keyring.Open(tc.projectKey, tc.secretID, tc.sealed)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open error = %v, want ErrDecrypt", err)
			}
			if got != nil {
				t.Fatalf("Open returned %q with an error", got)
			}
		})
	}
}

func TestSeal_NewKeyringRejectsWrongSize(t *testing.T) {
	for _, size := range []int{0, 16, 31, 33, 64} {
		if _, err := NewKeyring(make([]byte, size)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("NewKeyring(%d bytes) error = %v, want ErrInvalidKey", size, err)
		}
	}
}
