package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// Errors of the HTTP layer. Each maps to one status code in statusTable;
// handlers wrap them with a message for the client (see fail).
var (
	// ErrBadRequest means the request is malformed or a value is invalid (400).
	ErrBadRequest = errors.New("httpapi: bad request")
	// ErrUnauthorized means authentication failed (401).
	ErrUnauthorized = errors.New("httpapi: unauthorized")
	// ErrForbidden means the caller is authenticated but not allowed (403).
	ErrForbidden = errors.New("httpapi: forbidden")
	// ErrNotFound means the route or an object named in it does not exist (404).
	ErrNotFound = errors.New("httpapi: not found")
	// ErrMethodNotAllowed means the route exists for other methods (405).
	ErrMethodNotAllowed = errors.New("httpapi: method not allowed")
	// ErrConflict means the request conflicts with the current state (409).
	ErrConflict = errors.New("httpapi: conflict")
	// ErrGone means a registration token expired, was revoked or was used (410).
	ErrGone = errors.New("httpapi: gone")
	// ErrBodyTooLarge means the body exceeds Config.MaxBodyBytes (413).
	ErrBodyTooLarge = errors.New("httpapi: request body too large")
	// ErrOverCap means a requested expiry is past the extension cap (422).
	ErrOverCap = errors.New("httpapi: over the extension cap")
	// ErrLocked means the source address is locked out after failures (429).
	ErrLocked = errors.New("httpapi: too many failed attempts")
	// ErrHeadersTooLarge means the request headers exceed the read buffer (431).
	ErrHeadersTooLarge = errors.New("httpapi: request headers too large")
	// ErrUnavailable means this node cannot serve the request now, so the
	// client should retry (503).
	ErrUnavailable = errors.New("httpapi: unavailable")
)

// requestError carries the message shown to the client and the error that
// decides the status code.
type requestError struct {
	kind error
	msg  string
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.kind }

// fail returns an error of kind whose client message is the formatted text.
func fail(kind error, format string, args ...any) error {
	return &requestError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// statusEntry maps one error kind to a status and an optional machine-
// readable code that the admin plane adds to the body.
type statusEntry struct {
	kind   error
	status int
	code   string
}

// statusTable is the one place where an error decides a status code. The
// first entry that errors.Is matches wins; anything else is a 500.
var statusTable = []statusEntry{
	{cluster.ErrNoLeader, fasthttp.StatusServiceUnavailable, "no_leader"},
	{cluster.ErrIndeterminate, fasthttp.StatusServiceUnavailable, "commit_indeterminate"},
	// The leader could not store the entry and hands leadership away, so a
	// retry usually reaches a leader with space within a second or two.
	{cluster.ErrDiskFull, fasthttp.StatusInsufficientStorage, "insufficient_storage"},
	{context.DeadlineExceeded, fasthttp.StatusServiceUnavailable, "timeout"},
	{ErrUnavailable, fasthttp.StatusServiceUnavailable, "unavailable"},
	{errRootKeyMismatch, fasthttp.StatusInternalServerError, "root_key_mismatch"},

	{fsm.ErrNotFound, fasthttp.StatusNotFound, "not_found"},
	{fsm.ErrAlreadyExists, fasthttp.StatusConflict, "already_exists"},
	{fsm.ErrAlreadyInitialized, fasthttp.StatusConflict, "already_initialized"},
	{fsm.ErrConflict, fasthttp.StatusConflict, "conflict"},
	{fsm.ErrInvalid, fasthttp.StatusBadRequest, "invalid"},
	{fsm.ErrTokenInvalid, fasthttp.StatusUnauthorized, "token_invalid"},
	{fsm.ErrOverCap, fasthttp.StatusUnprocessableEntity, "over_cap"},
	{fsm.ErrNotAllowed, fasthttp.StatusConflict, "not_allowed"},

	{guard.ErrBadPath, fasthttp.StatusBadRequest, "bad_path"},
	{guard.ErrDuplicateHeader, fasthttp.StatusBadRequest, "duplicate_header"},
	{guard.ErrMissingHeader, fasthttp.StatusUnauthorized, "missing_header"},
	{guard.ErrMalformedHeader, fasthttp.StatusUnauthorized, "malformed_header"},
	{guard.ErrTimestampSkew, fasthttp.StatusUnauthorized, "timestamp_skew"},
	{guard.ErrInvalidPublicKey, fasthttp.StatusBadRequest, "invalid_public_key"},
	{guard.ErrInvalidCIDR, fasthttp.StatusBadRequest, "invalid_cidr"},
	{guard.ErrInvalidLifetime, fasthttp.StatusBadRequest, "invalid_lifetime"},
	{guard.ErrInvalidGuardrails, fasthttp.StatusBadRequest, "invalid_guardrails"},

	{ErrBadRequest, fasthttp.StatusBadRequest, "bad_request"},
	{ErrUnauthorized, fasthttp.StatusUnauthorized, "unauthorized"},
	{ErrForbidden, fasthttp.StatusForbidden, "forbidden"},
	{ErrNotFound, fasthttp.StatusNotFound, "not_found"},
	{ErrMethodNotAllowed, fasthttp.StatusMethodNotAllowed, "method_not_allowed"},
	{ErrConflict, fasthttp.StatusConflict, "conflict"},
	{ErrGone, fasthttp.StatusGone, "gone"},
	{ErrBodyTooLarge, fasthttp.StatusRequestEntityTooLarge, "body_too_large"},
	{ErrOverCap, fasthttp.StatusUnprocessableEntity, "over_cap"},
	{ErrLocked, fasthttp.StatusTooManyRequests, "locked"},
	{ErrHeadersTooLarge, fasthttp.StatusRequestHeaderFieldsTooLarge, "headers_too_large"},
}

// statusFor returns the status code and code name for err.
func statusFor(err error) (int, string) {
	for _, e := range statusTable {
		if errors.Is(err, e.kind) {
			return e.status, e.code
		}
	}
	return fasthttp.StatusInternalServerError, "internal"
}

// clientMessage returns the text shown to the client for err. A
// requestError shows its own message; other errors show their text without
// the package prefix. A 500 never shows the cause, which is logged instead,
// except for a root key mismatch: its message names the misconfigured
// node and the fix, and no key material.
func clientMessage(err error, status int) string {
	var re *requestError
	isRequestError := errors.As(err, &re)
	if status == fasthttp.StatusInternalServerError {
		if isRequestError && errors.Is(err, errRootKeyMismatch) {
			return re.msg
		}
		return "Internal server error"
	}
	if isRequestError {
		return re.msg
	}
	msg := err.Error()
	for _, prefix := range []string{"httpapi: ", "guard: ", "fsm: ", "cluster: ", "seal: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}

// diskFullMessage returns the message of a 507: which node's disk rejected
// the write, and that the write was not applied.
func diskFullMessage(err error) string {
	return "The write was not applied: " + strings.TrimPrefix(err.Error(), "cluster: ") +
		". Retry in a moment: in a cluster, leadership moves to a node with space"
}

// errorBody is the JSON of every error response. The machine plane sends
// only "error", because its clients parse exactly that. The admin plane
// adds the request id, and any plane adds "code" for an indeterminate
// commit.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"requestId,omitempty"`
	Code      string `json:"code,omitempty"`
}

// writeError writes err as the response of rc.
func (s *Server) writeError(rc *request, err error) {
	err = s.explainSealFailure(err)
	status, code := statusFor(err)
	if status == fasthttp.StatusInternalServerError {
		s.logger.Error("request failed", "request_id", rc.id, "route", rc.routeName(), "err", err)
	} else {
		s.logger.Debug("request rejected", "request_id", rc.id, "route", rc.routeName(), "status", status, "err", err)
	}

	body := errorBody{Error: clientMessage(err, status)}
	if rc.plane == planeAdmin {
		body.RequestID = rc.id
		body.Code = code
	} else if errors.Is(err, cluster.ErrIndeterminate) {
		body.Code = code
	}

	s.setRetryAfter(rc.ctx, status, err)
	if status == fasthttp.StatusUnauthorized && rc.plane == planeAdmin {
		rc.ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="keyward"`)
	}
	writeJSON(rc.ctx, status, body)
}

// setRetryAfter sets Retry-After on a 503, a 507 or a lockout.
func (s *Server) setRetryAfter(ctx *fasthttp.RequestCtx, status int, err error) {
	switch {
	case status == fasthttp.StatusServiceUnavailable, status == fasthttp.StatusInsufficientStorage:
		ctx.Response.Header.Set("Retry-After", "1")
	case errors.Is(err, ErrLocked):
		seconds := int(s.cfg.Lockout.Duration.Seconds() + 0.999)
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(seconds))
	}
}

// handleTransportError responds to requests that fasthttp could not read: a
// body over MaxBodyBytes is 413, headers over ReadBufferSize are 431, a
// read timeout is 408 and anything else is 400. The request headers may be
// unparsed here, so the body is the machine-plane form unless the path is
// known to be on the admin plane.
func (s *Server) handleTransportError(ctx *fasthttp.RequestCtx, err error) {
	rc := s.newRequest(ctx)
	rc.plane = planeOfPath(ctx.Request.Header.RequestURI())

	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.writeError(rc, fail(ErrBodyTooLarge, "Request body is larger than %d bytes", s.cfg.MaxBodyBytes))
	case errors.As(err, &small):
		s.writeError(rc, fail(ErrHeadersTooLarge, "Request headers are larger than %d bytes", s.cfg.ReadBufferSize))
	case isTimeout(err):
		writeJSON(ctx, fasthttp.StatusRequestTimeout, errorBody{Error: "Request timed out"})
	default:
		s.writeError(rc, fail(ErrBadRequest, "Malformed HTTP request"))
	}
	s.metrics.httpRequests.WithLabelValues(rc.plane.String(), strconv.Itoa(ctx.Response.StatusCode())).Inc()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
