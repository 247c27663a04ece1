package audit

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/fsm"
)

// Event is one auditable occurrence seen by a node, such as a secret read
// or a blocked request. Every field is owned by the event: callers build
// it from copies, never from request buffers that are reused later.
type Event struct {
	Action    string
	Severity  string
	ActorKind string
	ActorID   string
	VaultID   string
	MachineID string
	SecretID  string
	SourceIP  string
	Detail    string
	// Fields is a JSON object of structured details, or nil.
	Fields json.RawMessage
	// Axes names the failing guardrail axes with their reasons, for
	// example "country:country_not_allowed,ip:not_in_allowlist". It is part
	// of the coalescing key; observed values are not, because the time of
	// day changes with every request.
	Axes string
	// Time is when the event happened; zero means the Recorder's clock.
	Time time.Time
	// Unverified marks a request rejected before its signature was
	// verified, such as a guardrail block of a throttled machine and
	// source. It is not part of the coalescing key: the entry's
	// "unverified" field counts how many of its events had it.
	Unverified bool
}

// coalesceKey is the identity of an event for coalescing: two events with
// the same key are repeats.
type coalesceKey struct {
	action, machine, secret, source, axes, vault string
}

func (e *Event) key() coalesceKey {
	return coalesceKey{e.Action, e.MachineID, e.SecretID, e.SourceIP, e.Axes, e.VaultID}
}

// entry converts the event to an entry covering count events from first
// to e.Time, with bounded and valid fields.
func (e *Event) entry(node string, first time.Time, count int64) fsm.AuditEntry {
	en := fsm.AuditEntry{
		Action:    e.Action,
		Severity:  e.Severity,
		ActorKind: e.ActorKind,
		ActorID:   clipRef(e.ActorID),
		VaultID:   fsm.VaultID(e.VaultID),
		MachineID: fsm.MachineID(clipRef(e.MachineID)),
		SecretID:  fsm.SecretID(clipRef(e.SecretID)),
		SourceIP:  clipRef(e.SourceIP),
		Detail:    clipText(e.Detail, fsm.MaxAuditDetailChars),
		Fields:    e.Fields,
		Count:     count,
		FirstAt:   first.UnixMilli(),
		Timestamp: e.Time.UnixMilli(),
		Node:      clipRef(node),
	}
	if len(en.Fields) > fsm.MaxAuditFieldsBytes {
		en.Fields = json.RawMessage(`{"truncated":true}`)
	}
	if en.FirstAt > en.Timestamp {
		en.FirstAt = en.Timestamp
	}
	return en
}

// withUnverified returns fields with "unverified" set to n, or fields as
// they are when n is zero. Fields that are not a JSON object become an
// object with "unverified" alone, so the count is never lost.
func withUnverified(fields json.RawMessage, n int64) json.RawMessage {
	if n == 0 {
		return fields
	}
	var obj map[string]json.RawMessage
	if len(fields) == 0 || json.Unmarshal(fields, &obj) != nil || obj == nil {
		obj = map[string]json.RawMessage{}
	}
	obj["unverified"] = json.RawMessage(strconv.FormatInt(n, 10))
	out, err := json.Marshal(obj)
	if err != nil {
		return json.RawMessage(`{"unverified":` + strconv.FormatInt(n, 10) + `}`)
	}
	return out
}

// clipRef keeps an identifier within the log's bounds: printable ASCII
// without spaces, at most fsm.MaxAuditRefBytes. Anything else is replaced,
// since the value came from a client and only serves to identify it.
func clipRef(s string) string {
	if len(s) > fsm.MaxAuditRefBytes {
		s = s[:fsm.MaxAuditRefBytes]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}

// clipText keeps valid UTF-8 of at most max characters.
func clipText(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max])
}
