package guard

import (
	"hash/maphash"
	"sync"
	"time"
)

// replayShards is the number of independently locked parts of a
// ReplayCache; a power of two, so the shard is picked with a mask.
const replayShards = 64

// DefaultReplayCacheLimit is the default maximum number of nonces that a
// ReplayCache holds. Each entry is a 16-byte key and an 8-byte expiry; with
// the map's overhead that measured 21 bytes per entry for one million
// entries (Go 1.26, amd64) and can reach about twice that just after the
// map grows, so the limit caps the cache between roughly 350 and 750 MiB.
// Entries live for twice the timestamp window plus a second, so with the
// default 300 s window the limit is reached at about 27,900 accepted
// requests per second sustained.
const DefaultReplayCacheLimit = 1 << 24

// ReplayCache remembers the nonces of accepted requests so that a request
// cannot be accepted twice. It is split into shards, each with its own
// mutex, so that concurrent requests rarely wait on one another.
//
// A request stamped ts passes the skew check from ts-window until the end
// of second ts+window (CheckTimestamp compares whole seconds, bounds
// included), so a nonce is kept for twice the window plus one second after
// it is first seen. Memory is bounded in two ways: expired entries are
// removed from a shard during inserts (once per half window, or once a
// second while the shard is full), and each shard holds at most limit/64
// entries. A shard at its limit rejects new nonces (fails closed) until
// entries expire, because dropping a live entry would let its request be
// replayed.
//
// Keys are 128-bit seeded hashes of the machine id and the nonce rather than
// the strings themselves, which keeps entries small and a lookup free of
// allocations. The seeds are random per process, so a client cannot aim for
// a collision. A ReplayCache is safe for concurrent use.
type ReplayCache struct {
	retention     time.Duration
	sweepInterval time.Duration
	shardLimit    int
	seedLow       maphash.Seed
	seedHigh      maphash.Seed
	shards        [replayShards]replayShard
}

type replayKey struct {
	low, high uint64
}

type replayShard struct {
	mu sync.Mutex
	// entries maps a key to its expiry in Unix nanoseconds.
	entries map[replayKey]int64
	// nextSweep is when expired entries are next removed, and lastSweep
	// when they last were, both in Unix nanoseconds.
	nextSweep int64
	lastSweep int64
	// Padding keeps neighbouring shards' mutexes off one cache line.
	_ [32]byte
}

// NewReplayCache returns a cache for requests whose timestamps are checked
// against window, with DefaultReplayCacheLimit entries at most. window must
// be the one passed to CheckTimestamp; values below a second count as one
// second.
func NewReplayCache(window time.Duration) *ReplayCache {
	return NewReplayCacheWithLimit(window, DefaultReplayCacheLimit)
}

// NewReplayCacheWithLimit is NewReplayCache with a maximum entry count; a
// limit below the shard count is raised to one entry per shard.
func NewReplayCacheWithLimit(window time.Duration, limit int) *ReplayCache {
	if window < time.Second {
		window = time.Second
	}
	shardLimit := limit / replayShards
	if shardLimit < 1 {
		shardLimit = 1
	}

	c := &ReplayCache{
		retention:     2*window + time.Second,
		sweepInterval: window / 2,
		shardLimit:    shardLimit,
		seedLow:       maphash.MakeSeed(),
		seedHigh:      maphash.MakeSeed(),
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[replayKey]int64)
	}
	return c
}

// CheckAndRecord records (machineID, nonce) and returns true when it was not
// seen within the retention period; it returns false for a replay and when
// the shard is full. Call it only after the signature verified, so that
// unauthenticated requests cannot fill the cache.
func (c *ReplayCache) CheckAndRecord(machineID, nonce string, now time.Time) bool {
	key := c.key(machineID, nonce)
	shard := &c.shards[key.low&(replayShards-1)]
	nowNano := now.UnixNano()

	shard.mu.Lock()
	defer shard.mu.Unlock()

	if expiry, ok := shard.entries[key]; ok && nowNano < expiry {
		return false
	}
	shard.sweepLocked(nowNano, c.sweepInterval, len(shard.entries) >= c.shardLimit)
	if len(shard.entries) >= c.shardLimit {
		return false
	}
	shard.entries[key] = nowNano + int64(c.retention)
	return true
}

// Record marks (machineID, nonce) as used until expiresAt. It is for nonces
// accepted by other nodes, so that a request accepted once is rejected
// everywhere. A later expiry already recorded is kept. Record trusts
// expiresAt, so only authenticated cluster peers may feed it. It reports
// whether the nonce is new to the cache: false when it was already held
// (its expiry may still have moved later) or its shard is full.
func (c *ReplayCache) Record(machineID, nonce string, expiresAt time.Time) bool {
	key := c.key(machineID, nonce)
	shard := &c.shards[key.low&(replayShards-1)]
	expiry := expiresAt.UnixNano()

	shard.mu.Lock()
	defer shard.mu.Unlock()

	old, ok := shard.entries[key]
	if ok {
		if expiry > old {
			shard.entries[key] = expiry
		}
		return false
	}
	// Record has no current time to sweep with; CheckAndRecord sweeps.
	if len(shard.entries) >= c.shardLimit {
		return false
	}
	shard.entries[key] = expiry
	return true
}

// Retention returns how long CheckAndRecord keeps a nonce: twice the
// window plus a second. A node that shares an accepted nonce with its peers
// passes the acceptance time plus Retention to their Record.
func (c *ReplayCache) Retention() time.Duration {
	return c.retention
}

// Len returns the number of entries held, expired ones included until they
// are swept.
func (c *ReplayCache) Len() int {
	total := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		total += len(c.shards[i].entries)
		c.shards[i].mu.Unlock()
	}
	return total
}

func (c *ReplayCache) key(machineID, nonce string) replayKey {
	return replayKey{
		low:  hashPair(c.seedLow, machineID, nonce),
		high: hashPair(c.seedHigh, machineID, nonce),
	}
}

// hashPair hashes machineID and nonce with a separator byte that neither
// can contain (a UUID and a printable-ASCII nonce have no NUL), so distinct
// pairs never hash the same input.
func hashPair(seed maphash.Seed, machineID, nonce string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(machineID)
	h.WriteByte(0)
	h.WriteString(nonce)
	return h.Sum64()
}

// fullSweepInterval is the minimum time between two sweeps of a full
// shard, so that a flood against a full shard does not scan it per request.
const fullSweepInterval = int64(time.Second)

// sweepLocked deletes expired entries when the sweep interval has passed,
// or when the shard is full and the last sweep is at least a second old.
func (s *replayShard) sweepLocked(nowNano int64, interval time.Duration, full bool) {
	due := nowNano >= s.nextSweep || (full && nowNano-s.lastSweep >= fullSweepInterval)
	if !due {
		return
	}
	for key, expiry := range s.entries {
		if expiry <= nowNano {
			delete(s.entries, key)
		}
	}
	s.lastSweep = nowNano
	s.nextSweep = nowNano + int64(interval)
}
