package fsm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// Record kinds of the audit keyspaces. None is indexed in memory, so
// publish ignores them.
const (
	kindAuditEntry recordKind = 100 + iota
	kindAuditMeta
	kindAlertSettings
	kindWebhook
	kindDelivery
	kindExpiryWarning
)

// auditNamespace derives the UUIDs of entries that Apply writes itself,
// so every replica gives an entry the same UUID without randomness.
var auditNamespace = uuid.MustParse("6b2f1f7e-3c56-4f0e-9a43-8d1b5c2e7a10")

// auditSeqRecord is the value stored at keyAuditSeq.
type auditSeqRecord struct {
	Last uint64 `json:"last"`
}

// auditFeed notifies readers when new audit entries are committed. Waiters
// take the current channel and wait for it to close. Each commit that adds
// entries closes it and makes a new one.
type auditFeed struct {
	last atomic.Uint64

	mu sync.Mutex
	ch chan struct{}
}

func (a *auditFeed) wait() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil {
		a.ch = make(chan struct{})
	}
	return a.ch
}

// publish records the last sequence and wakes every waiter. A restore may
// move the sequence back, which wakes waiters as well.
func (a *auditFeed) publish(last uint64) {
	if a.last.Swap(last) == last {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch != nil {
		close(a.ch)
		a.ch = nil
	}
}

// readAuditSeq reads the last assigned sequence from r.
func readAuditSeq(r pebble.Reader) (uint64, error) {
	var rec auditSeqRecord
	if _, err := getJSON(r, keyAuditSeq, &rec); err != nil {
		return 0, err
	}
	return rec.Last, nil
}

// AuditSeq returns the sequence of the last committed audit entry, 0 when
// there is none.
func (f *FSM) AuditSeq() uint64 {
	return f.audit.last.Load()
}

// AuditChanged returns a channel that is closed when audit entries after
// the current AuditSeq are committed (or a restore replaces the log). Read
// AuditSeq after taking the channel to avoid missing a commit.
func (f *FSM) AuditChanged() <-chan struct{} {
	return f.audit.wait()
}

// publishAuditSeq notifies readers of the entries a batch committed.
func (f *FSM) publishAuditSeq(t *tx) {
	c, ok := t.pending[keyAuditSeq]
	if !ok {
		return
	}
	var rec auditSeqRecord
	if err := json.Unmarshal(c.value, &rec); err != nil {
		panic(fmt.Sprintf("fsm: decode %s: %v (replicas would diverge)", keyAuditSeq, err))
	}
	f.audit.publish(rec.Last)
}

// lastAuditSeq reads the last assigned sequence through the command's
// staged writes, the batch and the store.
func (t *tx) lastAuditSeq() uint64 {
	raw, ok := t.rawValue(keyAuditSeq)
	if !ok {
		return 0
	}
	var rec auditSeqRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		panic(fmt.Sprintf("fsm: decode %s: %v (replicas would diverge)", keyAuditSeq, err))
	}
	return rec.Last
}

// rawValue returns the newest value of key as the current command reads it.
func (t *tx) rawValue(key string) ([]byte, bool) {
	if c, ok := t.staged[key]; ok {
		if c.deleted {
			return nil, false
		}
		return c.value, true
	}
	return t.get(key)
}

// appendAudit assigns the next sequences to entries, in order, and stages
// them with their vault index. The caller has validated the entries.
func (t *tx) appendAudit(entries ...*AuditEntry) {
	if len(entries) == 0 {
		return
	}
	seq := t.lastAuditSeq()
	for _, e := range entries {
		seq++
		e.ID = seq
		if e.UUID == "" {
			name := strconv.FormatUint(seq, 10) + "|" + strconv.FormatInt(e.Timestamp, 10) + "|" + e.Action
			e.UUID = uuid.NewSHA1(auditNamespace, []byte(name)).String()
		}
		t.stage(kindAuditEntry, auditKey(seq), "", e, nil)
		t.stageChange(&change{key: auditBucketKey(e.VaultID, seq), kind: kindAuditEntry, value: []byte{}})
	}
	t.stage(kindAuditMeta, keyAuditSeq, "", auditSeqRecord{Last: seq}, nil)
}

// systemEntry starts an entry that Apply writes for cmd: actor and source
// from the command, time and node from the envelope. appendAudit gives it
// a UUID derived from its sequence.
func systemEntry(c *Command, action, severity string) *AuditEntry {
	actorKind, source := c.Actor.Kind, c.Actor.SourceIP
	if actorKind == "" {
		actorKind = ActorSystem
	}
	if actorKind == ActorSystem && source == "" {
		source = SourceSystem
	}
	return &AuditEntry{
		Action:    action,
		Severity:  severity,
		ActorKind: actorKind,
		ActorID:   c.Actor.ID,
		SourceIP:  source,
		Count:     1,
		FirstAt:   c.Time,
		Timestamp: c.Time,
		Node:      c.Node,
	}
}

// fieldsJSON encodes the structured fields of an entry. Struct and map
// encodings are deterministic (map keys are sorted).
func fieldsJSON(v any) json.RawMessage {
	return mustJSON(v)
}
