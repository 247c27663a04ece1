package fsm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// Snapshot stream format, version 1. All integers are big-endian.
//
//	header  magic "KWFSMSNP" | version uint32 | applied index uint64 | applied term uint64
//	record  0x01 | key length uint32 | value length uint32 | key | value   (keys ascending)
//	trailer 0x02 | record count uint64 | SHA-256 of every byte before it
//
// The applied index travels in the header, not as a record, and Restore
// writes it in the same batch as the data.
const (
	snapshotMagic   = "KWFSMSNP"
	snapshotVersion = 1
	tagRecord       = 0x01
	tagTrailer      = 0x02

	// maxSnapshotKey and maxSnapshotValue bound each length prefix read by
	// Restore, so a corrupt or hostile stream cannot make it allocate more.
	// The largest real key is under 300 bytes and the largest value (a
	// machine with MaxExtensions extensions) under 1 MiB.
	maxSnapshotKey   = 4 << 10
	maxSnapshotValue = 16 << 20
)

// Snapshot captures a consistent Pebble snapshot and the applied index.
// It returns quickly; the records are written by Persist, which may run
// concurrently with later applies.
//
// Applies commit without fsync, so Snapshot first syncs the Pebble WAL.
// Raft compacts its log up to a snapshot's index. Without the sync, a
// power loss could leave Pebble behind an index whose log entries are gone.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if f.closed.Load() {
		return nil, errClosed
	}
	if err := f.db.LogData(nil, pebble.Sync); err != nil {
		return nil, fmt.Errorf("snapshot: sync pebble wal: %w", err)
	}
	return &fsmSnapshot{
		snap:  f.db.NewSnapshot(),
		index: f.applied.Load(),
		term:  f.appliedTerm,
	}, nil
}

// fsmSnapshot implements raft.FSMSnapshot over a Pebble snapshot.
type fsmSnapshot struct {
	snap        *pebble.Snapshot
	index, term uint64
	releaseOnce sync.Once
}

// Persist writes the stream to sink and closes it, or cancels it on error.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot at index %d: %w", s.index, err)
	}
	return sink.Close()
}

// Release frees the Pebble snapshot. Raft calls it exactly once, but it is
// safe to call again.
func (s *fsmSnapshot) Release() {
	s.releaseOnce.Do(func() { s.snap.Close() })
}

func (s *fsmSnapshot) write(w io.Writer) error {
	buf := bufio.NewWriterSize(w, 256<<10)
	sum := sha256.New()
	out := io.MultiWriter(buf, sum)

	header := make([]byte, 0, 28)
	header = append(header, snapshotMagic...)
	header = binary.BigEndian.AppendUint32(header, snapshotVersion)
	header = binary.BigEndian.AppendUint64(header, s.index)
	header = binary.BigEndian.AppendUint64(header, s.term)
	if _, err := out.Write(header); err != nil {
		return err
	}

	count, err := writeRecords(s.snap, out)
	if err != nil {
		return err
	}

	trailer := []byte{tagTrailer}
	trailer = binary.BigEndian.AppendUint64(trailer, count)
	if _, err := out.Write(trailer); err != nil {
		return err
	}
	if _, err := buf.Write(sum.Sum(nil)); err != nil {
		return err
	}
	return buf.Flush()
}

// writeRecords writes every key except the applied index, in key order.
func writeRecords(r pebble.Reader, out io.Writer) (uint64, error) {
	iter, err := r.NewIter(&pebble.IterOptions{UpperBound: keyspaceEnd})
	if err != nil {
		return 0, err
	}
	defer iter.Close()

	var count uint64
	head := make([]byte, 9)
	for iter.First(); iter.Valid(); iter.Next() {
		if string(iter.Key()) == keyApplied {
			continue
		}
		value, err := iter.ValueAndErr()
		if err != nil {
			return count, err
		}
		head[0] = tagRecord
		binary.BigEndian.PutUint32(head[1:5], uint32(len(iter.Key())))
		binary.BigEndian.PutUint32(head[5:9], uint32(len(value)))
		for _, part := range [][]byte{head, iter.Key(), value} {
			if _, err := out.Write(part); err != nil {
				return count, err
			}
		}
		count++
	}
	return count, iter.Error()
}

// Restore replaces the whole state with a snapshot stream. It reads the
// stream once: each record is checked and written to new sorted tables
// under Dir/restore, and the new indexes are built from the same records.
// Only when the whole stream passed every check, the trailer's count and
// checksum included, does it swap the tables in with one ingest that first
// excises (deletes) every existing key, and then swap the indexes. A
// stream that fails any check leaves the previous state untouched.
//
// Writing tables instead of one write batch keeps memory bounded by the
// indexes rather than the snapshot size, and the ingested tables land in
// the bottom level, so nothing is compacted again.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if f.closed.Load() {
		return errClosed
	}

	fs := f.opts.FS
	dir := fs.PathJoin(f.cfg.Dir, restoreDirName)
	// A restore cut short by a crash leaves its tables behind.
	if err := fs.RemoveAll(dir); err != nil {
		return fmt.Errorf("restore: remove %s: %w", dir, err)
	}
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore: create %s: %w", dir, err)
	}
	defer func() {
		if err := fs.RemoveAll(dir); err != nil {
			f.log.Warn("remove restore tables failed", "dir", dir, "error", err)
		}
	}()

	r, err := f.readSnapshotTables(rc, dir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	everything := pebble.KeyRange{Start: []byte{}, End: deleteRangeEnd}
	if _, err := f.db.IngestAndExcise(context.Background(), r.tables, nil, nil, everything); err != nil {
		return fmt.Errorf("restore: ingest %d tables: %w", len(r.tables), err)
	}

	// A snapshot of an older build has no machine index records.
	if err := ensureMachineIndex(f.db); err != nil {
		return fmt.Errorf("restore: build the machine index: %w", err)
	}
	f.idx.Store(r.ix)
	f.appliedTerm = r.term
	f.pruneCutoff = r.prune.Cutoff
	f.setApplied(r.index)
	f.audit.publish(r.auditSeq)
	f.log.Info("snapshot restored", "index", r.index, "term", r.term, "records", r.count, "tables", len(r.tables))
	return nil
}

// restoreDirName is the folder under Dir that holds a restore's tables
// until they are ingested.
const restoreDirName = "restore"

// restoreTableBytes is the size at which Restore starts a new table. It
// is a variable so that tests can make a small stream span several tables.
var restoreTableBytes uint64 = 64 << 20

// restoredState is a verified snapshot: its tables and the indexes built
// from them.
type restoredState struct {
	index, term, count uint64
	tables             []string
	ix                 *indexes
	prune              pruneRecord
	auditSeq           uint64
}

// readSnapshotTables verifies a stream, writes its records and the applied
// index to tables in dir and builds the indexes. A failed check returns an
// error wrapping ErrSnapshotCorrupt.
func (f *FSM) readSnapshotTables(rc io.Reader, dir string) (*restoredState, error) {
	s := newSnapshotReader(rc)
	index, term, err := readHeader(s)
	if err != nil {
		return nil, err
	}

	tables := &tableWriter{
		fs:      f.opts.FS,
		dir:     dir,
		opts:    f.opts.MakeWriterOptions(len(f.opts.Levels)-1, f.db.TableFormat()),
		applied: mustJSON(appliedRecord{Index: index, Term: term}),
	}
	b := newIndexBuilder(f.newIndexes())
	count, err := readRecords(s, func(key, value []byte) error {
		if err := tables.set(key, value); err != nil {
			return err
		}
		if err := b.add(key, value); err != nil {
			return fmt.Errorf("%w: %v", ErrSnapshotCorrupt, err)
		}
		return nil
	})
	if err != nil {
		b.abort()
		tables.abort()
		return nil, err
	}
	if err := tables.finish(); err != nil {
		b.abort()
		return nil, err
	}
	ix, err := b.finish(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshotCorrupt, err)
	}
	return &restoredState{
		index: index, term: term, count: count, tables: tables.paths,
		ix: ix, prune: b.prune, auditSeq: b.auditSeq,
	}, nil
}

// tableWriter writes records in ascending key order to a run of tables
// for ingestion, and adds the applied index record at its place in the
// order.
type tableWriter struct {
	fs      vfs.FS
	dir     string
	opts    sstable.WriterOptions
	applied []byte

	w           *sstable.Writer
	paths       []string
	appliedDone bool
}

func (t *tableWriter) set(key, value []byte) error {
	if !t.appliedDone && string(key) > keyApplied {
		if err := t.add([]byte(keyApplied), t.applied); err != nil {
			return err
		}
		t.appliedDone = true
	}
	return t.add(key, value)
}

func (t *tableWriter) add(key, value []byte) error {
	if t.w == nil {
		path := t.fs.PathJoin(t.dir, fmt.Sprintf("%06d.sst", len(t.paths)))
		file, err := t.fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		t.w = sstable.NewWriter(objstorageprovider.NewFileWritable(file), t.opts)
		t.paths = append(t.paths, path)
	}
	if err := t.w.Set(key, value); err != nil {
		return fmt.Errorf("write %s: %w", t.paths[len(t.paths)-1], err)
	}
	if t.w.Raw().EstimatedSize() >= restoreTableBytes {
		return t.closeTable()
	}
	return nil
}

// finish writes the applied index if no key above it came, and closes
// the last table.
func (t *tableWriter) finish() error {
	if !t.appliedDone {
		if err := t.add([]byte(keyApplied), t.applied); err != nil {
			return err
		}
		t.appliedDone = true
	}
	return t.closeTable()
}

func (t *tableWriter) closeTable() error {
	if t.w == nil {
		return nil
	}
	err := t.w.Close()
	t.w = nil
	if err != nil {
		return fmt.Errorf("finish %s: %w", t.paths[len(t.paths)-1], err)
	}
	return nil
}

// abort closes the open table after a failure. Restore removes the files.
func (t *tableWriter) abort() {
	if t.w != nil {
		t.w.Close()
		t.w = nil
	}
}

// snapshotReader reads a stream while hashing every byte it returns. Its
// key and value buffers are reused from one record to the next.
type snapshotReader struct {
	r          *bufio.Reader
	sum        hash.Hash
	key, value []byte
	prev       []byte
}

func newSnapshotReader(r io.Reader) *snapshotReader {
	return &snapshotReader{r: bufio.NewReaderSize(r, 256<<10), sum: sha256.New()}
}

// read returns the next n bytes in a new slice.
func (s *snapshotReader) read(n int) ([]byte, error) {
	b := make([]byte, n)
	return b, s.readFull(b)
}

// readFull fills b with the next bytes.
func (s *snapshotReader) readFull(b []byte) error {
	if _, err := io.ReadFull(s.r, b); err != nil {
		return corrupt("stream ends early: %v", err)
	}
	s.sum.Write(b)
	return nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSnapshotCorrupt, fmt.Sprintf(format, args...))
}

// readRecords reads the records after the header and the trailer, and
// calls fn for each record. The slices passed to fn are valid only during
// the call. It returns the record count once the trailer checked out.
func readRecords(s *snapshotReader, fn func(key, value []byte) error) (uint64, error) {
	var count uint64
	var tag [1]byte
	for {
		if err := s.readFull(tag[:]); err != nil {
			return 0, err
		}
		switch tag[0] {
		case tagRecord:
			if err := readRecord(s); err != nil {
				return 0, err
			}
			if err := fn(s.key, s.value); err != nil {
				return 0, err
			}
			s.prev = append(s.prev[:0], s.key...)
			count++
		case tagTrailer:
			return count, readTrailer(s, count)
		default:
			return 0, corrupt("unknown tag 0x%02x after %d records", tag[0], count)
		}
	}
}

func readHeader(s *snapshotReader) (index, term uint64, err error) {
	h, err := s.read(len(snapshotMagic) + 4 + 8 + 8)
	if err != nil {
		return 0, 0, err
	}
	if string(h[:8]) != snapshotMagic {
		return 0, 0, corrupt("bad magic %q", h[:8])
	}
	if v := binary.BigEndian.Uint32(h[8:12]); v != snapshotVersion {
		return 0, 0, corrupt("format version %d, this build reads %d", v, snapshotVersion)
	}
	return binary.BigEndian.Uint64(h[12:20]), binary.BigEndian.Uint64(h[20:28]), nil
}

// readRecord reads one record into s.key and s.value and checks its
// bounds and its order after s.prev.
func readRecord(s *snapshotReader) error {
	var lens [8]byte
	if err := s.readFull(lens[:]); err != nil {
		return err
	}
	keyLen, valueLen := binary.BigEndian.Uint32(lens[:4]), binary.BigEndian.Uint32(lens[4:])
	if keyLen == 0 || keyLen > maxSnapshotKey {
		return corrupt("key length %d outside 1 to %d", keyLen, maxSnapshotKey)
	}
	if valueLen > maxSnapshotValue {
		return corrupt("value length %d over the limit of %d", valueLen, maxSnapshotValue)
	}

	s.key = grow(s.key, int(keyLen))
	if err := s.readFull(s.key); err != nil {
		return err
	}
	if !hasKnownPrefix(s.key) || string(s.key) == keyApplied {
		return corrupt("unexpected key %q", s.key)
	}
	if len(s.prev) > 0 && bytes.Compare(s.key, s.prev) <= 0 {
		return corrupt("key %q is not after %q", s.key, s.prev)
	}
	s.value = grow(s.value, int(valueLen))
	return s.readFull(s.value)
}

// grow returns b resized to n bytes, reallocating only when it is too
// small.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func readTrailer(s *snapshotReader, count uint64) error {
	b, err := s.read(8)
	if err != nil {
		return err
	}
	if got := binary.BigEndian.Uint64(b); got != count {
		return corrupt("trailer counts %d records, stream has %d", got, count)
	}

	want := s.sum.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(s.r, got); err != nil {
		return corrupt("checksum missing: %v", err)
	}
	if !bytes.Equal(got, want) {
		return corrupt("checksum mismatch")
	}
	if _, err := s.r.ReadByte(); err != io.EOF {
		return corrupt("data after the trailer")
	}
	return nil
}
