package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestOpener_MatchesOpen(t *testing.T) {
	k := newTestKeyring(t)
	for _, value := range [][]byte{{}, []byte("hunter2"), bytes.Repeat([]byte{0xAB}, 12*1024)} {
		projectKey, sealed := sealForTest(t, k, "sk_0123456789", value)
		opener, err := k.NewOpener(projectKey, "sk_0123456789", sealed)
		if err != nil {
			t.Fatalf("NewOpener: %v", err)
		}
		for round := range 2 {
			got, err := opener.AppendOpen([]byte("prefix:"))
			if err != nil {
				t.Fatalf("round %d: AppendOpen: %v", round, err)
			}
			if !bytes.Equal(got, append([]byte("prefix:"), value...)) {
				t.Fatalf("round %d: AppendOpen returned %d bytes, want the prefix and the %d-byte value", round, len(got), len(value))
			}
		}
	}
}

func TestOpener_RejectsOtherSecretID(t *testing.T) {
	k := newTestKeyring(t)
	projectKey, sealed := sealForTest(t, k, "sk_0123456789", []byte("v"))
	if _, err := k.NewOpener(projectKey, "sk_9999999999", sealed); !errors.Is(err, ErrDecrypt) {
		t.Errorf("NewOpener with another secret id = %v, want ErrDecrypt", err)
	}
}

func TestOpener_RejectsChangedCiphertext(t *testing.T) {
	k := newTestKeyring(t)
	projectKey, sealed := sealForTest(t, k, "sk_0123456789", []byte("value"))
	sealed.Ciphertext = append([]byte(nil), sealed.Ciphertext...)
	sealed.Ciphertext[0] ^= 1
	opener, err := k.NewOpener(projectKey, "sk_0123456789", sealed)
	if err != nil {
		t.Fatalf("NewOpener: %v", err)
	}
	if _, err := opener.AppendOpen(nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("AppendOpen of a changed ciphertext = %v, want ErrDecrypt", err)
	}
}

func TestOpener_ReadWithRoomDoesNotAllocate(t *testing.T) {
	k := newTestKeyring(t)
	projectKey, sealed := sealForTest(t, k, "sk_0123456789", []byte("value"))
	opener, err := k.NewOpener(projectKey, "sk_0123456789", sealed)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := opener.AppendOpen(buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendOpen into a buffer with room allocated %.1f times, want 0", allocs)
	}
}
