package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Layout and limits of the nonce journal.
const (
	// nonceJournalDir is the folder under DataDir.
	nonceJournalDir = "nonce-journal"
	// journalSuffix ends the name of every segment file; the name before it
	// is the segment's sequence number in 16 hex digits.
	journalSuffix = ".journal"
	// journalMagic starts every segment file.
	journalMagic = "KWNJ0001"
	// journalFrameHeader is the length (4 bytes), the CRC-32C of the rest
	// of the frame (4) and the latest nonce expiry in Unix milliseconds (8).
	journalFrameHeader = 16
	// journalSegmentBytes and journalSegmentAge bound the segment being
	// written; past either a new one starts. The age bound lets a quiet
	// node's segments expire and be deleted.
	journalSegmentBytes = 8 << 20
	journalSegmentAge   = time.Minute
	// journalErrorLogEvery rate-limits the log line about failed writes.
	journalErrorLogEvery = time.Minute
)

var journalCRC = crc32.MakeTable(crc32.Castagnoli)

// nonceJournal appends every nonce batch that the node keeps to segment
// files under DataDir/nonce-journal, so that a node started again after
// its process was killed still rejects what it or its peers accepted. A
// write is one write(2) into the page cache without fsync: the data
// survives the end of the process, not the loss of the machine's power.
// Segments are deleted once every nonce in them has expired, or, oldest
// first, when the journal grows past its byte limit. All methods are safe
// for concurrent use.
type nonceJournal struct {
	dir   string
	limit int64
	// segmentBytes is the size at which the current segment is closed:
	// an eighth of limit, so that dropping the oldest segment to stay
	// under limit never drops most of the journal.
	segmentBytes int64
	logger       *slog.Logger

	mu sync.Mutex
	// cur is the segment being written; nil until the first append after
	// open or rotation, and after close.
	cur *journalSegment
	// closed are the finished segments in ascending sequence order.
	closed  []*journalSegment
	nextSeq uint64
	total   int64
	// writeErrors counts appends that failed; dropped counts segments
	// deleted before their nonces expired because the journal was full.
	writeErrors uint64
	dropped     uint64
	lastErrLog  time.Time
	shut        bool
}

// journalSegment is one segment file.
type journalSegment struct {
	seq     uint64
	path    string
	file    *os.File // open only while it is the current segment
	size    int64
	opened  time.Time
	expires int64 // latest nonce expiry in it, Unix milliseconds
}

// minJournalSegmentBytes is the smallest segment size, for small limits.
const minJournalSegmentBytes = 64 << 10

// segmentBytesFor returns the segment size for a journal of limit bytes:
// an eighth of it, between minJournalSegmentBytes and journalSegmentBytes.
// With segments as large as the limit, a journal over its limit deleted
// every closed segment at once and kept almost nothing.
func segmentBytesFor(limit int64) int64 {
	return min(max(limit/8, minJournalSegmentBytes), journalSegmentBytes)
}

// openNonceJournal opens the journal under dataDir, creating the folder,
// and returns it with the unexpired batches it holds, oldest first, at
// most limit bytes of them. Segments whose nonces all expired are
// deleted. A segment that ends in a torn or corrupt frame is read up to
// that frame.
func openNonceJournal(dataDir string, limit int, now time.Time, logger *slog.Logger) (*nonceJournal, []eventBlob, error) {
	j := &nonceJournal{dir: filepath.Join(dataDir, nonceJournalDir), limit: int64(limit), logger: logger, nextSeq: 1,
		segmentBytes: segmentBytesFor(int64(limit))}
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create nonce journal folder %s: %w", j.dir, err)
	}
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list nonce journal %s: %w", j.dir, err)
	}
	var segs []*journalSegment
	for _, e := range entries {
		seq, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		segs = append(segs, &journalSegment{seq: seq, path: filepath.Join(j.dir, e.Name())})
		j.nextSeq = max(j.nextSeq, seq+1)
	}
	slices.SortFunc(segs, func(a, b *journalSegment) int { return cmpUint64(a.seq, b.seq) })

	nowMs := now.UnixMilli()
	var blobs []eventBlob
	for _, s := range segs {
		found, err := s.read(nowMs)
		if err != nil {
			logger.Warn("nonce journal segment read up to a damaged frame", "path", s.path, keyErr, err)
		}
		j.total += s.size
		if s.expires <= nowMs {
			j.remove(s)
			continue
		}
		j.closed = append(j.closed, s)
		blobs = append(blobs, found...)
	}
	j.enforceLimitLocked()
	return j, trimToLimit(blobs, limit), nil
}

func parseSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, journalSuffix)
	if !ok || len(base) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(base, 16, 64)
	return seq, err == nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// trimToLimit keeps the newest blobs that fit in limit bytes.
func trimToLimit(blobs []eventBlob, limit int) []eventBlob {
	total := 0
	for i := len(blobs) - 1; i >= 0; i-- {
		total += len(blobs[i].data)
		if total > limit {
			return blobs[i+1:]
		}
	}
	return blobs
}

// read returns the unexpired frames of the segment and sets its size and
// latest expiry. It stops at the first frame that is short or fails its
// checksum, which is where a write ended when the disk filled up.
func (s *journalSegment) read(nowMs int64) ([]eventBlob, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	s.size = int64(len(data))
	if !strings.HasPrefix(string(data[:min(len(data), len(journalMagic))]), journalMagic) {
		return nil, fmt.Errorf("%w: missing the %s header", ErrProtocol, journalMagic)
	}
	rest := data[len(journalMagic):]
	var out []eventBlob
	for len(rest) > 0 {
		if len(rest) < journalFrameHeader {
			return out, fmt.Errorf("%w: %d trailing bytes are shorter than a frame header", ErrProtocol, len(rest))
		}
		n := int(binary.BigEndian.Uint32(rest[0:4]))
		if n > len(rest)-journalFrameHeader {
			return out, fmt.Errorf("%w: frame of %d bytes runs past the end of the file", ErrProtocol, n)
		}
		body := rest[8 : journalFrameHeader+n]
		if crc32.Checksum(body, journalCRC) != binary.BigEndian.Uint32(rest[4:8]) {
			return out, fmt.Errorf("%w: frame checksum mismatch", ErrProtocol)
		}
		expires := int64(binary.BigEndian.Uint64(body[0:8]))
		s.expires = max(s.expires, expires)
		if expires > nowMs {
			out = append(out, eventBlob{data: body[8:], expires: expires})
		}
		rest = rest[journalFrameHeader+n:]
	}
	return out, nil
}

// append writes one batch whose latest nonce expires at expires (Unix
// milliseconds). A failed write is counted and logged at most once a
// minute, and the batch then lives only in memory and on the peers.
func (j *nonceJournal) append(data []byte, expires int64, now time.Time) {
	frame := make([]byte, journalFrameHeader+len(data))
	binary.BigEndian.PutUint32(frame[0:4], uint32(len(data)))
	binary.BigEndian.PutUint64(frame[8:16], uint64(expires))
	copy(frame[journalFrameHeader:], data)
	binary.BigEndian.PutUint32(frame[4:8], crc32.Checksum(frame[8:], journalCRC))

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.shut {
		return
	}
	if err := j.writeLocked(frame, expires, now); err != nil {
		j.writeErrors++
		if now.Sub(j.lastErrLog) >= journalErrorLogEvery {
			j.lastErrLog = now
			j.logger.Error("nonce journal write failed; accepted nonces survive a restart of this node only through its peers until it succeeds",
				keyErr, err, "failed_writes", j.writeErrors)
		}
	}
}

func (j *nonceJournal) writeLocked(frame []byte, expires int64, now time.Time) error {
	if j.cur != nil && (j.cur.size+int64(len(frame)) > j.segmentBytes || now.Sub(j.cur.opened) >= journalSegmentAge) {
		j.rotateLocked()
	}
	if j.cur == nil {
		if err := j.startSegmentLocked(now); err != nil {
			return err
		}
	}
	s := j.cur
	n, err := s.file.Write(frame)
	if err == nil {
		s.size += int64(n)
		j.total += int64(n)
		s.expires = max(s.expires, expires)
		j.enforceLimitLocked()
		return nil
	}
	// Cut a partial frame off, so later frames stay readable. When that
	// fails too the segment is finished here and the loader stops at the
	// torn frame.
	if n > 0 {
		if terr := s.file.Truncate(s.size); terr != nil {
			j.rotateLocked()
		} else if _, serr := s.file.Seek(s.size, io.SeekStart); serr != nil {
			j.rotateLocked()
		}
	}
	return fmt.Errorf("append to %s: %w", s.path, err)
}

func (j *nonceJournal) startSegmentLocked(now time.Time) error {
	seq := j.nextSeq
	path := filepath.Join(j.dir, fmt.Sprintf("%016x%s", seq, journalSuffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create nonce journal segment: %w", err)
	}
	if _, err := f.Write([]byte(journalMagic)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write nonce journal segment header %s: %w", path, err)
	}
	j.nextSeq++
	j.cur = &journalSegment{seq: seq, path: path, file: f, size: int64(len(journalMagic)), opened: now}
	j.total += j.cur.size
	return nil
}

// rotateLocked finishes the current segment.
func (j *nonceJournal) rotateLocked() {
	if j.cur == nil {
		return
	}
	j.cur.file.Close()
	j.cur.file = nil
	j.closed = append(j.closed, j.cur)
	j.cur = nil
}

// prune deletes the finished segments whose nonces have all expired, and
// finishes the current segment once it is old enough, so that a quiet
// node's journal empties too.
func (j *nonceJournal) prune(now time.Time) {
	nowMs := now.UnixMilli()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur != nil && now.Sub(j.cur.opened) >= journalSegmentAge {
		j.rotateLocked()
	}
	kept := j.closed[:0]
	for _, s := range j.closed {
		if s.expires <= nowMs {
			j.remove(s)
			continue
		}
		kept = append(kept, s)
	}
	clear(j.closed[len(kept):])
	j.closed = kept
}

// enforceLimitLocked deletes the oldest finished segments while the journal
// is larger than its limit.
func (j *nonceJournal) enforceLimitLocked() {
	for j.total > j.limit && len(j.closed) > 0 {
		j.remove(j.closed[0])
		j.closed[0] = nil
		j.closed = j.closed[1:]
		j.dropped++
	}
}

// remove deletes a finished segment's file and its bytes from the total.
func (j *nonceJournal) remove(s *journalSegment) {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.logger.Warn("could not delete an expired nonce journal segment", "path", s.path, keyErr, err)
	}
	j.total -= s.size
}

// close stops appends. With sync set it flushes the current segment to
// disk first, which a graceful shutdown can afford.
func (j *nonceJournal) close(sync bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.shut = true
	if j.cur == nil {
		return
	}
	if sync {
		if err := j.cur.file.Sync(); err != nil {
			j.logger.Warn("nonce journal not flushed at shutdown", "path", j.cur.path, keyErr, err)
		}
	}
	j.rotateLocked()
}

// stats returns the journal's size in bytes, the failed writes and the
// segments dropped before expiry.
func (j *nonceJournal) stats() (bytes int64, writeErrors, dropped uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.total, j.writeErrors, j.dropped
}
