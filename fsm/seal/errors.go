package seal

import "errors"

// Errors returned by this package. Match them with errors.Is.
var (
	// ErrInvalidKey means a key does not have the expected size or encoding.
	ErrInvalidKey = errors.New("seal: invalid key")
	// ErrDecrypt means authentication failed while opening a wrapped key or
	// a sealed value: the wrong root key, the wrong secret id, or tampered
	// bytes.
	ErrDecrypt = errors.New("seal: decryption failed")
	// ErrKeyFile means the root key file is missing, unsafe or malformed.
	ErrKeyFile = errors.New("seal: root key file")
)
