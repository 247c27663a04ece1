package guard

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReplayCache_RejectsSecondUse(t *testing.T) {
	now := time.Unix(1767225600, 0)
	c := NewReplayCache(300 * time.Second)

	if !c.CheckAndRecord(testMachineID, testNonce, now) {
		t.Fatal("first use rejected")
	}
	if c.CheckAndRecord(testMachineID, testNonce, now) {
		t.Error("second use at the same instant accepted")
	}
	if c.CheckAndRecord(testMachineID, testNonce, now.Add(600*time.Second)) {
		t.Error("second use 600 s later accepted")
	}
}

func TestReplayCache_KeysAreMachineAndNonce(t *testing.T) {
	now := time.Unix(1767225600, 0)
	c := NewReplayCache(300 * time.Second)
	other := "0b7c1e2a-9f3d-4c5e-8a6b-7c8d9e0f1a2b"

	if !c.CheckAndRecord(testMachineID, testNonce, now) {
		t.Fatal("first use rejected")
	}
	if !c.CheckAndRecord(other, testNonce, now) {
		t.Error("same nonce from another machine rejected")
	}
	if !c.CheckAndRecord(testMachineID, testNonce+"x", now) {
		t.Error("another nonce from the same machine rejected")
	}
}

func TestReplayCache_EntryExpiresAfterRetention(t *testing.T) {
	now := time.Unix(1767225600, 0)
	window := 300 * time.Second
	c := NewReplayCache(window)

	c.CheckAndRecord(testMachineID, testNonce, now)
	retention := 2*window + time.Second
	if c.CheckAndRecord(testMachineID, testNonce, now.Add(retention-time.Nanosecond)) {
		t.Error("nonce accepted again just before the retention ended")
	}
	if !c.CheckAndRecord(testMachineID, testNonce, now.Add(retention)) {
		t.Error("nonce still rejected once the retention ended")
	}
}

func TestReplayCache_RecordFromPeer(t *testing.T) {
	now := time.Unix(1767225600, 0)
	c := NewReplayCache(300 * time.Second)

	c.Record(testMachineID, testNonce, now.Add(time.Minute))
	if c.CheckAndRecord(testMachineID, testNonce, now) {
		t.Error("nonce recorded by a peer accepted")
	}
	if !c.CheckAndRecord(testMachineID, testNonce, now.Add(time.Minute)) {
		t.Error("nonce still rejected after the peer's expiry")
	}
}

func TestReplayCache_RecordKeepsLaterExpiry(t *testing.T) {
	now := time.Unix(1767225600, 0)
	c := NewReplayCache(300 * time.Second)

	c.Record(testMachineID, testNonce, now.Add(10*time.Minute))
	c.Record(testMachineID, testNonce, now.Add(time.Minute))
	if c.CheckAndRecord(testMachineID, testNonce, now.Add(5*time.Minute)) {
		t.Error("an earlier expiry from a second Record shortened the entry")
	}
}

func TestReplayCache_SweepBoundsMemory(t *testing.T) {
	now := time.Unix(1767225600, 0)
	window := 300 * time.Second
	c := NewReplayCache(window)

	for i := range 5000 {
		c.CheckAndRecord(testMachineID, fmt.Sprintf("old-nonce-%d", i), now)
	}
	if got := c.Len(); got != 5000 {
		t.Fatalf("Len = %d after 5000 inserts, want 5000", got)
	}

	// Once the old entries have expired, inserts spread over every shard
	// sweep them out.
	later := now.Add(2*window + time.Second)
	for i := range 2000 {
		c.CheckAndRecord(testMachineID, fmt.Sprintf("new-nonce-%d", i), later)
	}
	if got := c.Len(); got != 2000 {
		t.Errorf("Len = %d after expiry and 2000 new inserts, want 2000", got)
	}
}

func TestReplayCache_FullCacheFailsClosed(t *testing.T) {
	now := time.Unix(1767225600, 0)
	window := 300 * time.Second
	// One entry per shard, so the 65th distinct nonce must find its shard
	// full.
	c := NewReplayCacheWithLimit(window, replayShards)

	rejected := ""
	for i := range replayShards + 1 {
		nonce := fmt.Sprintf("fill-nonce-%d", i)
		if !c.CheckAndRecord(testMachineID, nonce, now) {
			rejected = nonce
			break
		}
	}
	if rejected == "" {
		t.Fatalf("%d distinct nonces all accepted with a limit of %d", replayShards+1, replayShards)
	}
	if got := c.Len(); got > replayShards {
		t.Errorf("Len = %d, above the limit %d", got, replayShards)
	}

	// The rejected nonce is accepted once the entries it competed with
	// have expired.
	if !c.CheckAndRecord(testMachineID, rejected, now.Add(2*window+time.Second)) {
		t.Error("nonce still rejected after the full shard's entries expired")
	}
}

func TestReplayCache_ConcurrentSameNonceAcceptedOnce(t *testing.T) {
	now := time.Unix(1767225600, 0)
	c := NewReplayCache(300 * time.Second)

	var accepted atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.CheckAndRecord(testMachineID, testNonce, now) {
				accepted.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := accepted.Load(); got != 1 {
		t.Errorf("%d concurrent uses of one nonce accepted, want 1", got)
	}
}

func TestReplayCache_ReplayCheckDoesNotAllocate(t *testing.T) {
	now := time.Unix(1767225600, 0)
	c := NewReplayCache(300 * time.Second)
	c.CheckAndRecord(testMachineID, testNonce, now)

	allocs := testing.AllocsPerRun(100, func() {
		c.CheckAndRecord(testMachineID, testNonce, now)
	})
	if allocs != 0 {
		t.Errorf("replay check allocated %.1f times, want 0", allocs)
	}
}

func BenchmarkReplayCache_Parallel(b *testing.B) {
	const count = 1 << 16
	nonces := make([]string, count)
	for i := range nonces {
		nonces[i] = fmt.Sprintf("bench-nonce-%08d", i)
	}
	c := NewReplayCache(300 * time.Second)
	now := time.Unix(1767225600, 0)
	var offset atomic.Uint32

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(offset.Add(7919))
		for pb.Next() {
			c.CheckAndRecord(testMachineID, nonces[i%count], now)
			i++
		}
	})
}

// TestReplayCache_RecordReportsNew reports a nonce new to the cache, and
// keeps the later expiry of one already held without reporting it.
func TestReplayCache_RecordReportsNew(t *testing.T) {
	c := NewReplayCache(time.Minute)
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if !c.Record("m1", "n1", at) {
		t.Fatal("a new nonce was not reported as recorded")
	}
	if c.Record("m1", "n1", at) {
		t.Fatal("a nonce already held until the same time was reported as recorded")
	}
	if c.Record("m1", "n1", at.Add(-time.Second)) {
		t.Fatal("an earlier expiry was reported as recorded")
	}
	if c.Record("m1", "n1", at.Add(time.Hour)) {
		t.Fatal("a later expiry of a held nonce was reported as new")
	}
	if c.CheckAndRecord("m1", "n1", at.Add(30*time.Minute)) {
		t.Fatal("the nonce left the cache before the later expiry it was given")
	}
	if !c.Record("m2", "n1", at) {
		t.Fatal("the same nonce of another machine was not reported as recorded")
	}
}
