package audit

import "errors"

// Errors of the package.
var (
	// ErrInvalidConfig means a configuration field is out of range; the
	// message names the field.
	ErrInvalidConfig = errors.New("audit: invalid config")
	// ErrAddressNotAllowed means a webhook target resolved to an address
	// that the delivery policy refuses (loopback, private, link-local,
	// metadata).
	ErrAddressNotAllowed = errors.New("audit: address not allowed")
	// ErrInsecureURL means a webhook URL uses http where https is required.
	ErrInsecureURL = errors.New("audit: webhook url is not https")
	// ErrClosed means the Recorder was closed.
	ErrClosed = errors.New("audit: closed")
)
