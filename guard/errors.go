package guard

import "errors"

// Errors returned by the checks of this package. Callers map them to HTTP
// status codes with errors.Is; the text is for people.
var (
	// ErrInvalidPublicKey means a public key is not a usable Ed25519 key.
	ErrInvalidPublicKey = errors.New("guard: invalid public key")

	// ErrBadPath means a request path is not in canonical form (empty, no
	// leading '/', a query, an empty or dot segment). It maps to 400.
	ErrBadPath = errors.New("guard: invalid request path")

	// ErrMissingHeader means a required signed-request header is absent.
	// It maps to 401.
	ErrMissingHeader = errors.New("guard: missing header")

	// ErrMalformedHeader means a signed-request header is present but its
	// value is not well formed. It maps to 401.
	ErrMalformedHeader = errors.New("guard: malformed header")

	// ErrDuplicateHeader means a signed-request header was sent more than
	// once. It maps to 400.
	ErrDuplicateHeader = errors.New("guard: duplicate header")

	// ErrTimestampSkew means the request timestamp lies outside the allowed
	// window around the server clock. It maps to 401.
	ErrTimestampSkew = errors.New("guard: timestamp outside the allowed window")

	// ErrInvalidCIDR means an allowlist entry is neither a CIDR prefix nor
	// a bare IP address.
	ErrInvalidCIDR = errors.New("guard: invalid CIDR")

	// ErrInvalidLifetime means a machine lifetime is negative, shorter than
	// one hour or longer than twelve calendar months.
	ErrInvalidLifetime = errors.New("guard: invalid lifetime")

	// ErrInvalidGuardrails means a guardrail configuration failed
	// validation; the wrapped message names the field and the value.
	ErrInvalidGuardrails = errors.New("guard: invalid guardrails")
)
