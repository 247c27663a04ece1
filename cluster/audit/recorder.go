package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/fsm"
)

// Applier proposes a command through Raft; cluster.Node implements it.
type Applier interface {
	Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error)
}

// ActionOverflow is the action of the entry that reports dropped events.
const ActionOverflow = "audit_overflow"

// window tracks the repeats of one event after its first was written.
type window struct {
	start time.Time
	count int64
	// unverified counts the repeats that were not signature-checked.
	unverified int64
	first      time.Time
	last       Event
}

// syncRequest is a request to the loop to write everything it holds.
type syncRequest struct {
	closeWindows bool
	done         chan struct{}
}

// Recorder batches and coalesces this node's audit events and writes them
// through Raft. Record may be called from any number of goroutines and
// never blocks.
type Recorder struct {
	cfg     RecorderConfig
	node    Applier
	metrics *Metrics
	logger  *slog.Logger

	queue   chan Event
	syncs   chan syncRequest
	batches chan writeJob
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  atomic.Bool

	// dropped counts events lost since the last audit_overflow entry.
	dropped atomic.Int64

	// Owned by the loop goroutine.
	windows map[coalesceKey]*window
	pending []fsm.AuditEntry
	// droppedSince is when the current run of drops began.
	droppedSince time.Time
	// lastScan is when the windows were last checked for their end.
	lastScan time.Time
}

// NewRecorder validates cfg and starts the recorder's goroutines. A nil
// metrics creates unregistered collectors; a nil logger discards logs.
func NewRecorder(cfg RecorderConfig, node Applier, metrics *Metrics, logger *slog.Logger) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if node == nil {
		return nil, fmt.Errorf("%w: applier is nil", ErrInvalidConfig)
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		cfg:     cfg,
		node:    node,
		metrics: metrics,
		logger:  logger.With("component", "audit"),
		queue:   make(chan Event, cfg.QueueSize),
		syncs:   make(chan syncRequest),
		batches: make(chan writeJob, 4),
		stop:    make(chan struct{}),
		windows: make(map[coalesceKey]*window),
	}
	r.wg.Add(2)
	go r.loop()
	go r.writer()
	return r, nil
}

// Record queues ev. When the queue is full the event is dropped and
// counted; an audit_overflow entry reports the count once the queue
// drains. Record never blocks and never fails.
func (r *Recorder) Record(ev Event) {
	r.metrics.Events.Inc()
	if ev.Time.IsZero() {
		ev.Time = r.cfg.Now()
	}
	if r.closed.Load() {
		r.drop(1)
		return
	}
	select {
	case r.queue <- ev:
	default:
		r.drop(1)
	}
}

func (r *Recorder) drop(n int64) {
	r.dropped.Add(n)
	r.metrics.Dropped.Add(float64(n))
}

// Dropped returns the events dropped and not yet reported in an
// audit_overflow entry.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Sync writes every queued event and every pending entry and waits until
// they are applied or ctx ends. Open windows stay open; with closeWindows
// their repeats are written too, as if the window had ended.
func (r *Recorder) Sync(ctx context.Context, closeWindows bool) error {
	req := syncRequest{closeWindows: closeWindows, done: make(chan struct{})}
	select {
	case r.syncs <- req:
	case <-r.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what the recorder holds, repeats of open windows included,
// and stops it. It waits for the writes until ctx ends.
func (r *Recorder) Close(ctx context.Context) error {
	if r.closed.Swap(true) {
		return nil
	}
	err := r.Sync(ctx, true)
	close(r.stop)
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// loop owns the coalescing windows and the pending batch.
func (r *Recorder) loop() {
	defer r.wg.Done()
	defer close(r.batches)
	ticker := time.NewTicker(r.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case ev := <-r.queue:
			r.add(ev)
		case <-ticker.C:
			r.tick(false)
		case req := <-r.syncs:
			r.drainQueue()
			r.tick(req.closeWindows)
			if r.dropped.Load() > 0 {
				// Full pending entries left no room for the overflow
				// report: write them first, so a sync reports every drop.
				r.handOffAll()
				r.reportDrops(r.cfg.Now())
			}
			r.handOff(req.done)
		case <-r.stop:
			return
		}
	}
}

// drainQueue takes every event queued so far.
func (r *Recorder) drainQueue() {
	for {
		select {
		case ev := <-r.queue:
			r.add(ev)
		default:
			return
		}
	}
}

// add writes the first event of a key in full and folds repeats into the
// key's open window.
func (r *Recorder) add(ev Event) {
	k := ev.key()
	w, open := r.windows[k]
	if open && ev.Time.Sub(w.start) < r.cfg.Window {
		if w.count == 0 {
			w.first = ev.Time
		}
		w.count++
		if ev.Unverified {
			w.unverified++
		}
		w.last = ev
		return
	}
	if open {
		r.closeWindow(k, w)
	}
	if ev.Unverified {
		ev.Fields = withUnverified(ev.Fields, 1)
	}
	r.emit(ev.entry(r.cfg.NodeID, ev.Time, 1))
	if len(r.windows) < r.cfg.MaxKeys {
		r.windows[k] = &window{start: ev.Time}
	}
}

// closeWindow writes the folded repeats of a window, if any.
func (r *Recorder) closeWindow(k coalesceKey, w *window) {
	delete(r.windows, k)
	if w.count > 0 {
		last := w.last
		last.Fields = withUnverified(last.Fields, w.unverified)
		r.emit(last.entry(r.cfg.NodeID, w.first, w.count))
	}
}

// tick closes the windows that ended (all of them with closeAll), reports
// drops once the queue is empty, and hands the pending entries on.
func (r *Recorder) tick(closeAll bool) {
	now := r.cfg.Now()
	// Checking every window costs a map walk, so it runs once a second
	// unless asked; a window may therefore end up to a second late.
	if closeAll || now.Sub(r.lastScan) >= time.Second || now.Before(r.lastScan) {
		r.lastScan = now
		for k, w := range r.windows {
			if closeAll || now.Sub(w.start) >= r.cfg.Window {
				r.closeWindow(k, w)
			}
		}
	}
	if r.droppedSince.IsZero() && r.dropped.Load() > 0 {
		r.droppedSince = now
	}
	if len(r.queue) == 0 {
		r.reportDrops(now)
	}
	r.handOff(nil)
}

// reportDrops writes one audit_overflow entry for the events dropped since
// the last report. While the pending entries are full (no leader takes
// them) the report waits, because emitting it would drop the report itself
// and lose its count.
func (r *Recorder) reportDrops(now time.Time) {
	if len(r.pending) >= r.cfg.MaxPending {
		return
	}
	n := r.dropped.Swap(0)
	if n == 0 {
		if !r.droppedSince.IsZero() {
			r.droppedSince = time.Time{}
		}
		return
	}
	since := r.droppedSince
	if since.IsZero() {
		since = now
	}
	r.droppedSince = time.Time{}
	fields, _ := json.Marshal(map[string]any{"dropped": n, "since": since.UnixMilli()})
	r.emit(fsm.AuditEntry{
		Action:    ActionOverflow,
		Severity:  fsm.SeverityHigh,
		ActorKind: fsm.ActorSystem,
		SourceIP:  fsm.SourceSystem,
		Detail:    fmt.Sprintf("%d audit events were dropped because node %s had no room to queue them", n, r.cfg.NodeID),
		Fields:    fields,
		Count:     n,
		FirstAt:   since.UnixMilli(),
		Timestamp: now.UnixMilli(),
		Node:      r.cfg.NodeID,
	})
	r.logger.Warn("audit events dropped", "dropped", n)
}

// emit validates an entry and adds it to the pending batch. An entry that
// is dropped counts as the Count events it folds.
func (r *Recorder) emit(e fsm.AuditEntry) {
	e.UUID = uuid.NewString()
	events := max(e.Count, 1)
	if err := e.Validate(); err != nil {
		r.logger.Warn("invalid audit event dropped", "action", e.Action, "err", err)
		r.drop(events)
		return
	}
	if len(r.pending) >= r.cfg.MaxPending {
		r.drop(events)
		return
	}
	r.pending = append(r.pending, e)
	if len(r.pending) >= r.cfg.BatchSize {
		r.handOff(nil)
	}
}

// handOff passes the pending entries to the writer in batches. When the
// writer is busy they stay pending (bounded by MaxPending). done, when
// set, makes the hand-off wait for room and is closed by the writer once
// everything handed off before it was written.
func (r *Recorder) handOff(done chan struct{}) {
	for len(r.pending) > 0 {
		n := batchLen(r.pending, r.cfg.BatchSize)
		job := writeJob{entries: r.pending[:n:n]}
		if done == nil {
			select {
			case r.batches <- job:
			default:
				return
			}
		} else {
			r.batches <- job
		}
		r.pending = r.pending[n:]
	}
	r.pending = nil
	if done != nil {
		r.batches <- writeJob{done: done}
	}
}

// handOffAll passes every pending entry to the writer, waiting for room.
func (r *Recorder) handOffAll() {
	for len(r.pending) > 0 {
		n := batchLen(r.pending, r.cfg.BatchSize)
		r.batches <- writeJob{entries: r.pending[:n:n]}
		r.pending = r.pending[n:]
	}
	r.pending = nil
}

// maxBatchBytes keeps one proposal well under fsm.MaxCommandBytes.
const maxBatchBytes = fsm.MaxCommandBytes / 2

// batchLen returns how many of the first entries fit one proposal: at most
// limit, and at most maxBatchBytes by a generous size estimate.
func batchLen(entries []fsm.AuditEntry, limit int) int {
	size := 0
	for i := range entries {
		if i == limit {
			return i
		}
		e := &entries[i]
		size += 512 + len(e.Fields) + 2*len(e.Detail)
		if size > maxBatchBytes && i > 0 {
			return i
		}
	}
	return len(entries)
}
