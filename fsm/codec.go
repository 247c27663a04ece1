package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxCommandBytes bounds an encoded command. The largest legitimate command
// is a secret create or update with a 12 KiB value, or an expiry sweep
// naming MaxExpireBatch machines; 1 MiB leaves ample room for both.
const MaxCommandBytes = 1 << 20

// EncodeCommand returns the log entry bytes of c: its JSON encoding. It
// rejects a command without a type or time, or one over MaxCommandBytes.
func EncodeCommand(c *Command) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil command", ErrInvalid)
	}
	if err := checkEnvelope(c); err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", c.Type, err)
	}
	if len(b) > MaxCommandBytes {
		return nil, fmt.Errorf("%w: %s command is %d bytes, limit %d", ErrInvalid, c.Type, len(b), MaxCommandBytes)
	}
	return b, nil
}

// DecodeCommand parses log entry bytes made by EncodeCommand. It rejects
// input over MaxCommandBytes, malformed JSON, trailing data, and an
// envelope without a type or time. The payload is checked by Apply.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) > MaxCommandBytes {
		return nil, fmt.Errorf("%w: command is %d bytes, limit %d", ErrInvalid, len(b), MaxCommandBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var c Command
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: decode command: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: decode command: trailing data after the JSON object", ErrInvalid)
	}
	if err := checkEnvelope(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// checkEnvelope validates the fields that every command carries.
func checkEnvelope(c *Command) error {
	if c.Type == "" {
		return fmt.Errorf("%w: command type is empty", ErrInvalid)
	}
	if c.Time <= 0 {
		return fmt.Errorf("%w: command time %d is not a positive Unix millisecond value", ErrInvalid, c.Time)
	}
	if len(c.RequestID) > MaxRequestIDBytes {
		return fmt.Errorf("%w: request id is %d bytes, limit %d", ErrInvalid, len(c.RequestID), MaxRequestIDBytes)
	}
	return nil
}

// NewCommand builds a command with payload encoded as JSON, for proposers.
func NewCommand(typ CommandType, timeMs int64, actor Actor, payload any) (*Command, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return &Command{Type: typ, Time: timeMs, Actor: actor, Payload: raw}, nil
}

// decodePayload parses a command payload strictly: unknown fields are an
// error, so a misspelt field never silently becomes a zero value.
func decodePayload(c *Command, into any) error {
	if len(c.Payload) == 0 {
		return rejectf(ErrInvalid, "%s command has no payload", c.Type)
	}
	dec := json.NewDecoder(bytes.NewReader(c.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return rejectf(ErrInvalid, "%s payload: %v", c.Type, err)
	}
	if dec.More() {
		return rejectf(ErrInvalid, "%s payload: trailing data after the JSON object", c.Type)
	}
	return nil
}
