package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// Sizes of the key material, in bytes.
const (
	// KeySize is the size of the root, project and data keys (AES-256).
	KeySize = 32
	// NonceSize is the size of an AES-GCM nonce.
	NonceSize = 12
	// TagSize is the size of an AES-GCM authentication tag.
	TagSize = 16
	// WrappedKeySize is the size of a wrapped key: nonce, encrypted key, tag.
	WrappedKeySize = NonceSize + KeySize + TagSize
)

// projectKeyAAD binds a wrapped project key to its purpose, so that bytes
// wrapped by the root key for another use never open as a project key.
var projectKeyAAD = []byte("keyward project key v1")

// Sealed is a secret value encrypted under a per-version data key.
// WrappedKey is that data key sealed by the project key (nonce, ciphertext
// and tag, WrappedKeySize bytes); Nonce and Ciphertext are the value's own
// AES-GCM nonce and ciphertext with its tag appended.
type Sealed struct {
	WrappedKey []byte `json:"wrappedKey"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// Keyring holds the root key. It is immutable and safe for concurrent use.
type Keyring struct {
	root cipher.AEAD
}

// NewKeyring returns a Keyring for a 32-byte root key. The key is copied.
func NewKeyring(root []byte) (*Keyring, error) {
	if len(root) != KeySize {
		return nil, fmt.Errorf("%w: root key is %d bytes, want %d", ErrInvalidKey, len(root), KeySize)
	}
	aead, err := newAEAD(root)
	if err != nil {
		return nil, err
	}
	return &Keyring{root: aead}, nil
}

// NewProjectKey generates a random project key and returns it wrapped by
// the root key. The plain project key never leaves this package.
func (k *Keyring) NewProjectKey() (wrapped []byte, err error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate project key: %w", err)
	}
	defer clear(key)
	return wrap(k.root, key, projectKeyAAD)
}

// Seal encrypts plaintext for the secret secretID under a fresh data key,
// and wraps that data key with the project key. The caller keeps ownership
// of plaintext and should clear it when done.
func (k *Keyring) Seal(wrappedProjectKey []byte, secretID string, plaintext []byte) (Sealed, error) {
	project, err := k.projectAEAD(wrappedProjectKey)
	if err != nil {
		return Sealed{}, err
	}

	dataKey := make([]byte, KeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return Sealed{}, fmt.Errorf("generate data key: %w", err)
	}
	defer clear(dataKey)

	aad := []byte(secretID)
	wrappedData, err := wrap(project, dataKey, aad)
	if err != nil {
		return Sealed{}, err
	}

	data, err := newAEAD(dataKey)
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("generate nonce: %w", err)
	}
	return Sealed{
		WrappedKey: wrappedData,
		Nonce:      nonce,
		Ciphertext: data.Seal(nil, nonce, plaintext, aad),
	}, nil
}

// Open decrypts a value sealed for secretID. It fails with ErrDecrypt when
// the root key, the project key, the secret id or any byte differs from
// what Seal used.
func (k *Keyring) Open(wrappedProjectKey []byte, secretID string, s Sealed) ([]byte, error) {
	project, err := k.projectAEAD(wrappedProjectKey)
	if err != nil {
		return nil, err
	}

	aad := []byte(secretID)
	dataKey, err := unwrap(project, s.WrappedKey, aad)
	if err != nil {
		return nil, fmt.Errorf("open data key of secret %s: %w", secretID, err)
	}
	defer clear(dataKey)

	data, err := newAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != NonceSize {
		return nil, fmt.Errorf("%w: value nonce is %d bytes, want %d", ErrDecrypt, len(s.Nonce), NonceSize)
	}
	plaintext, err := data.Open(nil, s.Nonce, s.Ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: value of secret %s", ErrDecrypt, secretID)
	}
	return plaintext, nil
}

// projectAEAD unwraps a project key and returns its cipher.
func (k *Keyring) projectAEAD(wrappedProjectKey []byte) (cipher.AEAD, error) {
	key, err := unwrap(k.root, wrappedProjectKey, projectKeyAAD)
	if err != nil {
		return nil, fmt.Errorf("open project key: %w", err)
	}
	defer clear(key)
	return newAEAD(key)
}

// wrap encrypts a key under aead with a random nonce and returns
// nonce || ciphertext || tag.
func wrap(aead cipher.AEAD, key, aad []byte) ([]byte, error) {
	out := make([]byte, NonceSize, WrappedKeySize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return aead.Seal(out, out[:NonceSize], key, aad), nil
}

// unwrap reverses wrap. Its length check keeps a short input from reaching
// the cipher.
func unwrap(aead cipher.AEAD, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) != WrappedKeySize {
		return nil, fmt.Errorf("%w: wrapped key is %d bytes, want %d", ErrDecrypt, len(wrapped), WrappedKeySize)
	}
	key, err := aead.Open(nil, wrapped[:NonceSize], wrapped[NonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return key, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return cipher.NewGCM(block)
}

// CheckProjectKey reports whether wrappedProjectKey was sealed under this
// keyring's root key, without using the key.
func (k *Keyring) CheckProjectKey(wrappedProjectKey []byte) error {
	_, err := k.projectAEAD(wrappedProjectKey)
	return err
}
