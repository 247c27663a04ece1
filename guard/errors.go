package guard

import "errors"

// Errors returned by the checks of this package. Callers map them to HTTP
// status codes with errors.Is; the text is for people.
var (
	// ErrInvalidPublicKey means a public key is not a usable Ed25519 key.
	ErrInvalidPublicKey = errors.New("guard: invalid public key")
)
