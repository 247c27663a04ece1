package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"
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

// Restore replaces the whole state with a snapshot stream. It reads and
// verifies the entire stream into one batch that first deletes every key,
// builds the new indexes from that batch, and only then commits it with
// fsync and swaps the indexes in. A stream that fails any check leaves the
// previous state untouched.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if f.closed.Load() {
		return errClosed
	}

	batch := f.db.NewIndexedBatch()
	defer batch.Close()
	// The tombstone ends above keyspaceEnd, the iterators' upper bound:
	// Pebble's invariant checks (on in race builds) reject a seek to a
	// bound that coincides with a range deletion's end.
	if err := batch.DeleteRange(nil, deleteRangeEnd, nil); err != nil {
		return fmt.Errorf("restore: clear keyspace: %w", err)
	}

	index, term, count, err := readSnapshot(rc, batch)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := batch.Set([]byte(keyApplied), mustJSON(appliedRecord{Index: index, Term: term}), nil); err != nil {
		return fmt.Errorf("restore: %w", err)
	}

	idx, err := loadIndexes(batch)
	if err != nil {
		return fmt.Errorf("restore: %w: %v", ErrSnapshotCorrupt, err)
	}
	var prune pruneRecord
	if _, err := getJSON(batch, keyRequestPrune, &prune); err != nil {
		return fmt.Errorf("restore: %w: %v", ErrSnapshotCorrupt, err)
	}
	auditSeq, err := readAuditSeq(batch)
	if err != nil {
		return fmt.Errorf("restore: %w: %v", ErrSnapshotCorrupt, err)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("restore: commit: %w", err)
	}

	f.idx.Store(idx)
	f.appliedTerm = term
	f.pruneCutoff = prune.Cutoff
	f.applied.Store(index)
	f.audit.publish(auditSeq)
	f.log.Info("snapshot restored", "index", index, "term", term, "records", count)
	return nil
}

// snapshotReader reads a stream while hashing every byte it returns.
type snapshotReader struct {
	r   *bufio.Reader
	sum hash.Hash
}

func (s *snapshotReader) read(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, corrupt("stream ends early: %v", err)
	}
	s.sum.Write(b)
	return b, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSnapshotCorrupt, fmt.Sprintf(format, args...))
}

// readSnapshot verifies a stream and sets its records in batch.
func readSnapshot(rc io.Reader, batch *pebble.Batch) (index, term, count uint64, err error) {
	s := &snapshotReader{r: bufio.NewReaderSize(rc, 256<<10), sum: sha256.New()}
	if index, term, err = readHeader(s); err != nil {
		return 0, 0, 0, err
	}

	var prev []byte
	for {
		tag, err := s.read(1)
		if err != nil {
			return 0, 0, 0, err
		}
		switch tag[0] {
		case tagRecord:
			if prev, err = readRecord(s, batch, prev); err != nil {
				return 0, 0, 0, err
			}
			count++
		case tagTrailer:
			return index, term, count, readTrailer(s, count)
		default:
			return 0, 0, 0, corrupt("unknown tag 0x%02x after %d records", tag[0], count)
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

// readRecord reads one record, checks its bounds and order, and sets it.
func readRecord(s *snapshotReader, batch *pebble.Batch, prev []byte) ([]byte, error) {
	lens, err := s.read(8)
	if err != nil {
		return nil, err
	}
	keyLen, valueLen := binary.BigEndian.Uint32(lens[:4]), binary.BigEndian.Uint32(lens[4:])
	if keyLen == 0 || keyLen > maxSnapshotKey {
		return nil, corrupt("key length %d outside 1 to %d", keyLen, maxSnapshotKey)
	}
	if valueLen > maxSnapshotValue {
		return nil, corrupt("value length %d over the limit of %d", valueLen, maxSnapshotValue)
	}

	key, err := s.read(int(keyLen))
	if err != nil {
		return nil, err
	}
	if !hasKnownPrefix(key) || string(key) == keyApplied {
		return nil, corrupt("unexpected key %q", key)
	}
	if prev != nil && bytes.Compare(key, prev) <= 0 {
		return nil, corrupt("key %q is not after %q", key, prev)
	}
	value, err := s.read(int(valueLen))
	if err != nil {
		return nil, err
	}
	if err := batch.Set(key, value, nil); err != nil {
		return nil, fmt.Errorf("set %q: %w", key, err)
	}
	return key, nil
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
