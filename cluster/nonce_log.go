package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// eventBlob is one batch of peer event records. Its data is never changed
// after creation, so one blob is shared by the log and every peer queue.
type eventBlob struct {
	seq  uint64
	data []byte
	// expires is the latest nonce expiry in data, in Unix milliseconds;
	// zero when data holds no nonce.
	expires int64
}

// nonceLog keeps the batches that carry nonces until their last nonce
// expires, so that a peer that restarts can pull every nonce that the
// cluster accepted within the replay window. It is bounded in bytes; when
// full it drops the oldest batch and counts it.
type nonceLog struct {
	limit int
	// journal, when set, receives every batch that add keeps.
	journal atomic.Pointer[nonceJournal]

	mu sync.Mutex
	// blobs are in ascending seq order.
	blobs   []*eventBlob
	bytes   int
	nextSeq uint64
	dropped uint64
}

func newNonceLog(limit int) *nonceLog {
	return &nonceLog{limit: limit, nextSeq: 1}
}

// add appends data, which the log keeps without copying, and returns the
// new blob. A blob without nonces is returned but not kept. A kept blob is
// also appended to the journal.
func (l *nonceLog) add(data []byte, expires int64) *eventBlob {
	b := l.keep(data, expires)
	if j := l.journal.Load(); expires != 0 && j != nil {
		j.append(data, expires, time.Now())
	}
	return b
}

// keep is add without the journal, for batches read from it.
func (l *nonceLog) keep(data []byte, expires int64) *eventBlob {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &eventBlob{seq: l.nextSeq, data: data, expires: expires}
	l.nextSeq++
	if expires == 0 {
		return b
	}
	l.blobs = append(l.blobs, b)
	l.bytes += len(data)
	for l.bytes > l.limit && len(l.blobs) > 1 {
		l.bytes -= len(l.blobs[0].data)
		l.blobs[0] = nil
		l.blobs = l.blobs[1:]
		l.dropped++
	}
	return b
}

// prune drops the batches whose every nonce has expired, from memory and
// from the journal. Batches expire roughly in order, so it stops at the
// first live one.
func (l *nonceLog) prune(now time.Time) {
	if j := l.journal.Load(); j != nil {
		j.prune(now)
	}
	nowMs := now.UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.blobs) && l.blobs[i].expires <= nowMs {
		l.bytes -= len(l.blobs[i].data)
		l.blobs[i] = nil
		i++
	}
	l.blobs = l.blobs[i:]
}

// page returns the live batches with seq at or above cursor, concatenated
// up to about maxBytes, and the cursor for the next page. An empty result
// means the reader has everything.
func (l *nonceLog) page(cursor uint64, maxBytes int, now time.Time) ([]byte, uint64) {
	nowMs := now.UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	start := sort.Search(len(l.blobs), func(i int) bool { return l.blobs[i].seq >= cursor })
	var out []byte
	next := cursor
	for _, b := range l.blobs[start:] {
		if len(out) > 0 && len(out)+len(b.data) > maxBytes {
			break
		}
		next = b.seq + 1
		if b.expires > nowMs {
			out = append(out, b.data...)
		}
	}
	return out, next
}

// droppedBatches returns the number of batches dropped because the log was
// full.
func (l *nonceLog) droppedBatches() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// nonceFileMagic starts the file in which earlier versions kept the nonce
// log across a graceful restart. Start reads such a file once into the
// journal and deletes it.
const nonceFileMagic = "KWNONCE1"

// nonceFileName is the file under DataDir.
const nonceFileName = "nonces"

// readNonceFile returns the records of the nonce file at path, at most
// limit bytes of them, or nil when there is no file.
func readNonceFile(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open nonce file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(len(nonceFileMagic)+limit)))
	if err != nil {
		return nil, fmt.Errorf("read nonce file %s: %w", path, err)
	}
	if !bytes.HasPrefix(data, []byte(nonceFileMagic)) {
		return nil, fmt.Errorf("%w: %s is not a nonce file", ErrProtocol, path)
	}
	return data[len(nonceFileMagic):], nil
}

func nonceFilePath(dataDir string) string {
	return filepath.Join(dataDir, nonceFileName)
}
