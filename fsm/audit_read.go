package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Query limits.
const (
	// DefaultAuditLimit is the page size of a query without a limit.
	DefaultAuditLimit = 100
	// MaxAuditLimit is the largest page a query returns.
	MaxAuditLimit = 1_000
	// DefaultAuditScan bounds how many entries one query examines, so a
	// filter that matches little cannot make one request read the whole
	// log. The page then ends early with a cursor to continue from.
	DefaultAuditScan = 50_000
)

// AuditQuery selects entries of one vault. Every set filter must match.
// Entries come newest first unless Ascending is set. Cursor continues a
// previous page: only entries after it in the chosen order are returned.
type AuditQuery struct {
	VaultID   VaultID
	Actions   []string
	Severity  string
	MachineID MachineID
	SecretID  SecretID
	SourceIP  string
	// Since and Until bound the entry's Timestamp in Unix milliseconds,
	// inclusive; zero leaves that side open.
	Since, Until int64
	// Text matches, ignoring case, the action, detail, ids, source address
	// or the JSON of the fields.
	Text      string
	Limit     int
	Cursor    uint64
	Ascending bool
	// MaxScan bounds the entries examined; zero means DefaultAuditScan.
	MaxScan int
}

// AuditPage is one page of a query. NextCursor is zero when no entry is
// left; otherwise it is passed as the next query's Cursor.
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextCursor uint64       `json:"nextCursor,omitempty"`
}

// QueryAudit returns a page of a vault's entries from a consistent Pebble
// snapshot.
func (f *FSM) QueryAudit(q AuditQuery) (AuditPage, error) {
	if f.closed.Load() {
		return AuditPage{}, errClosed
	}
	q = q.withDefaults()
	snap := f.db.NewSnapshot()
	defer snap.Close()

	iter, err := snap.NewIter(q.bounds())
	if err != nil {
		return AuditPage{}, fmt.Errorf("audit query: %w", err)
	}
	defer iter.Close()
	return q.collect(snap, iter)
}

func (q AuditQuery) withDefaults() AuditQuery {
	if q.Limit <= 0 {
		q.Limit = DefaultAuditLimit
	}
	q.Limit = min(q.Limit, MaxAuditLimit)
	if q.MaxScan <= 0 {
		q.MaxScan = DefaultAuditScan
	}
	q.Text = strings.ToLower(q.Text)
	return q
}

// bounds limits the bucket scan to the side of the cursor being read.
func (q AuditQuery) bounds() *pebble.IterOptions {
	prefix := auditBucketPrefix(q.VaultID)
	opts := &pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: []byte(prefixEnd(prefix))}
	if q.Cursor == 0 {
		return opts
	}
	if q.Ascending {
		opts.LowerBound = []byte(auditBucketKey(q.VaultID, q.Cursor+1))
	} else {
		opts.UpperBound = []byte(auditBucketKey(q.VaultID, q.Cursor))
	}
	return opts
}

// collect walks the bucket in the query's order, keeping matches until the
// page is full, and then looks for one more match to decide NextCursor.
func (q AuditQuery) collect(r pebble.Reader, iter *pebble.Iterator) (AuditPage, error) {
	page := AuditPage{Entries: []AuditEntry{}}
	start, next := iter.Last, iter.Prev
	if q.Ascending {
		start, next = iter.First, iter.Next
	}
	scanned := 0
	var lastSeq uint64
	for ok := start(); ok; ok = next() {
		seq, _ := seqOfKey(iter.Key())
		if scanned == q.MaxScan {
			page.NextCursor = lastSeq
			return page, nil
		}
		scanned++
		e, err := readEntry(r, seq)
		if err != nil {
			return AuditPage{}, err
		}
		if !q.matches(e) {
			lastSeq = seq
			continue
		}
		if len(page.Entries) == q.Limit {
			page.NextCursor = lastSeq
			return page, nil
		}
		page.Entries = append(page.Entries, *e)
		lastSeq = seq
	}
	return page, iter.Error()
}

func (q AuditQuery) matches(e *AuditEntry) bool {
	switch {
	case len(q.Actions) > 0 && !slices.Contains(q.Actions, e.Action),
		q.Severity != "" && e.Severity != q.Severity,
		q.MachineID != "" && e.MachineID != q.MachineID,
		q.SecretID != "" && e.SecretID != q.SecretID,
		q.SourceIP != "" && e.SourceIP != q.SourceIP,
		q.Since != 0 && e.Timestamp < q.Since,
		q.Until != 0 && e.Timestamp > q.Until:
		return false
	}
	return q.Text == "" || entryContains(e, q.Text)
}

// entryContains reports whether lowered text occurs in a searchable field.
func entryContains(e *AuditEntry, text string) bool {
	for _, s := range []string{e.Action, e.Detail, string(e.MachineID), string(e.SecretID), e.SourceIP, e.ActorID} {
		if strings.Contains(strings.ToLower(s), text) {
			return true
		}
	}
	return bytes.Contains(bytes.ToLower(e.Fields), []byte(text))
}

func readEntry(r pebble.Reader, seq uint64) (*AuditEntry, error) {
	var e AuditEntry
	found, err := getJSON(r, auditKey(seq), &e)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("audit index names entry %d, which is missing", seq)
	}
	return &e, nil
}

// AuditAfter returns up to limit entries with a sequence above after, in
// order. An empty vault reads every entry of the cluster, whatever its
// vault. The live tail and alert delivery read with it.
func (f *FSM) AuditAfter(vault VaultID, after uint64, limit int) ([]AuditEntry, error) {
	if f.closed.Load() {
		return nil, errClosed
	}
	snap := f.db.NewSnapshot()
	defer snap.Close()
	if vault == "" {
		return entriesAfter(snap, after, limit)
	}
	page, err := AuditQuery{VaultID: vault, Cursor: after, Ascending: true, Limit: limit}.withDefaults().
		collectFrom(snap)
	return page.Entries, err
}

func (q AuditQuery) collectFrom(snap *pebble.Snapshot) (AuditPage, error) {
	iter, err := snap.NewIter(q.bounds())
	if err != nil {
		return AuditPage{}, fmt.Errorf("audit read: %w", err)
	}
	defer iter.Close()
	return q.collect(snap, iter)
}

func entriesAfter(r pebble.Reader, after uint64, limit int) ([]AuditEntry, error) {
	iter, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte(auditKey(after + 1)),
		UpperBound: []byte(prefixEnd(prefixAudit)),
	})
	if err != nil {
		return nil, fmt.Errorf("audit read: %w", err)
	}
	defer iter.Close()
	out := []AuditEntry{}
	for iter.First(); iter.Valid() && len(out) < limit; iter.Next() {
		var e AuditEntry
		if err := json.Unmarshal(iter.Value(), &e); err != nil {
			return nil, fmt.Errorf("decode %s: %w", iter.Key(), err)
		}
		out = append(out, e)
	}
	return out, iter.Error()
}

// AlertSettings returns a vault's audit and alert settings, the defaults
// when it has set none.
func (f *FSM) AlertSettings(vault VaultID) (*AlertSettings, error) {
	s := &AlertSettings{VaultID: vault, Email: EmailAlerts{To: []string{}, Actions: []string{}}}
	if f.closed.Load() {
		return nil, errClosed
	}
	if _, err := getJSON(f.db, alertSettingsKey(vault), s); err != nil {
		return nil, err
	}
	return s, nil
}

// Webhooks returns the webhooks of a vault sorted by id; an empty vault
// returns every webhook of the cluster, sorted by vault and id.
func (f *FSM) Webhooks(vault VaultID) ([]*Webhook, error) {
	if f.closed.Load() {
		return nil, errClosed
	}
	prefix := prefixWebhook
	if vault != "" {
		prefix = webhookPrefix(vault)
	}
	var out []*Webhook
	err := scanPrefix(f.db, prefix, func(key, value []byte) error {
		var w Webhook
		if err := json.Unmarshal(value, &w); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		out = append(out, &w)
		return nil
	})
	return out, err
}

// Webhook returns one webhook of a vault.
func (f *FSM) Webhook(vault VaultID, id string) (*Webhook, bool, error) {
	if f.closed.Load() {
		return nil, false, errClosed
	}
	var w Webhook
	found, err := getJSON(f.db, webhookKey(vault, id), &w)
	if err != nil || !found {
		return nil, false, err
	}
	return &w, true, nil
}

// Deliveries returns the newest limit delivery records of a webhook,
// newest first.
func (f *FSM) Deliveries(webhookID string, limit int) ([]DeliveryRecord, error) {
	if f.closed.Load() {
		return nil, errClosed
	}
	prefix := deliveryPrefix(webhookID)
	iter, err := f.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix), UpperBound: []byte(prefixEnd(prefix))})
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer iter.Close()
	out := []DeliveryRecord{}
	for iter.Last(); iter.Valid() && len(out) < limit; iter.Prev() {
		var r DeliveryRecord
		if err := json.Unmarshal(iter.Value(), &r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", iter.Key(), err)
		}
		out = append(out, r)
	}
	return out, iter.Error()
}

// ExpiryWarningsSent returns the expiry for which warnings were written
// for a machine and their offsets; zero and nil when none were.
func (f *FSM) ExpiryWarningsSent(id MachineID) (int64, []int64) {
	if f.closed.Load() {
		return 0, nil
	}
	var rec expiryWarningRecord
	if found, err := getJSON(f.db, expiryWarningKey(id), &rec); err != nil || !found {
		return 0, nil
	}
	return rec.ExpiresAt, rec.Sent
}
