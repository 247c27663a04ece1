package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. An [*APIError] matches the status sentinels through
// errors.Is; the others come from checks made before any request is sent.
var (
	// ErrBadRequest matches a 400, 413, 422 or 431 response: the server
	// rejected the input.
	ErrBadRequest = errors.New("client: bad request")

	// ErrUnauthorized matches a 401 response: a missing or unknown admin
	// token, or a machine signature that did not verify.
	ErrUnauthorized = errors.New("client: unauthorized")

	// ErrForbidden matches a 403 response: the caller is known but not allowed.
	ErrForbidden = errors.New("client: forbidden")

	// ErrNotFound matches a 404 response.
	ErrNotFound = errors.New("client: not found")

	// ErrConflict matches a 409 response, for example a second init.
	ErrConflict = errors.New("client: conflict")

	// ErrGone matches a 410 response: a registration token that expired, was
	// revoked or was already used.
	ErrGone = errors.New("client: gone")

	// ErrRateLimited matches a 429 response.
	ErrRateLimited = errors.New("client: rate limited")

	// ErrUnavailable matches a 502, 503 or 504 response: the outcome is
	// unknown or the node cannot serve now, and the call may be retried.
	ErrUnavailable = errors.New("client: service unavailable")

	// ErrUnhealthy means the node answered its health check with 503:
	// it is stale, catching up, skewed or shutting down. Health returns
	// the node's report along with it.
	ErrUnhealthy = errors.New("client: node is not healthy")

	// ErrInvalidArgument means a method argument failed a local check and
	// no request was sent. The wrapping message names the argument.
	ErrInvalidArgument = errors.New("client: invalid argument")

	// ErrNoIdentity means no machine identity file was found.
	ErrNoIdentity = errors.New("client: no machine identity found")

	// ErrAmbiguousIdentity means several vault identities exist and none
	// was chosen.
	ErrAmbiguousIdentity = errors.New("client: several machine identities found")

	// ErrIdentityExists means registration would overwrite an existing
	// identity.
	ErrIdentityExists = errors.New("client: machine identity already exists")

	// ErrInvalidLifetime means a lifetime text such as "1mo2d3h" did not
	// parse or is not positive.
	ErrInvalidLifetime = errors.New("client: invalid lifetime")
)

// maxErrorMessage bounds the message kept from an error body, so a proxy's
// HTML error page does not flood a terminal.
const maxErrorMessage = 512

// APIError is a non-2xx response from the server.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the "error" field of the JSON body, or the start of the
	// body text when the body is not Keyward's JSON error shape.
	Message string
	// RequestID is the "requestId" field of the body, or the X-Request-Id
	// header; empty when the server sent neither.
	RequestID string
	// Code is the machine-readable "code" field of the body, for example
	// "over_cap" or "commit_indeterminate"; empty when absent.
	Code string
	// Method and Path name the request that failed.
	Method string
	Path   string
}

// Error formats the status, the server's message and the request id.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

// Is matches the status sentinels, so callers write
// errors.Is(err, client.ErrNotFound) without inspecting the code.
func (e *APIError) Is(target error) bool {
	return statusSentinel(e.Status) == target
}

// Retryable reports whether the status means "try again" (502, 503, 504)
// rather than a final response. Keyward never uses these codes for a denial.
func (e *APIError) Retryable() bool {
	return statusSentinel(e.Status) == ErrUnavailable
}

func statusSentinel(status int) error {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge,
		http.StatusUnprocessableEntity, http.StatusRequestHeaderFieldsTooLarge:
		return ErrBadRequest
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusGone:
		return ErrGone
	case http.StatusTooManyRequests:
		return ErrRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ErrUnavailable
	}
	return nil
}

// newAPIError builds the error for a non-2xx response from its body.
func newAPIError(method, path string, status int, header http.Header, body []byte) *APIError {
	e := &APIError{Status: status, Method: method, Path: path, RequestID: header.Get("X-Request-Id")}

	var shape struct {
		Error     string `json:"error"`
		RequestID string `json:"requestId"`
		Code      string `json:"code"`
	}
	if json.Unmarshal(body, &shape) == nil && shape.Error != "" {
		e.Message = truncateText(shape.Error, maxErrorMessage)
		e.Code = shape.Code
		if shape.RequestID != "" {
			e.RequestID = shape.RequestID
		}
		return e
	}

	e.Message = truncateText(strings.TrimSpace(string(body)), maxErrorMessage)
	return e
}

// truncateText cuts s to at most max bytes without splitting a UTF-8
// sequence.
func truncateText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func invalidArgf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}
