package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/keyward/keyward/guard"
)

// DefaultMachineCacheEntries is the default number of machine entries a
// node keeps in memory: about 150 MiB for machines with a few grants. A
// machine outside the cache costs one read of its record from the store
// (tens of microseconds) on its next request, so the bound only needs to
// cover the machines that sign requests often.
const DefaultMachineCacheEntries = 262_144

// MaxMachineCacheEntries bounds the machine cache: 100 million entries
// would take about 60 GB.
const MaxMachineCacheEntries = 100_000_000

// store guards the reads that the indexes make from Pebble outside apply
// against Close: a read holds the read lock, and Close takes the write
// lock before it closes the store.
type store struct {
	mu     sync.RWMutex
	db     *pebble.DB
	closed bool
	log    *slog.Logger
}

// read calls fn with the store unless it is closed, and reports whether
// it did.
func (s *store) read(fn func(db *pebble.DB)) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	fn(s.db)
	return true
}

// close marks the store closed once no read is running.
func (s *store) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// machineCache holds the entries of the machines that were read or
// changed recently and reads the others from the store on demand, so that
// memory and start-up time do not grow with the number of machines.
//
// Each of its shards is a map with a CLOCK ring for eviction, as in
// guard.KeyCache. Apply publishes every changed machine into the cache,
// whether or not it was there, and bumps the shard's generation. A read
// that misses loads the record from the store and adds it only if the
// generation did not move meanwhile. If it moved, apply may have published
// a newer entry or a purge after the record was read, so the copy read
// must not be cached.
type machineCache struct {
	store  *store
	shards [shardCount]machineShard

	loadErrors atomic.Uint64

	// loaded, when set by a test, runs after a miss read the store and
	// before the entry is added, where apply may publish a change.
	loaded func(MachineID)
}

type machineShard struct {
	mu       sync.RWMutex
	entries  map[MachineID]*cachedMachine
	ring     []*cachedMachine
	hand     int
	capacity int
	// gen counts the changes apply published to this shard.
	gen uint64

	hits, misses, evictions atomic.Uint64
	// Padding keeps neighbouring shards' locks off one cache line.
	_ [24]byte
}

// cachedMachine is one slot of a shard. entry is replaced under the
// shard's write lock; referenced is set by hits and cleared by the sweep.
type cachedMachine struct {
	id         MachineID
	entry      *MachineEntry
	referenced atomic.Bool
}

func newMachineCache(st *store, capacity int) *machineCache {
	if capacity <= 0 {
		capacity = DefaultMachineCacheEntries
	}
	capacity = min(capacity, MaxMachineCacheEntries)
	// Every shard holds at least one entry, so the bound is rounded up to
	// a multiple of the shard count.
	per := capacity / shardCount
	if capacity%shardCount != 0 {
		per++
	}
	c := &machineCache{store: st}
	for i := range c.shards {
		c.shards[i].entries = make(map[MachineID]*cachedMachine)
		c.shards[i].capacity = per
	}
	return c
}

// get returns the entry of machine id, from memory or else from the
// store. A record that cannot be read or decoded is logged, counted and
// reported as not found, so a damaged record fails closed.
func (c *machineCache) get(id MachineID) (*MachineEntry, bool) {
	return c.lookup(id, true)
}

// peek is get without adding a loaded entry to the cache, for walks over
// many machines that would otherwise evict the ones in use.
func (c *machineCache) peek(id MachineID) (*MachineEntry, bool) {
	return c.lookup(id, false)
}

func (c *machineCache) lookup(id MachineID, fill bool) (*MachineEntry, bool) {
	sh := &c.shards[shardOf(id)]
	sh.mu.RLock()
	slot := sh.entries[id]
	var e *MachineEntry
	if slot != nil {
		e = slot.entry
	}
	gen := sh.gen
	sh.mu.RUnlock()
	if e != nil {
		if !slot.referenced.Load() {
			slot.referenced.Store(true)
		}
		sh.hits.Add(1)
		return e, true
	}

	sh.misses.Add(1)
	e, err := c.load(id)
	if err != nil {
		c.loadErrors.Add(1)
		c.store.log.Error("read machine record failed; the machine is treated as unknown", "machine_id", id, "error", err)
		return nil, false
	}
	if e == nil {
		return nil, false
	}
	if c.loaded != nil {
		c.loaded(id)
	}
	if fill {
		sh.mu.Lock()
		if sh.gen == gen && sh.entries[id] == nil {
			sh.insertLocked(id, e)
		}
		sh.mu.Unlock()
	}
	return e, true
}

// load reads and decodes a machine record. It returns nil without an
// error when the machine does not exist or the store is closed.
func (c *machineCache) load(id MachineID) (*MachineEntry, error) {
	var e *MachineEntry
	var err error
	c.store.read(func(db *pebble.DB) {
		raw, closer, getErr := db.Get([]byte(machineKey(id)))
		if errors.Is(getErr, pebble.ErrNotFound) {
			return
		}
		if getErr != nil {
			err = getErr
			return
		}
		defer closer.Close()
		e, err = decodeMachineEntry(raw)
	})
	return e, err
}

// decodeMachineEntry builds the entry of a stored machine record.
func decodeMachineEntry(value []byte) (*MachineEntry, error) {
	var m Machine
	if err := json.Unmarshal(value, &m); err != nil {
		return nil, err
	}
	key, err := guard.ParsePublicKey(m.PublicKey)
	if err != nil {
		return nil, err
	}
	policy, err := compileGuardrails(m.Guardrails)
	if err != nil {
		return nil, fmt.Errorf("guardrails: %w", err)
	}
	return newMachineEntry(m, key, policy), nil
}

// publish installs a committed change of one machine: its new entry, or
// its removal when e is nil.
func (c *machineCache) publish(id MachineID, e *MachineEntry) {
	sh := &c.shards[shardOf(id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.gen++
	slot := sh.entries[id]
	switch {
	case e == nil && slot != nil:
		// The ring slot stays until the sweep reuses it.
		slot.entry = nil
		delete(sh.entries, id)
	case e != nil && slot != nil:
		slot.entry = e
	case e != nil:
		sh.insertLocked(id, e)
	}
}

// insertLocked adds an entry for id, replacing the first slot the clock
// hand finds that is empty or was not referenced since the hand last
// passed it.
func (sh *machineShard) insertLocked(id MachineID, e *MachineEntry) {
	slot := &cachedMachine{id: id, entry: e}
	sh.entries[id] = slot
	if len(sh.ring) < sh.capacity {
		sh.ring = append(sh.ring, slot)
		return
	}
	// Each pass clears the bits it skips, so the loop ends within two
	// turns of the ring.
	for {
		victim := sh.ring[sh.hand]
		if victim.entry != nil && victim.referenced.Load() {
			victim.referenced.Store(false)
			sh.hand = (sh.hand + 1) % len(sh.ring)
			continue
		}
		if victim.entry != nil {
			delete(sh.entries, victim.id)
			sh.evictions.Add(1)
		}
		sh.ring[sh.hand] = slot
		sh.hand = (sh.hand + 1) % len(sh.ring)
		return
	}
}

// MachineCacheStats counts the machine cache's lookups since the state
// was opened or last restored.
type MachineCacheStats struct {
	// Entries is the number of machines held and Capacity the maximum.
	Entries, Capacity int
	// Hits and Misses count lookups served from memory and from the
	// store, Evictions the entries dropped to make room, and LoadErrors
	// the records that could not be read or decoded.
	Hits, Misses, Evictions, LoadErrors uint64
}

func (c *machineCache) stats() MachineCacheStats {
	st := MachineCacheStats{LoadErrors: c.loadErrors.Load()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		st.Entries += len(sh.entries)
		st.Capacity += sh.capacity
		sh.mu.RUnlock()
		st.Hits += sh.hits.Load()
		st.Misses += sh.misses.Load()
		st.Evictions += sh.evictions.Load()
	}
	return st
}

// MachineCacheStats returns the counts of the machine cache.
func (f *FSM) MachineCacheStats() MachineCacheStats {
	return f.idx.Load().machines.stats()
}
