package seal

import (
	"crypto/cipher"
	"fmt"
)

// Opener decrypts one sealed value as often as it is read. It unwraps the
// project key and the data key once, when it is made, so that each read
// costs one AES-GCM decryption and, with a large enough buffer, no
// allocation. An Opener holds the value's data key in its cipher, so keep
// it only as long as the sealed value itself. It is immutable and safe for
// concurrent use.
type Opener struct {
	data       cipher.AEAD
	aad        []byte
	nonce      []byte
	ciphertext []byte
}

// NewOpener unwraps the keys of a value sealed for secretID. It fails with
// ErrDecrypt when the root key, the project key or the secret id differs
// from what Seal used. AppendOpen finds a changed value.
func (k *Keyring) NewOpener(wrappedProjectKey []byte, secretID string, s Sealed) (*Opener, error) {
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
	return &Opener{data: data, aad: aad, nonce: s.Nonce, ciphertext: s.Ciphertext}, nil
}

// AppendOpen decrypts the value and appends the plaintext to dst. It fails
// with ErrDecrypt when the ciphertext or its tag was changed. The caller
// owns the plaintext and should clear it once written out.
func (o *Opener) AppendOpen(dst []byte) ([]byte, error) {
	out, err := o.data.Open(dst, o.nonce, o.ciphertext, o.aad)
	if err != nil {
		return dst, fmt.Errorf("%w: value of secret %s", ErrDecrypt, o.aad)
	}
	return out, nil
}
