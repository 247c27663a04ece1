package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Intervals of disk monitoring.
const (
	// diskPoll is how often watchDisk re-reads the free space and looks for
	// a stalled write.
	diskPoll = 250 * time.Millisecond
	// diskStallHold is how long a node still counts as stalled after its
	// last slow write, so that a disk that stalls on every other write does
	// not flap between healthy and unhealthy.
	diskStallHold = 30 * time.Second
	// diskTransferPause is the shortest time between two leadership
	// transfers that this node starts because of its disk.
	diskTransferPause = 10 * time.Second
)

// DiskHealth describes the data volume as this node last measured it.
type DiskHealth struct {
	// Stalled is true while a write to raft.db has been running for longer
	// than the disk stall threshold, and for 30 s after such a write ended.
	Stalled bool
	// WriteLatency is the duration of the last write to raft.db (a log
	// append or a term and vote update, each ending with fsync), or the age
	// of the write in progress when that is longer.
	WriteLatency time.Duration
	// SlowestRecent is the longest write to raft.db that ended within the
	// last 30 s.
	SlowestRecent time.Duration
	// FreeBytes is the space left on the data volume. FreeKnown is false
	// when the platform or the file system does not report it.
	FreeBytes uint64
	FreeKnown bool
	// Low is true when FreeBytes is below the disk reserve. The node then
	// rejects to append to its Raft log, and hands leadership away.
	Low bool
}

// diskMonitor times the writes to raft.db, which end with an fsync, and
// tracks the free space of the data volume. All methods are safe for
// concurrent use.
type diskMonitor struct {
	nodeID         string
	dir            string
	stallThreshold time.Duration
	// reserve is DiskReserveBytes; tests raise it to simulate a full volume.
	reserve atomic.Uint64

	writeDuration prometheus.Histogram
	slowWrites    prometheus.Counter
	rejected      prometheus.Counter

	// free is the last free-space reading in bytes; freeAt is when it was
	// taken, in Unix nanoseconds, and zero when the last reading failed.
	free   atomic.Uint64
	freeAt atomic.Int64
	// rejections counts log appends rejected for lack of space, including
	// appends that failed with ENOSPC, but not writes that the leader
	// rejected before proposing them. watchDisk compares it with the count
	// it saw last.
	rejections atomic.Uint64
	// wake receives a value, without blocking, after a rejection.
	wake chan struct{}
	// file holds half the reserve back for when the volume fills up.
	file *reserveFile
	// owed is true from the deletion of the reserve file until it is
	// allocated again. The check for commands then counts its size as
	// used, so the freed space stays for Raft and the state machine.
	owed atomic.Bool

	mu sync.Mutex
	// inflight counts writes in progress; inflightSince is when the oldest
	// of them began.
	inflight      int
	inflightSince time.Time
	// last is the duration of the last finished write.
	last time.Duration
	// slowest is the longest write that ended at slowestAt.
	slowest   time.Duration
	slowestAt time.Time
	// lastSlowAt is when a write longer than stallThreshold last ended.
	lastSlowAt time.Time
}

func newDiskMonitor(cfg Config, logger *slog.Logger) *diskMonitor {
	m := &diskMonitor{
		file:           newReserveFile(cfg.DataDir, cfg.DiskReserveBytes/2, logger),
		nodeID:         cfg.NodeID,
		dir:            cfg.DataDir,
		stallThreshold: cfg.DiskStallThreshold,
		wake:           make(chan struct{}, 1),
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyward_raft_store_write_duration_seconds",
			Help:    "Duration of each write to raft.db (log append, log truncation, term or vote update), each ending with an fsync.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		slowWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_raft_store_slow_writes_total",
			Help: "Writes to raft.db that took longer than the disk stall threshold.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_raft_log_appends_rejected_total",
			Help: "Raft log appends rejected because the data volume was below the disk reserve or full.",
		}),
	}
	m.reserve.Store(uint64(cfg.DiskReserveBytes))
	return m
}

// beginWrite records the start of a write and returns its start time.
func (m *diskMonitor) beginWrite() time.Time {
	start := time.Now()
	m.mu.Lock()
	if m.inflight == 0 {
		m.inflightSince = start
	}
	m.inflight++
	m.mu.Unlock()
	return start
}

// endWrite records a write that began at start and ended with err.
func (m *diskMonitor) endWrite(start time.Time, err error) {
	now := time.Now()
	took := now.Sub(start)
	m.writeDuration.Observe(took.Seconds())
	slow := m.stallThreshold > 0 && took > m.stallThreshold
	if slow {
		m.slowWrites.Inc()
	}
	m.mu.Lock()
	m.inflight--
	m.last = took
	if took >= m.slowest || now.Sub(m.slowestAt) > diskStallHold {
		m.slowest, m.slowestAt = took, now
	}
	if slow {
		m.lastSlowAt = now
	}
	m.mu.Unlock()
	if errors.Is(err, syscall.ENOSPC) {
		m.releaseReserveFile("a write to raft.db failed for lack of space")
		m.noteRejection()
		m.freeAt.Store(0)
	}
}

// releaseReserveFile deletes the reserve file, when it is held, and
// remembers that its space is owed.
func (m *diskMonitor) releaseReserveFile(reason string) {
	if m.file.held() {
		m.file.release(reason)
		m.owed.Store(true)
	}
}

// maintainReserveFile deletes the reserve file once less than a quarter of
// the reserve is free, and allocates it again once the volume has room
// for it on top of the reserve.
func (m *diskMonitor) maintainReserveFile() {
	reserve := m.reserve.Load()
	free, known := m.freeBytes(0)
	if reserve == 0 || !known {
		return
	}
	if free < reserve/4 {
		m.releaseReserveFile("less than a quarter of the disk reserve is free")
		return
	}
	if m.file.ensure(free, reserve) {
		m.owed.Store(false)
		m.freeAt.Store(0)
	}
}

// below reports whether free is under the reserve, counting the space of a
// deleted reserve file as used.
func (m *diskMonitor) below(free, reserve uint64) bool {
	if reserve == 0 {
		return false
	}
	need := reserve
	if m.owed.Load() {
		need += uint64(m.file.size)
	}
	return free < need
}

// noteRejection counts a rejected log append and wakes watchDisk, which
// gates machine requests until the node has caught up again.
func (m *diskMonitor) noteRejection() {
	m.rejected.Inc()
	m.rejections.Add(1)
	m.signal()
}

// signal wakes watchDisk without blocking.
func (m *diskMonitor) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// refreshFree reads the free space of the data volume again.
func (m *diskMonitor) refreshFree() {
	free, err := freeDiskBytes(m.dir)
	if err != nil {
		m.freeAt.Store(0)
		return
	}
	m.free.Store(free)
	m.freeAt.Store(time.Now().UnixNano())
}

// freeBytes returns the free space, read again when the last reading is
// older than maxAge, and whether it is known.
func (m *diskMonitor) freeBytes(maxAge time.Duration) (uint64, bool) {
	at := m.freeAt.Load()
	if at == 0 || time.Since(time.Unix(0, at)) > maxAge {
		m.refreshFree()
		at = m.freeAt.Load()
	}
	return m.free.Load(), at != 0
}

// checkSpace returns an ErrDiskFull error when the data volume, read again
// now, is below the reserve, so that the remaining space stays for the state machine,
// Raft's term and vote updates and the restart. Zero reserve turns the
// check off, and so does a volume that does not report its free space.
func (m *diskMonitor) checkSpace() error {
	reserve := m.reserve.Load()
	if reserve == 0 {
		return nil
	}
	// A fresh reading: statfs costs microseconds next to the fsync of the
	// write it guards, and a reading from before another process filled
	// the volume would let an append fail and step the leader down.
	free, known := m.freeBytes(0)
	if !known || !m.below(free, reserve) {
		return nil
	}
	if free < reserve/4 {
		m.releaseReserveFile("less than a quarter of the disk reserve is free")
	}
	m.signal()
	return fmt.Errorf("%w: node %s: the volume of data dir %s has %s free, below the %s reserve; free space on it",
		ErrDiskFull, m.nodeID, m.dir, formatBytes(free), formatBytes(reserve))
}

// health returns the current view.
func (m *diskMonitor) health() DiskHealth {
	now := time.Now()
	m.mu.Lock()
	h := DiskHealth{WriteLatency: m.last}
	if m.inflight > 0 {
		h.WriteLatency = max(h.WriteLatency, now.Sub(m.inflightSince))
	}
	if now.Sub(m.slowestAt) <= diskStallHold {
		h.SlowestRecent = m.slowest
	}
	if m.stallThreshold > 0 {
		stuck := m.inflight > 0 && now.Sub(m.inflightSince) > m.stallThreshold
		recent := !m.lastSlowAt.IsZero() && now.Sub(m.lastSlowAt) <= diskStallHold
		h.Stalled = stuck || recent
	}
	m.mu.Unlock()
	h.FreeBytes, h.FreeKnown = m.freeBytes(diskPoll)
	h.Low = h.FreeKnown && m.below(h.FreeBytes, m.reserve.Load())
	return h
}

// rejecting reports whether log appends are rejected now, from the last
// free-space reading.
func (m *diskMonitor) rejecting() bool {
	free, known := m.freeBytes(diskPoll)
	return known && m.below(free, m.reserve.Load())
}

// inProgress returns the age of the oldest write in progress, or 0.
func (m *diskMonitor) inProgress() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight == 0 {
		return 0
	}
	return time.Since(m.inflightSince)
}

func formatBytes(b uint64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%d bytes", b)
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// monitoredStore is raft.db as Raft uses it: the bolt store with every write
// timed, and appends of commands rejected while the data volume is below
// its reserve. Raft steps a leader down when its own append fails, and a
// follower returns the append as failed, so a rejection never loses a
// committed entry.
type monitoredStore struct {
	*raftboltdb.BoltStore
	disk *diskMonitor
}

var (
	_ raft.LogStore    = (*monitoredStore)(nil)
	_ raft.StableStore = (*monitoredStore)(nil)
)

func (s *monitoredStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs rejects a batch with a command while the volume is below the
// reserve. Raft's own entries (the no-op of a new term, barriers and
// configuration changes) are small and always go through. A leader whose
// no-op fails steps down at once, so rejecting them would make a node with
// a full volume win and lose elections in a loop.
func (s *monitoredStore) StoreLogs(logs []*raft.Log) error {
	if hasCommand(logs) {
		if err := s.disk.checkSpace(); err != nil {
			s.disk.noteRejection()
			return err
		}
	}
	start := s.disk.beginWrite()
	err := s.BoltStore.StoreLogs(logs)
	s.disk.endWrite(start, err)
	return err
}

func hasCommand(logs []*raft.Log) bool {
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			return true
		}
	}
	return false
}

func (s *monitoredStore) DeleteRange(minIndex, maxIndex uint64) error {
	start := s.disk.beginWrite()
	err := s.BoltStore.DeleteRange(minIndex, maxIndex)
	s.disk.endWrite(start, err)
	return err
}

// Set and SetUint64 are never rejected: Raft panics when it cannot store
// its term or vote, and the reserve exists to leave room for them.
func (s *monitoredStore) Set(k, v []byte) error {
	start := s.disk.beginWrite()
	err := s.BoltStore.Set(k, v)
	s.disk.endWrite(start, err)
	return err
}

func (s *monitoredStore) SetUint64(key []byte, val uint64) error {
	start := s.disk.beginWrite()
	err := s.BoltStore.SetUint64(key, val)
	s.disk.endWrite(start, err)
	return err
}
