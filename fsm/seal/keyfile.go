package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxKeyFileBytes bounds how much of a root key file is read. A valid file
// is 45 bytes: 44 base64 characters and a newline. The margin allows a
// carriage return and stray white space without reading a large file whole.
const maxKeyFileBytes = 1024

// ReadRootKeyFile reads a root key file: one line holding the standard
// base64 encoding of 32 bytes, with an optional trailing newline. The file
// must have mode 0600 or 0400, because a root key that other users can read
// unwraps every secret. Any other mode is an error that names the fix.
func ReadRootKeyFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s: not found; create one with `keyward root-key new %s`", ErrKeyFile, path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w %s: not a regular file", ErrKeyFile, path)
	}
	if perm := info.Mode().Perm(); perm != 0o600 && perm != 0o400 {
		return nil, fmt.Errorf("%w %s: mode is %04o, want 0600 or 0400; run `chmod 600 %s`", ErrKeyFile, path, perm, path)
	}

	raw, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return decodeRootKey(path, raw)
}

// WriteRootKeyFile writes a new random root key to path with mode 0600. It
// refuses to overwrite an existing file, because replacing a root key makes
// every stored secret unreadable.
func WriteRootKeyFile(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate root key: %w", err)
	}
	defer clear(key)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w %s: already exists; refusing to replace a root key", ErrKeyFile, path)
	}
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}

	line := base64.StdEncoding.EncodeToString(key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("%w %s: write: %w", ErrKeyFile, path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%w %s: sync: %w", ErrKeyFile, path, err)
	}
	return f.Close()
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, path, err)
	}
	defer f.Close()

	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w %s: read: %w", ErrKeyFile, path, err)
	}
	if len(raw) > maxKeyFileBytes {
		return nil, fmt.Errorf("%w %s: larger than %d bytes; a root key file contains one line of base64", ErrKeyFile, path, maxKeyFileBytes)
	}
	return raw, nil
}

func decodeRootKey(path string, raw []byte) ([]byte, error) {
	text := strings.TrimSpace(string(raw))
	if strings.ContainsAny(text, "\r\n") {
		return nil, fmt.Errorf("%w %s: more than one line; the file must contain one line of base64", ErrKeyFile, path)
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%w %s: not standard base64: %v", ErrKeyFile, path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w %s: decodes to %d bytes, want %d", ErrKeyFile, path, len(key), KeySize)
	}
	return key, nil
}
