package fsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/hashicorp/raft"
)

// Compile-time checks that FSM is what hashicorp/raft drives.
var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// FSM is Keyward's replicated state machine: Raft log entries in, Pebble
// records and in-memory indexes out.
//
// Apply, ApplyBatch, Snapshot and Restore are called by one goroutine at a
// time (hashicorp/raft's FSM goroutine) and serialise on an internal lock
// as well. The read methods are safe to call from any number of goroutines
// at any time and never touch the disk, except SecretVersions.
type FSM struct {
	cfg Config
	log *slog.Logger
	db  *pebble.DB
	// st guards the store reads of the indexes against Close.
	st *store
	// opts are the options db was opened with, defaults filled in. Restore
	// writes its tables with them.
	opts *pebble.Options

	// idx is swapped whole by Restore.
	idx atomic.Pointer[indexes]
	// applied is the index of the last applied entry, for AppliedIndex.
	applied atomic.Uint64
	// appliedSignal is closed, and replaced by a new channel, each time
	// applied changes, so that WaitApplied sleeps until then.
	appliedSignal atomic.Pointer[chan struct{}]

	// applyMu serialises the calls that change state.
	applyMu sync.Mutex
	// appliedTerm is the term of the last applied entry.
	appliedTerm uint64
	// pruneCutoff is the committed idempotency prune cutoff.
	pruneCutoff int64

	// closed is set by Close; later calls fail instead of reaching a
	// closed Pebble.
	closed atomic.Bool

	// audit tells readers of the audit log about new entries.
	audit auditFeed

	// rootKey records the outcome of VerifyRootKey.
	rootKey rootKeyState
}

// appliedRecord is the value stored at keyApplied.
type appliedRecord struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// pruneRecord is the value stored at keyRequestPrune.
type pruneRecord struct {
	Cutoff int64 `json:"cutoff"`
}

// Open opens or creates the Pebble store under cfg.Dir and loads the
// indexes from it. A zero IdempotencyWindow means the default.
func Open(cfg Config, logger *slog.Logger) (*FSM, error) {
	if cfg.IdempotencyWindow == 0 {
		cfg.IdempotencyWindow = DefaultConfig().IdempotencyWindow
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "fsm")

	opts := pebbleOptions(cfg, logger)
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble at %s: %w", cfg.Dir, err)
	}

	f := &FSM{cfg: cfg, log: logger, db: db, opts: opts, st: &store{db: db, log: logger}}
	signal := make(chan struct{})
	f.appliedSignal.Store(&signal)
	if err := f.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("load state from %s: %w", cfg.Dir, err)
	}
	logger.Info("state loaded", "dir", cfg.Dir, "index", f.applied.Load())
	return f, nil
}

// Close closes the store. Index reads after Close return what the indexes
// held, SecretVersions, Checksum, Snapshot and Restore fail, and Apply
// panics. Close must not run concurrently with SecretVersions or Checksum.
func (f *FSM) Close() error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if f.closed.Swap(true) {
		return nil
	}
	f.st.close()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("close pebble at %s: %w", f.cfg.Dir, err)
	}
	return nil
}

// blockCacheBytes is the size of Pebble's block cache. Apply reads Pebble
// for most commands (the idempotency record of its request id, secret
// versions), and most of those reads miss. A miss costs only bloom filter
// checks as long as the index and filter blocks of every table stay
// cached. With Pebble's default of 8 MiB they did not in the write
// benchmarks (BenchmarkApply_SecretUpdates in package cluster), and each
// miss read index blocks from disk. Cgo builds allocate the cache outside
// the Go heap, and it fills only as blocks are read.
const blockCacheBytes = 64 << 20

// bloomBitsPerKey sizes the bloom filter of each table: 10 bits per key
// gives about 1% false positives.
const bloomBitsPerKey = 10

// pebbleOptions returns the options of the FSM's store, with Pebble's
// defaults filled in. Every level has a bloom filter because apply's
// lookups of new request ids always miss, and without filters each miss
// searches one table per level (and every L0 table) down to a data block.
// The format must allow excise, which Restore uses to replace the whole
// store in one step; Open upgrades a store written in an older format.
func pebbleOptions(cfg Config, logger *slog.Logger) *pebble.Options {
	opts := &pebble.Options{
		FS:                 cfg.FS,
		Logger:             pebbleLogger{logger},
		CacheSize:          blockCacheBytes,
		FormatMajorVersion: pebble.FormatVirtualSSTables,
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	}
	opts.EnsureDefaults()
	return opts
}

// AppliedIndex returns the index of the last applied log entry.
func (f *FSM) AppliedIndex() uint64 {
	return f.applied.Load()
}

// WaitApplied blocks until the applied index reaches index or ctx ends,
// and reports whether it reached it. It wakes on each commit instead of
// polling, so a caller that waits for its own write returns as soon as
// the batch holding it commits.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) bool {
	for {
		// Load the signal before the index: a commit that lands between
		// the two closes this signal, so the wait below cannot miss it.
		signal := *f.appliedSignal.Load()
		if f.applied.Load() >= index {
			return true
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return f.applied.Load() >= index
		}
	}
}

// setApplied publishes a new applied index and wakes WaitApplied callers.
func (f *FSM) setApplied(index uint64) {
	f.applied.Store(index)
	next := make(chan struct{})
	close(*f.appliedSignal.Swap(&next))
}

// newIndexes returns empty indexes that read machines from f's store.
func (f *FSM) newIndexes() *indexes {
	return newIndexes(f.st, f.cfg.MachineCacheEntries)
}

// load reads the applied index, the prune cutoff and every indexed record.
func (f *FSM) load() error {
	var applied appliedRecord
	if _, err := getJSON(f.db, keyApplied, &applied); err != nil {
		return err
	}
	var prune pruneRecord
	if _, err := getJSON(f.db, keyRequestPrune, &prune); err != nil {
		return err
	}

	if err := ensureMachineIndex(f.db); err != nil {
		return fmt.Errorf("build the machine index: %w", err)
	}
	idx, err := loadIndexes(f.db, f.newIndexes())
	if err != nil {
		return err
	}
	auditSeq, err := readAuditSeq(f.db)
	if err != nil {
		return err
	}
	f.audit.publish(auditSeq)
	f.idx.Store(idx)
	f.applied.Store(applied.Index)
	f.appliedTerm = applied.Term
	f.pruneCutoff = prune.Cutoff
	return nil
}

// Apply applies one log entry. See ApplyBatch.
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies entries in order and commits their effects, with the
// index and term of the last one, in a single Pebble batch. It returns one
// *Response per entry, never nil.
//
// The batch is committed without fsync: the Raft log is the durability
// point, and an entry lost from Pebble by a crash is applied again when
// Raft replays its log. Entries at or below the applied index are not
// applied again: a command with a request id returns its stored response,
// and any other returns the code already_applied.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if f.closed.Load() {
		panic("fsm: apply after Close (the entry would be lost and replicas would diverge)")
	}

	out := make([]interface{}, len(logs))
	t := newTx(f.db, f.idx.Load(), f.pruneCutoff)
	defer t.close()

	applied, term := f.applied.Load(), f.appliedTerm
	for i, l := range logs {
		if l == nil {
			out[i] = &Response{}
			continue
		}
		if l.Index <= applied {
			out[i] = f.replayedResponse(t, l, applied)
			continue
		}
		out[i] = f.applyLog(t, l)
		applied, term = l.Index, l.Term
	}

	if applied == f.applied.Load() {
		return out
	}
	f.commit(t, applied, term)
	return out
}

// commit writes the applied index, commits the batch and then publishes
// its changes to the indexes. A failed commit panics: the entries are
// committed in the Raft log, and carrying on without them would diverge
// this replica from the others. Raft applies them again after a restart.
func (f *FSM) commit(t *tx, index, term uint64) {
	t.mustSet(keyApplied, mustJSON(appliedRecord{Index: index, Term: term}))
	if err := t.batch.Commit(pebble.NoSync); err != nil {
		panic(fmt.Sprintf("fsm: commit entries up to index %d: %v (replicas would diverge)", index, err))
	}

	for _, c := range t.order {
		t.idx.publish(c)
	}
	f.appliedTerm = term
	f.pruneCutoff = t.pruneCutoff
	f.setApplied(index)
	f.publishAuditSeq(t)
}

// applyLog applies one entry inside t.
func (f *FSM) applyLog(t *tx, l *raft.Log) *Response {
	if l.Type != raft.LogCommand {
		return &Response{}
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		return &Response{Code: CodeInvalid, Message: err.Error()}
	}

	t.prune(cmd.Time, f.cfg.IdempotencyWindow.Milliseconds())
	if cmd.RequestID != "" {
		if rec, ok := t.request(cmd.RequestID); ok {
			return rec.replay(cmd)
		}
	}

	resp := t.execute(cmd)
	if cmd.RequestID != "" {
		t.recordRequest(cmd, l.Index, resp)
	}
	return resp
}

// replayedResponse returns the response to an entry applied before.
func (f *FSM) replayedResponse(t *tx, l *raft.Log, applied uint64) *Response {
	if l.Type == raft.LogCommand {
		if cmd, err := DecodeCommand(l.Data); err == nil && cmd.RequestID != "" {
			if rec, ok := t.request(cmd.RequestID); ok {
				return rec.replay(cmd)
			}
		}
	}
	return &Response{
		Code:    CodeAlreadyApplied,
		Message: fmt.Sprintf("log entry %d is at or below the applied index %d", l.Index, applied),
	}
}

// execute runs the handler of cmd and turns its result into a Response.
// The handler's writes reach the batch only when it succeeds.
func (t *tx) execute(cmd *Command) *Response {
	handler, ok := handlers[cmd.Type]
	if !ok {
		return &Response{Code: CodeInvalid, Message: fmt.Sprintf("unknown command type %q", cmd.Type)}
	}

	before := auditStateBefore(t, cmd)
	body, err := handler(t, cmd)
	if err != nil {
		t.dropCommand()
		return &Response{Code: codeOf(err), Message: err.Error()}
	}
	auditCommand(t, cmd, before, body)
	t.commitCommand()
	return &Response{Body: mustJSON(body)}
}

// getJSON reads key from r and decodes it into v. It reports whether the
// key exists.
func getJSON(r pebble.Reader, key string, v any) (bool, error) {
	raw, closer, err := r.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	defer closer.Close()
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// mustJSON encodes a value of a type that always encodes.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fsm: encode %T: %v (replicas would diverge)", v, err))
	}
	return b
}
