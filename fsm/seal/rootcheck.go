package seal

import (
	"crypto/rand"
	"fmt"
)

// rootKeyCheckAAD binds a root key check value to its purpose, so that no
// other bytes wrapped by the root key (a project key) pass as one.
var rootKeyCheckAAD = []byte("keyward root key check v1")

// RootKeyCheckSize is the size of a root key check value in bytes.
const RootKeyCheckSize = WrappedKeySize

// NewRootKeyCheck returns a root key check value: a random key wrapped by
// the root key with AES-256-GCM. The key itself is discarded, because only
// the authentication tag matters: CheckRootKey on a keyring with another
// root key fails.
func (k *Keyring) NewRootKeyCheck() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate root key check value: %w", err)
	}
	defer clear(key)
	return wrap(k.root, key, rootKeyCheckAAD)
}

// CheckRootKey returns nil when check was made by NewRootKeyCheck under
// this keyring's root key. Otherwise it returns an error wrapping
// ErrDecrypt: another root key, or changed bytes.
func (k *Keyring) CheckRootKey(check []byte) error {
	key, err := unwrap(k.root, check, rootKeyCheckAAD)
	if err != nil {
		return fmt.Errorf("open root key check value: %w", err)
	}
	clear(key)
	return nil
}
