package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/fsm"
)

// headerIdempotencyKey names the header with which a client makes a write
// safe to retry: the same key, command type and caller give the same
// command request id, and the state machine applies it once.
const headerIdempotencyKey = "Idempotency-Key"

const maxIdempotencyKeyLength = 128

// proposal is one command to apply through Raft.
type proposal struct {
	typ     fsm.CommandType
	actor   fsm.Actor
	payload any
	// fresh ignores Idempotency-Key. Commands that carry a newly generated
	// secret (a token) set it: replaying an earlier entry would return that
	// entry's result while this request shows a token that was never
	// stored.
	fresh bool
}

// propose encodes p and applies it through the cluster, which forwards it
// to the leader. The payload is marshalled here into a new byte slice from
// values that are already copies, so the command holds no fasthttp buffer.
// The command's Time is the request's clock reading, the same instant that
// any expiry in the payload was computed from. A node whose root key
// differs from the cluster's proposes nothing and returns 503.
func (s *Server) propose(rc *request, p proposal) (*fsm.Response, error) {
	if err := s.checkRootKey(); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(p.payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", p.typ, err)
	}
	requestID, err := s.commandRequestID(rc, p)
	if err != nil {
		return nil, err
	}

	cmd := &fsm.Command{
		Type:      p.typ,
		RequestID: requestID,
		Time:      rc.now.UnixMilli(),
		Node:      s.nodeID,
		Actor:     p.actor,
		Payload:   payload,
	}
	if strings.HasPrefix(requestID, idempotencyPrefix) {
		cmd.RequestHash = requestFingerprint(rc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
	defer cancel()

	resp, err := s.applyCommand(ctx, rc, p, cmd)
	if err != nil {
		return nil, applyError(err, s.cfg.ApplyTimeout)
	}
	if err := resp.Err(); err != nil {
		msg := resp.Message
		if msg == "" {
			msg = clientMessage(err, 0)
		}
		return nil, &requestError{kind: err, msg: msg}
	}
	return resp, nil
}

// commandRequestID returns the request id of a command: derived from the
// client's Idempotency-Key when one was sent, else the response's
// X-Request-Id.
func (s *Server) commandRequestID(rc *request, p proposal) (string, error) {
	values := rc.ctx.Request.Header.PeekAll(headerIdempotencyKey)
	if p.fresh || len(values) == 0 {
		return rc.id, nil
	}
	if len(values) > 1 {
		return "", fail(ErrBadRequest, "%s sent %d times; send it once", headerIdempotencyKey, len(values))
	}
	key := string(values[0]) // copy
	if len(key) == 0 || len(key) > maxIdempotencyKeyLength || !isPrintableASCII(key) {
		return "", fail(ErrBadRequest, "%s must be 1 to %d printable ASCII characters", headerIdempotencyKey, maxIdempotencyKeyLength)
	}
	return idempotencyPrefix + string(p.typ) + ":" + p.actor.ID + ":" + key, nil
}

// idempotencyPrefix starts the request id derived from an Idempotency-Key.
const idempotencyPrefix = "idem:"

// requestFingerprint hashes the method, path and body of the client's
// request. The body is the client's, not the command payload, because a
// retried create carries newly generated ids in its payload.
func requestFingerprint(rc *request) string {
	h := sha256.New()
	h.Write(rc.ctx.Method())
	h.Write([]byte{' '})
	h.Write([]byte(rc.path))
	h.Write([]byte{'\n'})
	h.Write(rc.ctx.PostBody())
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// applyError gives a Raft failure a message with the client's next step.
// The error kind still decides the status.
func applyError(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, cluster.ErrNoLeader):
		return &requestError{kind: err, msg: "No cluster leader is available; retry in a moment"}
	case errors.Is(err, cluster.ErrIndeterminate):
		return &requestError{kind: err, msg: "The write may or may not have been applied because leadership changed; retry with the same Idempotency-Key"}
	case errors.Is(err, context.DeadlineExceeded):
		return &requestError{kind: err, msg: "The write did not complete within " + timeout.String() + "; retry with the same Idempotency-Key"}
	case errors.Is(err, cluster.ErrDiskFull):
		return &requestError{kind: err, msg: diskFullMessage(err)}
	}
	return fmt.Errorf("apply command: %w", err)
}

// decodeResponse decodes the JSON body of a command response into v.
func decodeResponse(resp *fsm.Response, v any) error {
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return fmt.Errorf("decode command response: %w", err)
	}
	return nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// writeCreated writes a JSON 201 response.
func writeCreated(rc *request, v any) error {
	writeJSON(rc.ctx, fasthttp.StatusCreated, v)
	return nil
}

// writeOK writes a JSON 200 response, with the confirmation of a
// security-critical write added (see withConfirmation).
func writeOK(rc *request, v any) error {
	writeJSON(rc.ctx, fasthttp.StatusOK, withConfirmation(rc, v))
	return nil
}
