package guard

import (
	"crypto/ed25519"
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
)

// testKeys returns n distinct parsed keys with a signature of msg by each.
func testKeys(t testing.TB, n int, msg []byte) ([]*PublicKey, [][]byte) {
	t.Helper()
	keys := make([]*PublicKey, n)
	sigs := make([][]byte, n)
	seed := make([]byte, ed25519.SeedSize)
	for i := range n {
		binary.LittleEndian.PutUint64(seed, uint64(i)+1)
		priv := ed25519.NewKeyFromSeed(seed)
		pk, err := ParsePublicKey(priv.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		keys[i], sigs[i] = pk, ed25519.Sign(priv, msg)
	}
	return keys, sigs
}

func TestKeyCache_VerifyMatchesPublicKey(t *testing.T) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 3, msg)
	cache := NewKeyCache(DefaultKeyCacheBytes)
	for i, pk := range keys {
		for round := range 2 {
			if !cache.Verify(pk, msg, sigs[i]) {
				t.Errorf("key %d round %d: valid signature rejected", i, round)
			}
			other := sigs[(i+1)%len(sigs)]
			if cache.Verify(pk, msg, other) {
				t.Errorf("key %d round %d: another key's signature accepted", i, round)
			}
			if cache.Verify(pk, msg, sigs[i][:63]) {
				t.Errorf("key %d round %d: 63-byte signature accepted", i, round)
			}
		}
	}
	st := cache.Stats()
	if st.Entries != 3 {
		t.Errorf("Entries = %d, want 3", st.Entries)
	}
	if st.Misses != 3 {
		t.Errorf("Misses = %d, want 3 (one per key)", st.Misses)
	}
	// 2 rounds × (1 valid + 1 foreign) checks per key, less the 3 misses;
	// the 63-byte signatures never reach the cache.
	if st.Hits != 3*2*2-3 {
		t.Errorf("Hits = %d, want %d", st.Hits, 3*2*2-3)
	}
}

func TestKeyCache_HitDoesNotAllocate(t *testing.T) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 1, msg)
	cache := NewKeyCache(DefaultKeyCacheBytes)
	cache.Verify(keys[0], msg, sigs[0])

	allocs := testing.AllocsPerRun(50, func() {
		if !cache.Verify(keys[0], msg, sigs[0]) {
			t.Fatal("valid signature rejected")
		}
	})
	if allocs != 0 {
		t.Errorf("cached verification allocated %.1f times, want 0", allocs)
	}
}

func TestKeyCache_StaysWithinCapacity(t *testing.T) {
	msg := benchmarkMessage()
	const capacity = 40
	keys, sigs := testKeys(t, 3*capacity, msg)
	cache := NewKeyCache(capacity * KeyCacheEntryBytes)
	if got := cache.Stats().Capacity; got != capacity {
		t.Fatalf("Capacity = %d, want %d", got, capacity)
	}
	for i, pk := range keys {
		if !cache.Verify(pk, msg, sigs[i]) {
			t.Fatalf("key %d: valid signature rejected", i)
		}
	}
	st := cache.Stats()
	if st.Entries > capacity {
		t.Errorf("Entries = %d, want at most %d", st.Entries, capacity)
	}
	if want := uint64(len(keys) - st.Entries); st.Evictions != want {
		t.Errorf("Evictions = %d, want %d", st.Evictions, want)
	}
	// Evicted keys still verify: they are expanded again.
	for i, pk := range keys {
		if !cache.Verify(pk, msg, sigs[i]) {
			t.Errorf("key %d after eviction: valid signature rejected", i)
		}
	}
}

func TestKeyCache_KeepsReferencedKeys(t *testing.T) {
	msg := benchmarkMessage()
	// A capacity below two shards' minimum gives one shard, so the eviction
	// order is the whole cache's.
	const capacity = minKeyCacheShardEntries
	keys, sigs := testKeys(t, 4*capacity, msg)
	cache := NewKeyCache(capacity * KeyCacheEntryBytes)
	if len(cache.shards) != 1 {
		t.Fatalf("cache has %d shards, want 1", len(cache.shards))
	}

	hot := keys[0]
	cache.Verify(hot, msg, sigs[0])
	for i := 1; i < len(keys); i++ {
		cache.Verify(keys[i], msg, sigs[i])
		// The hot key is used between every two new keys.
		cache.Verify(hot, msg, sigs[0])
	}
	before := cache.Stats().Misses
	cache.Verify(hot, msg, sigs[0])
	if after := cache.Stats().Misses; after != before {
		t.Error("a key used between every insertion was evicted")
	}
}

func TestKeyCache_ZeroBytesDisablesCaching(t *testing.T) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 1, msg)
	for _, size := range []int64{0, -1, KeyCacheEntryBytes - 1} {
		cache := NewKeyCache(size)
		if !cache.Verify(keys[0], msg, sigs[0]) {
			t.Errorf("size %d: valid signature rejected", size)
		}
		if cache.Verify(keys[0], []byte("other"), sigs[0]) {
			t.Errorf("size %d: signature of another message accepted", size)
		}
		if st := cache.Stats(); st.Entries != 0 || st.Capacity != 0 {
			t.Errorf("size %d: stats %+v, want an empty cache", size, st)
		}
	}
}

func TestKeyCache_ConcurrentUseWithEvictions(t *testing.T) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(t, 64, msg)
	cache := NewKeyCache(20 * KeyCacheEntryBytes)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := (g*31 + i*7) % len(keys)
				if !cache.Verify(keys[k], msg, sigs[k]) {
					errs <- "valid signature rejected"
					return
				}
				if cache.Verify(keys[k], msg, sigs[(k+1)%len(keys)]) {
					errs <- "another key's signature accepted"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if st := cache.Stats(); st.Entries > st.Capacity {
		t.Errorf("Entries = %d, above Capacity %d", st.Entries, st.Capacity)
	}
}

// TestKeyCache_EntryBytesMatchHeap fills a cache and checks that the heap
// it holds per entry stays within KeyCacheEntryBytes, so that a byte bound
// given to NewKeyCache holds.
func TestKeyCache_EntryBytesMatchHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 8,000 keys")
	}
	msg := benchmarkMessage()
	const capacity = 4_000
	// Twice the capacity of keys fills every shard, however the keys fall.
	keys, sigs := testKeys(t, 2*capacity, msg)

	before := heapInUse()
	cache := NewKeyCache(capacity * KeyCacheEntryBytes)
	for i, pk := range keys {
		cache.Verify(pk, msg, sigs[i])
	}
	perEntry := float64(heapInUse()-before) / capacity
	runtime.KeepAlive(cache)
	t.Logf("heap per entry: %.0f bytes", perEntry)

	if st := cache.Stats(); st.Entries != capacity {
		t.Fatalf("Entries = %d, want %d", st.Entries, capacity)
	}
	if perEntry > KeyCacheEntryBytes {
		t.Errorf("heap per entry = %.0f bytes, above KeyCacheEntryBytes (%d)", perEntry, KeyCacheEntryBytes)
	}
}

// heapInUse returns the heap spans in use after two collections, which
// counts the unused room of partly filled spans as well as the objects.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// BenchmarkKeyCache_Hit measures a verification whose expanded key is
// cached, from every core, over 1,024 keys.
func BenchmarkKeyCache_Hit(b *testing.B) {
	msg := benchmarkMessage()
	keys, sigs := testKeys(b, 1024, msg)
	cache := NewKeyCache(DefaultKeyCacheBytes)
	for i, pk := range keys {
		cache.Verify(pk, msg, sigs[i])
	}
	var next sync.Mutex
	start := 0

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		i := start
		start += 97
		next.Unlock()
		for pb.Next() {
			k := i % len(keys)
			if !cache.Verify(keys[k], msg, sigs[k]) {
				b.Fatal("valid signature rejected")
			}
			i++
		}
	})
}

// BenchmarkKeyCache_Lookup measures the cache lookup alone, without the
// verification.
func BenchmarkKeyCache_Lookup(b *testing.B) {
	msg := benchmarkMessage()
	keys, _ := testKeys(b, 1024, msg)
	cache := NewKeyCache(DefaultKeyCacheBytes)
	for _, pk := range keys {
		cache.Expanded(pk)
	}

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			cache.Expanded(keys[i%len(keys)])
			i++
		}
	})
}
