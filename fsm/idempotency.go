package fsm

import (
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// MaxRequestIDBytes bounds Command.RequestID.
const MaxRequestIDBytes = 128

// pruneStepMs is the granularity of the idempotency prune cutoff. Moving
// the cutoff in whole minutes means one range scan per minute of command
// time rather than one per command.
const pruneStepMs = 60_000

// requestRecord is the first response to a request id, kept so that a
// retried command returns it instead of applying again.
type requestRecord struct {
	Time        int64     `json:"time"`
	Index       uint64    `json:"index"`
	Response    *Response `json:"response"`
	RequestHash string    `json:"requestHash,omitempty"`
}

// request returns the record of a request id, reading through the batch so
// that a duplicate inside one batch finds the first.
func (t *tx) request(id string) (*requestRecord, bool) {
	raw, ok := t.get(requestKey(id))
	if !ok {
		return nil, false
	}
	var rec requestRecord
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Response == nil {
		panic(fmt.Sprintf("fsm: idempotency record %q is corrupt: %v (replicas would diverge)", id, err))
	}
	return &rec, true
}

// replay returns the response a repeated request id gets: the first
// response, or a conflict when both commands carry a request hash and
// the hashes differ.
func (rec *requestRecord) replay(cmd *Command) *Response {
	if rec.RequestHash != "" && cmd.RequestHash != "" && rec.RequestHash != cmd.RequestHash {
		return &Response{
			Code: CodeConflict,
			Message: fmt.Sprintf("request id %q was already used for a different request; "+
				"use a new idempotency key for a new write", cmd.RequestID),
		}
	}
	return rec.Response
}

// recordRequest stores the response of cmd under its request id, with a
// time-ordered key for pruning.
func (t *tx) recordRequest(cmd *Command, index uint64, resp *Response) {
	rec := requestRecord{Time: cmd.Time, Index: index, Response: resp, RequestHash: cmd.RequestHash}
	t.mustSet(requestKey(cmd.RequestID), mustJSON(rec))
	t.mustSet(requestTimeKey(cmd.Time, cmd.RequestID), nil)
}

// prune drops idempotency records older than window before the command
// time now. The cutoff only moves forward and is part of the replicated
// state, so every replica deletes the same records at the same entry even
// when command times are not monotonic or a replica restarted in between.
func (t *tx) prune(now, windowMs int64) {
	cutoff := now - windowMs
	cutoff -= cutoff % pruneStepMs
	if cutoff <= t.pruneCutoff {
		return
	}

	iter, err := t.batch.NewIter(&pebble.IterOptions{
		LowerBound: []byte(prefixRequestTime),
		UpperBound: []byte(requestTimeBound(cutoff)),
	})
	if err != nil {
		panic(fmt.Sprintf("fsm: open prune iterator: %v (replicas would diverge)", err))
	}
	var expired []string
	for iter.First(); iter.Valid(); iter.Next() {
		expired = append(expired, string(iter.Key()))
	}
	if err := iter.Close(); err != nil {
		panic(fmt.Sprintf("fsm: prune scan: %v (replicas would diverge)", err))
	}

	for _, key := range expired {
		if id, ok := parseRequestTimeKey(key); ok {
			t.mustDelete(requestKey(id))
		}
		t.mustDelete(key)
	}
	t.pruneCutoff = cutoff
	t.mustSet(keyRequestPrune, mustJSON(pruneRecord{Cutoff: cutoff}))
}
