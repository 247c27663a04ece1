package faulttest

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability model: every secret is a register holding a version
// number and a value. See DESIGN.md for why reads during the faults are not
// part of it.

// outcome is what a client learned about an operation.
type outcome int

const (
	// outcomeOK: 2xx; the write took effect with the version in the response.
	outcomeOK outcome = iota
	// outcomeConflict: 409; the state machine rejected the write because the
	// secret's version was not the one the receiving node expected, so it
	// changed nothing.
	outcomeConflict
	// outcomeUnknown: no response, a 5xx or a broken connection after the
	// request was sent, so the write may or may not have taken effect.
	outcomeUnknown
)

func (o outcome) String() string {
	switch o {
	case outcomeOK:
		return "ok"
	case outcomeConflict:
		return "conflict"
	default:
		return "unknown"
	}
}

// registerInput is one operation on a secret.
type registerInput struct {
	secretID string
	write    bool
	value    string // the value written; unused for a read
}

// registerOutput is what the operation returned. version and value are the
// secret's version after a write, or the version and value a read saw.
type registerOutput struct {
	outcome outcome
	version int
	value   string
}

// registerState is one secret's current version and value.
type registerState struct {
	version int
	value   string
}

// secretRegisterModel returns the model of secrets that all start as
// initial. The history is partitioned by secret, because operations on
// different secrets never affect each other.
func secretRegisterModel(initial registerState) porcupine.Model {
	return porcupine.Model{
		Partition: partitionBySecret,
		Init:      func() any { return initial },
		Step: func(state, input, output any) (bool, any) {
			st := state.(registerState)
			in := input.(registerInput)
			out := output.(registerOutput)
			if !in.write {
				return st.version == out.version && st.value == out.value, st
			}
			switch out.outcome {
			case outcomeOK:
				// The write replaced exactly the version before the one it
				// returned: two acknowledged writes never share a version and
				// none is skipped or lost.
				if out.version != st.version+1 {
					return false, st
				}
				return true, registerState{version: out.version, value: in.value}
			case outcomeConflict:
				return true, st
			default:
				// An unknown write that took effect did so as the next
				// version. One that did not take effect is linearized after
				// every other operation, which its infinite return time
				// allows, so this step is the only one needed.
				return true, registerState{version: st.version + 1, value: in.value}
			}
		},
		DescribeOperation: func(input, output any) string {
			in := input.(registerInput)
			out := output.(registerOutput)
			if !in.write {
				return fmt.Sprintf("read %s -> v%d %q", in.secretID, out.version, out.value)
			}
			if out.outcome == outcomeOK {
				return fmt.Sprintf("write %s %q -> v%d", in.secretID, in.value, out.version)
			}
			return fmt.Sprintf("write %s %q -> %s", in.secretID, in.value, out.outcome)
		},
		DescribeState: func(state any) string {
			st := state.(registerState)
			return fmt.Sprintf("v%d %q", st.version, st.value)
		},
	}
}

func partitionBySecret(history []porcupine.Operation) [][]porcupine.Operation {
	bySecret := map[string][]porcupine.Operation{}
	for _, op := range history {
		id := op.Input.(registerInput).secretID
		bySecret[id] = append(bySecret[id], op)
	}
	ids := make([]string, 0, len(bySecret))
	for id := range bySecret {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([][]porcupine.Operation, 0, len(ids))
	for _, id := range ids {
		out = append(out, bySecret[id])
	}
	return out
}

// neverReturned is the return time of an operation whose outcome is
// unknown: it may take effect at any point after its call.
const neverReturned = math.MaxInt64

// history records operations from concurrent clients with times on one
// monotonic clock.
type history struct {
	start time.Time

	mu  sync.Mutex
	ops []porcupine.Operation
}

func newHistory() *history {
	return &history{start: time.Now()}
}

// now returns the time since the history started, in nanoseconds, from the
// monotonic clock.
func (h *history) now() int64 {
	return int64(time.Since(h.start))
}

// add records one operation. An unknown outcome gets an infinite return
// time whatever the client saw.
func (h *history) add(client int, in registerInput, out registerOutput, call, ret int64) {
	if out.outcome == outcomeUnknown {
		ret = neverReturned
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// operations returns a copy of the recorded operations.
func (h *history) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}
