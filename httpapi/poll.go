package httpapi

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
)

// Poll statuses of the machine protocol.
const (
	pollChanged      = "changed"
	pollDeleted      = "deleted"
	pollAccessDenied = "access_denied"
)

// maxWatch bounds the ids in one poll request.
const maxWatch = 1000

// defaultPollTrackerLimit bounds the (machine, secret) pairs whose served
// version a node remembers; at about 100 bytes a pair this is about 100 MB.
const defaultPollTrackerLimit = 1_000_000

type pollKey struct {
	machine fsm.MachineID
	secret  fsm.SecretID
}

// pollTracker remembers, per node, the version of each secret last served
// to each machine, so that a poll with bare ids can tell "changed".
//
// NOTE: the memory is per node and not replicated. A machine that reads on
// one node and polls on another sets a fresh baseline on the second node
// and misses a change made in between; clients that need certainty send
// {"id","version"} objects. When the table is full it is cleared, which
// also only causes missed changes, never false ones.
type pollTracker struct {
	limit int

	mu       sync.Mutex
	versions map[pollKey]int
}

func newPollTracker(limit int) *pollTracker {
	return &pollTracker{limit: limit, versions: make(map[pollKey]int)}
}

// remember records that version of secret was served to machine.
func (t *pollTracker) remember(machine fsm.MachineID, secret fsm.SecretID, version int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.versions) >= t.limit {
		clear(t.versions)
	}
	t.versions[pollKey{machine, secret}] = version
}

// changed records version as served and reports whether it differs from
// the version served before. The first call for a pair reports false.
func (t *pollTracker) changed(machine fsm.MachineID, secret fsm.SecretID, version int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := pollKey{machine, secret}
	prev, seen := t.versions[key]
	if !seen && len(t.versions) >= t.limit {
		clear(t.versions)
	}
	t.versions[key] = version
	return seen && prev != version
}

// watchEntry is one element of "watch": a bare secret id, or an object
// with the version the client holds.
type watchEntry struct {
	ID      string `json:"id"`
	Version *int   `json:"version"`
}

// pollSecrets serves POST /v1/secrets/poll {"watch":[...]}; see the package
// documentation for the meaning of "changed".
func (s *Server) pollSecrets(rc *request, mc *machineCall) error {
	var in struct {
		Watch []json.RawMessage `json:"watch"`
	}
	if err := decodeJSON(mc.body, &in); err != nil {
		return err
	}
	if len(in.Watch) > maxWatch {
		return fail(ErrBadRequest, "watch lists %d ids; send at most %d per poll", len(in.Watch), maxWatch)
	}

	changes := make(map[string]struct {
		Status string `json:"status"`
	})
	for i, raw := range in.Watch {
		w, err := parseWatchEntry(raw, i)
		if err != nil {
			return err
		}
		if status := s.pollStatus(mc, w); status != "" {
			changes[w.ID] = struct {
				Status string `json:"status"`
			}{status}
		}
	}
	writeJSON(rc.ctx, fasthttp.StatusOK, map[string]any{"changes": changes})
	return nil
}

func parseWatchEntry(raw json.RawMessage, i int) (watchEntry, error) {
	var w watchEntry
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &w.ID); err != nil {
			return w, fail(ErrBadRequest, "watch[%d] is not a valid string", i)
		}
	} else {
		if len(raw) == 0 || raw[0] != '{' {
			return w, fail(ErrBadRequest, "watch[%d] must be a secret id or {\"id\",\"version\"}", i)
		}
		if err := decodeObject(raw, &w); err != nil {
			return w, fail(ErrBadRequest, "watch[%d] must be a secret id or {\"id\",\"version\"}: %s", i, clientMessage(err, 0))
		}
	}
	if w.ID == "" {
		return w, fail(ErrBadRequest, "watch[%d] has no secret id", i)
	}
	if len(w.ID) > 64 {
		return w, fail(ErrBadRequest, "watch[%d] id is longer than 64 characters", i)
	}
	return w, nil
}

// pollStatus returns the status of one watched secret, "" when unchanged.
func (s *Server) pollStatus(mc *machineCall, w watchEntry) string {
	if !isSecretID(w.ID) {
		return pollDeleted
	}
	sec, ok := s.sm.Secret(fsm.SecretID(w.ID))
	if !ok || sec.VaultID != mc.machine.VaultID {
		return pollDeleted
	}
	if !canRead(mc.entry, sec) {
		return pollAccessDenied
	}

	if w.Version != nil {
		s.polls.remember(mc.machine.ID, sec.ID, sec.Version)
		if *w.Version != sec.Version {
			return pollChanged
		}
		return ""
	}
	if s.polls.changed(mc.machine.ID, sec.ID, sec.Version) {
		return pollChanged
	}
	return ""
}
