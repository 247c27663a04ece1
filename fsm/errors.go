package fsm

import (
	"errors"
	"fmt"
)

// Errors of the state machine. A command rejected by the state carries one
// of these as Response.Code, so that the node which proposed the command can
// turn the code back into the same error with ErrorFromCode.
var (
	// ErrNotFound means a referenced object does not exist, or exists in
	// another vault.
	ErrNotFound = errors.New("fsm: not found")
	// ErrAlreadyExists means an object with the same id, hash or name exists.
	ErrAlreadyExists = errors.New("fsm: already exists")
	// ErrAlreadyInitialized means the cluster was initialised before.
	ErrAlreadyInitialized = errors.New("fsm: already initialized")
	// ErrConflict means the object changed since the proposer read it, for
	// example a secret update whose expected version is no longer current.
	ErrConflict = errors.New("fsm: conflict")
	// ErrInvalid means a field of the command is malformed or out of range.
	ErrInvalid = errors.New("fsm: invalid")
	// ErrTokenInvalid means a bootstrap token is unknown, for another
	// vault, revoked, expired or used up.
	ErrTokenInvalid = errors.New("fsm: token invalid")
	// ErrOverCap means a new expiry is later than the extension cap.
	ErrOverCap = errors.New("fsm: over cap")
	// ErrNotAllowed means the command is well formed but the object's state
	// forbids it, for example extending an expired machine.
	ErrNotAllowed = errors.New("fsm: not allowed")
	// ErrAlreadyApplied means a log entry at or below the applied index was
	// presented again and no idempotency record holds its first response.
	ErrAlreadyApplied = errors.New("fsm: already applied")

	// ErrNoKeyring means SecretValue was called on an FSM opened without a
	// keyring. It is a local error and has no Response code.
	ErrNoKeyring = errors.New("fsm: no keyring configured")
	// ErrSnapshotCorrupt means a snapshot stream failed validation. Restore
	// keeps the state it had. It is a local error and has no Response code.
	ErrSnapshotCorrupt = errors.New("fsm: snapshot corrupt")

	// errClosed is returned by calls that need the store after Close.
	errClosed = errors.New("fsm: closed")
)

// Response codes, one per sentinel error.
const (
	CodeNotFound           = "not_found"
	CodeAlreadyExists      = "already_exists"
	CodeAlreadyInitialized = "already_initialized"
	CodeConflict           = "conflict"
	CodeInvalid            = "invalid"
	CodeTokenInvalid       = "token_invalid"
	CodeOverCap            = "over_cap"
	CodeNotAllowed         = "not_allowed"
	CodeAlreadyApplied     = "already_applied"
)

// errorCodes pairs each sentinel with its code. A slice, not a map, keeps
// the lookup order fixed.
var errorCodes = []struct {
	err  error
	code string
}{
	{ErrNotFound, CodeNotFound},
	{ErrAlreadyExists, CodeAlreadyExists},
	{ErrAlreadyInitialized, CodeAlreadyInitialized},
	{ErrConflict, CodeConflict},
	{ErrInvalid, CodeInvalid},
	{ErrTokenInvalid, CodeTokenInvalid},
	{ErrOverCap, CodeOverCap},
	{ErrNotAllowed, CodeNotAllowed},
	{ErrAlreadyApplied, CodeAlreadyApplied},
}

// ErrorFromCode returns the sentinel error for a Response code, wrapped with
// message. It returns nil for an empty code, and an error wrapping
// ErrInvalid for a code it does not know, so a newer peer's code never
// reads as success.
func ErrorFromCode(code, message string) error {
	if code == "" {
		return nil
	}
	for _, ec := range errorCodes {
		if ec.code == code {
			return &codeError{sentinel: ec.err, message: message}
		}
	}
	return &codeError{sentinel: ErrInvalid, message: fmt.Sprintf("unknown response code %q: %s", code, message)}
}

// Err returns the error that the Response carries, or nil on success and
// for a nil Response.
func (r *Response) Err() error {
	if r == nil {
		return nil
	}
	return ErrorFromCode(r.Code, r.Message)
}

// codeOf returns the Response code of an error made with rejectf.
func codeOf(err error) string {
	for _, ec := range errorCodes {
		if errors.Is(err, ec.err) {
			return ec.code
		}
	}
	return CodeInvalid
}

// codeError is an fsm sentinel with the message that explains it. Its text
// is the message alone, because the message already names what failed.
type codeError struct {
	sentinel error
	message  string
}

func (e *codeError) Error() string {
	if e.message == "" {
		return e.sentinel.Error()
	}
	return e.message
}

func (e *codeError) Unwrap() error { return e.sentinel }

// rejectf builds the error of a rejected command: the sentinel for its
// Response code and a message naming the value and the rule.
func rejectf(sentinel error, format string, args ...any) error {
	return &codeError{sentinel: sentinel, message: fmt.Sprintf(format, args...)}
}
