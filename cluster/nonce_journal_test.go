package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func nonceBatch(machineID, nonce string, expires time.Time) []byte {
	return appendNonceRecord(nil, machineID, nonce, expires)
}

func openJournalForTest(t *testing.T, dir string, now time.Time) (*nonceJournal, []eventBlob) {
	t.Helper()
	j, blobs, err := openNonceJournal(dir, 1<<20, now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	t.Cleanup(func() { j.close(false) })
	return j, blobs
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, nonceJournalDir, "*"+journalSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

func TestNonceJournal_ReopenReturnsUnexpiredBatches(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	j, blobs := openJournalForTest(t, dir, now)
	if len(blobs) != 0 {
		t.Fatalf("a new journal returned %d batches", len(blobs))
	}
	live := nonceBatch("m1", "nonce-live", now.Add(time.Hour))
	expired := nonceBatch("m1", "nonce-expired", now.Add(time.Second))
	j.append(live, now.Add(time.Hour).UnixMilli(), now)
	j.append(expired, now.Add(time.Second).UnixMilli(), now)
	// No close: the files must be readable as a killed process leaves them.

	_, blobs = openJournalForTest(t, dir, now.Add(2*time.Second))
	if len(blobs) != 1 {
		t.Fatalf("reopened journal returned %d batches, want the 1 unexpired", len(blobs))
	}
	if !bytes.Equal(blobs[0].data, live) {
		t.Errorf("reopened batch = %x, want %x", blobs[0].data, live)
	}
}

func TestNonceJournal_TornTailKeepsEarlierFrames(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	j, _ := openJournalForTest(t, dir, now)
	first := nonceBatch("m1", "nonce-first", now.Add(time.Hour))
	j.append(first, now.Add(time.Hour).UnixMilli(), now)
	j.append(nonceBatch("m1", "nonce-second", now.Add(time.Hour)), now.Add(time.Hour).UnixMilli(), now)
	j.close(false)

	files := segmentFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("journal has %d segments, want 1", len(files))
	}
	info, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// Cut the second frame in half, as a write stopped by a full disk would.
	if err := os.Truncate(files[0], info.Size()-5); err != nil {
		t.Fatal(err)
	}
	_, blobs := openJournalForTest(t, dir, now)
	if len(blobs) != 1 || !bytes.Equal(blobs[0].data, first) {
		t.Fatalf("after a torn tail got %d batches, want only the first", len(blobs))
	}
}

func TestNonceJournal_PruneDeletesExpiredSegments(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	j, _ := openJournalForTest(t, dir, now)
	j.append(nonceBatch("m1", "nonce-a", now.Add(time.Minute)), now.Add(time.Minute).UnixMilli(), now)
	// A segment older than journalSegmentAge is finished by the next write.
	later := now.Add(journalSegmentAge)
	j.append(nonceBatch("m1", "nonce-b", later.Add(time.Hour)), later.Add(time.Hour).UnixMilli(), later)
	if got := len(segmentFiles(t, dir)); got != 2 {
		t.Fatalf("journal has %d segments, want 2", got)
	}

	j.prune(now.Add(2 * time.Minute))
	if got := len(segmentFiles(t, dir)); got != 1 {
		t.Errorf("after the first segment expired the journal has %d segments, want 1", got)
	}
	size, _, _ := j.stats()
	info, err := os.Stat(segmentFiles(t, dir)[0])
	if err != nil {
		t.Fatal(err)
	}
	if size != info.Size() {
		t.Errorf("journal reports %d bytes, the remaining segment has %d", size, info.Size())
	}
}

func TestNonceJournal_LimitDropsOldestSegments(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	j, _, err := openNonceJournal(dir, 4096, now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer j.close(false)
	at := now
	for i := range 40 {
		at = at.Add(journalSegmentAge) // every write starts a new segment
		j.append(nonceBatch("m1", fmt.Sprintf("nonce-%03d-%s", i, bytes.Repeat([]byte("x"), 100)), now.Add(time.Hour)),
			now.Add(time.Hour).UnixMilli(), at)
	}
	size, failed, dropped := j.stats()
	if size > 4096+journalFrameHeader+256 {
		t.Errorf("journal holds %d bytes, above its 4096-byte limit plus one segment", size)
	}
	if failed != 0 {
		t.Errorf("%d writes failed", failed)
	}
	if dropped == 0 {
		t.Error("no segment was dropped although 40 batches exceed the limit")
	}
}

// TestNonceJournal_SmallLimitKeepsMostAcrossReopens fills a journal of the
// smallest allowed limit, 1 MiB, to two and a half times its limit in one
// minute, then reopens it twice. Segments are an eighth of the limit, so
// staying under the limit drops only the oldest batches: each reopen must
// still find at least half a limit of nonces, on disk and in memory.
func TestNonceJournal_SmallLimitKeepsMostAcrossReopens(t *testing.T) {
	const limit = 1 << 20
	dir := t.TempDir()
	now := time.Now()
	open := func() (*nonceJournal, []eventBlob) {
		t.Helper()
		j, blobs, err := openNonceJournal(dir, limit, now, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return j, blobs
	}
	j, _ := open()
	batch := bytes.Repeat(nonceBatch("6f1c2d9e-3b4a-4c5d-8e7f-0a1b2c3d4e5f", "nonce-000000000000000000", now.Add(time.Hour)), 50)
	for written := 0; written < limit*5/2; written += len(batch) {
		j.append(batch, now.Add(time.Hour).UnixMilli(), now)
	}
	j.close(true)

	for round := range 2 {
		j, blobs := open()
		loaded := 0
		for _, b := range blobs {
			loaded += len(b.data)
		}
		size, _, _ := j.stats()
		j.close(true)
		if loaded < limit/2 || size < limit/2 {
			t.Fatalf("reopen %d: loaded %d bytes, %d on disk; want at least %d of a %d-byte limit", round, loaded, size, limit/2, limit)
		}
		if size > limit+segmentBytesFor(limit) {
			t.Fatalf("reopen %d: %d bytes on disk, above the limit plus one segment", round, size)
		}
	}
}
