package guard

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// DefaultKeyCacheBytes is the default memory bound of a KeyCache: 64 MiB,
// room for 32,768 expanded keys. A machine whose key is not cached costs
// one expansion (about a third of a verification) on its next request, so
// the bound only needs to cover the machines that sign requests often.
const DefaultKeyCacheBytes = 64 << 20

// KeyCacheEntryBytes is the memory one cached key is charged: the expanded
// key of curve25519-voi (about 1.5 KiB), the entry, its map and ring slots,
// and the unused room of partly filled heap spans.
// TestKeyCache_EntryBytesMatchHeap checks that a full cache holds no more
// than this per entry. It measured about 1,930 bytes of heap spans in use
// per entry (Go 1.26, amd64).
const KeyCacheEntryBytes = 2_048

// maxKeyCacheShards is the maximum number of independently locked parts of
// a KeyCache. It is a power of two, so the shard is picked with a mask.
const maxKeyCacheShards = 64

// minKeyCacheShardEntries is the fewest entries a shard is given when the
// cache is small, so that each shard's eviction order stays close to the
// whole cache's.
const minKeyCacheShardEntries = 16

// KeyCache keeps expanded public keys (ExpandedPublicKey) for the keys that
// verify requests, so that a node stores 32 bytes per machine and about
// 2 KiB only for the machines that are active. It is bounded by memory:
// past the bound, each new key replaces one that was not used since the
// clock hand last passed it (the CLOCK approximation of least recently
// used).
//
// Entries are keyed by the raw key bytes, never by a machine id, so a
// machine whose key changes or that is removed can never verify with a
// stale entry. A lookup that finds its key takes a shard's read lock and
// does not allocate. A KeyCache is safe for concurrent use. Make one with
// NewKeyCache, because the zero value has no shards.
type KeyCache struct {
	shards []keyCacheShard
	// seed and mask pick a key's shard.
	seed maphash.Seed
	mask uint64
	// capacity is the maximum number of entries of all shards together.
	capacity int
}

type keyCacheShard struct {
	mu      sync.RWMutex
	entries map[[PublicKeySize]byte]*keyCacheEntry
	// ring holds the entries in insertion order for the CLOCK sweep, and
	// hand is the next slot the sweep looks at.
	ring     []*keyCacheEntry
	hand     int
	capacity int

	hits      atomic.Uint64
	misses    atomic.Uint64
	evictions atomic.Uint64
	// Padding keeps neighbouring shards' locks off one cache line.
	_ [40]byte
}

type keyCacheEntry struct {
	key ExpandedPublicKey
	raw [PublicKeySize]byte
	// referenced is set by every hit and cleared by the sweep.
	referenced atomic.Bool
}

// NewKeyCache returns a cache that holds at most maxBytes of expanded keys,
// charged KeyCacheEntryBytes each. A maxBytes below one entry disables the
// cache: every verification then decompresses the key, which costs about
// a quarter more than with an expanded key.
func NewKeyCache(maxBytes int64) *KeyCache {
	capacity := int64(0)
	if maxBytes > 0 {
		capacity = maxBytes / KeyCacheEntryBytes
	}
	shards := 0
	if capacity > 0 {
		shards = 1
		for shards < maxKeyCacheShards && int64(shards*2*minKeyCacheShardEntries) <= capacity {
			shards *= 2
		}
	}

	c := &KeyCache{shards: make([]keyCacheShard, shards), seed: maphash.MakeSeed(), capacity: int(capacity)}
	if shards > 0 {
		c.mask = uint64(shards - 1)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		// Spread the capacity so that the shards add up to it exactly.
		sh.capacity = int(capacity / int64(shards))
		if int64(i) < capacity%int64(shards) {
			sh.capacity++
		}
		sh.entries = make(map[[PublicKeySize]byte]*keyCacheEntry, sh.capacity)
		sh.ring = make([]*keyCacheEntry, 0, sh.capacity)
	}
	return c
}

// Capacity returns the maximum number of keys the cache holds. Zero means
// it caches nothing.
func (c *KeyCache) Capacity() int {
	return c.capacity
}

// VerifyBatched is Verify with the expanded key handed to batch, so that
// the signature may be verified together with those of concurrent
// requests. A cache of no capacity verifies each signature on its own with
// the raw key, so that no request allocates an expanded key.
func (c *KeyCache) VerifyBatched(batch *BatchVerifier, pk *PublicKey, msg, sig []byte) bool {
	if c.capacity == 0 || batch == nil {
		return c.Verify(pk, msg, sig)
	}
	if len(sig) != SignatureSize {
		return false
	}
	return batch.Verify(c.Expanded(pk), msg, sig)
}

// Verify reports whether sig is a valid signature of msg under pk, with the
// rule of PublicKey.Verify. It uses the cached expanded key, and on a miss
// expands pk and caches it.
func (c *KeyCache) Verify(pk *PublicKey, msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	if len(c.shards) == 0 {
		return pk.Verify(msg, sig)
	}
	return c.Expanded(pk).Verify(msg, sig)
}

// Expanded returns the expanded form of pk from the cache, expanding and
// caching it on a miss. On a hit it does not allocate.
func (c *KeyCache) Expanded(pk *PublicKey) *ExpandedPublicKey {
	if len(c.shards) == 0 {
		return pk.Expand()
	}
	// The shard hash is seeded per process, so that keys cannot be chosen
	// to fall into one shard.
	sh := &c.shards[maphash.Bytes(c.seed, pk.raw[:])&c.mask]

	sh.mu.RLock()
	e := sh.entries[pk.raw]
	sh.mu.RUnlock()
	if e != nil {
		if !e.referenced.Load() {
			e.referenced.Store(true)
		}
		sh.hits.Add(1)
		return &e.key
	}

	sh.misses.Add(1)
	// Expand outside the lock: it takes about a third of a verification.
	fresh := &keyCacheEntry{key: *pk.Expand(), raw: pk.raw}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.entries[pk.raw]; e != nil {
		// Another request expanded the same key meanwhile.
		return &e.key
	}
	sh.insertLocked(fresh)
	return &fresh.key
}

// insertLocked adds e, replacing the first entry the clock hand finds that
// was not referenced since the hand last passed it. Entries are never
// changed in place, because a verification may still be using an evicted
// one.
func (sh *keyCacheShard) insertLocked(e *keyCacheEntry) {
	sh.entries[e.raw] = e
	if len(sh.ring) < sh.capacity {
		sh.ring = append(sh.ring, e)
		return
	}
	// Each pass clears the bits it skips, so the loop ends within two
	// turns of the ring.
	for {
		victim := sh.ring[sh.hand]
		if victim.referenced.Load() {
			victim.referenced.Store(false)
			sh.hand = (sh.hand + 1) % len(sh.ring)
			continue
		}
		delete(sh.entries, victim.raw)
		sh.ring[sh.hand] = e
		sh.hand = (sh.hand + 1) % len(sh.ring)
		sh.evictions.Add(1)
		return
	}
}

// KeyCacheStats counts a KeyCache's lookups since it was created.
type KeyCacheStats struct {
	// Entries is the number of keys held and Capacity the maximum.
	Entries, Capacity int
	// Hits and Misses count lookups that found their key or expanded it,
	// and Evictions counts keys dropped to make room.
	Hits, Misses, Evictions uint64
}

// Stats returns the current counts. It takes each shard's lock briefly.
func (c *KeyCache) Stats() KeyCacheStats {
	var st KeyCacheStats
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		st.Entries += len(sh.ring)
		sh.mu.RUnlock()
		st.Capacity += sh.capacity
		st.Hits += sh.hits.Load()
		st.Misses += sh.misses.Load()
		st.Evictions += sh.evictions.Load()
	}
	return st
}
