package seal

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFile_WriteThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	if err := WriteRootKeyFile(path); err != nil {
		t.Fatalf("WriteRootKeyFile: %v", err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("mode %04o, want 0600", perm)
	}
	key, err := ReadRootKeyFile(path)
	if err != nil {
		t.Fatalf("ReadRootKeyFile: %v", err)
	}
	if len(key) != KeySize {
		t.Fatalf("key is %d bytes, want %d", len(key), KeySize)
	}
	if _, err := NewKeyring(key); err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
}

func TestKeyFile_WriteRefusesOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	if err := WriteRootKeyFile(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	err := WriteRootKeyFile(path)
	if !errors.Is(err, ErrKeyFile) {
		t.Fatalf("second write error = %v, want ErrKeyFile", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("existing root key was changed")
	}
}

func TestKeyFile_ReadRejects(t *testing.T) {
	valid := base64.StdEncoding.EncodeToString(make([]byte, KeySize))
	cases := []struct {
		name     string
		content  string
		mode     os.FileMode
		missing  bool
		wantText string
	}{
		{name: "missing file", missing: true, wantText: "not found"},
		{name: "group readable", content: valid + "\n", mode: 0o640, wantText: "chmod 600"},
		{name: "world readable", content: valid + "\n", mode: 0o644, wantText: "mode is 0644"},
		{name: "not base64", content: "not-base64!!\n", mode: 0o600, wantText: "not standard base64"},
		{name: "url base64", content: strings.Repeat("-", 43) + "=\n", mode: 0o600, wantText: "not standard base64"},
		{name: "short key", content: base64.StdEncoding.EncodeToString(make([]byte, 16)) + "\n", mode: 0o600, wantText: "decodes to 16 bytes"},
		{name: "long key", content: base64.StdEncoding.EncodeToString(make([]byte, 64)) + "\n", mode: 0o600, wantText: "decodes to 64 bytes"},
		{name: "two lines", content: valid + "\n" + valid + "\n", mode: 0o600, wantText: "more than one line"},
		{name: "empty", content: "", mode: 0o600, wantText: "decodes to 0 bytes"},
		{name: "oversized", content: strings.Repeat("A", 2*maxKeyFileBytes), mode: 0o600, wantText: "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			if !tc.missing {
				if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
			}

			key, err := ReadRootKeyFile(path)
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("error = %v, want ErrKeyFile", err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("error %q does not mention %q", err, tc.wantText)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			if key != nil {
				t.Fatal("key returned with an error")
			}
		})
	}
}

func TestKeyFile_ReadAccepts(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	encoded := base64.StdEncoding.EncodeToString(key)
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"newline", encoded + "\n", 0o600},
		{"no newline", encoded, 0o600},
		{"crlf", encoded + "\r\n", 0o600},
		{"read only", encoded + "\n", 0o400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			got, err := ReadRootKeyFile(path)
			if err != nil {
				t.Fatalf("ReadRootKeyFile: %v", err)
			}
			if string(got) != string(key) {
				t.Fatal("decoded key differs from the written one")
			}
		})
	}
}
