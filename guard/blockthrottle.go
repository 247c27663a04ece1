package guard

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// BlockThrottleConfig sets when the guardrail blocks of one machine from
// one source address are rejected before signature verification. The zero
// value is not usable; start from DefaultBlockThrottleConfig.
type BlockThrottleConfig struct {
	// MaxBlocks is the number of verified guardrail blocks of one pair
	// within Window that the pair may reach without being throttled: the
	// next verified block within the window throttles it. Default 20.
	MaxBlocks int
	// Window is the length of the fixed counting window, which starts at
	// the first block of a pair. A throttled pair whose requests stop
	// being blocked for this long after its cool-down is forgotten.
	// Default 1 s.
	Window time.Duration
	// CoolDown is how long a pair stays throttled. The first request after
	// it is verified in full, and a verified block then throttles the pair
	// again at once. Default 1 s.
	CoolDown time.Duration
	// MaxPairs bounds the pairs tracked at once; it must be at least 64,
	// the number of shards. Default 65,536, which took 14 MB of heap when
	// measured with a distinct machine id per pair.
	MaxPairs int
}

// DefaultBlockThrottleConfig returns 20 blocks per second, a 1 s cool-down
// and at most 65,536 pairs tracked.
func DefaultBlockThrottleConfig() BlockThrottleConfig {
	return BlockThrottleConfig{
		MaxBlocks: 20,
		Window:    time.Second,
		CoolDown:  time.Second,
		MaxPairs:  65_536,
	}
}

// WithDefaults returns c with every zero field set from
// DefaultBlockThrottleConfig, so that a config can name only the fields
// it changes.
func (c BlockThrottleConfig) WithDefaults() BlockThrottleConfig {
	def := DefaultBlockThrottleConfig()
	if c.MaxBlocks == 0 {
		c.MaxBlocks = def.MaxBlocks
	}
	if c.Window == 0 {
		c.Window = def.Window
	}
	if c.CoolDown == 0 {
		c.CoolDown = def.CoolDown
	}
	if c.MaxPairs == 0 {
		c.MaxPairs = def.MaxPairs
	}
	return c
}

// Bounds of BlockThrottleConfig. The cool-down bounds how long a changed
// machine key goes unchecked for a throttled pair, so it stays short.
const (
	maxThrottleBlocks   = 1_000_000
	minThrottleDuration = 10 * time.Millisecond
	maxThrottleWindow   = time.Hour
	maxThrottleCoolDown = time.Minute
	maxThrottlePairs    = 10_000_000
)

// Validate returns an error naming every field that is out of range.
func (c BlockThrottleConfig) Validate() error {
	var errs []error
	if c.MaxBlocks < 1 || c.MaxBlocks > maxThrottleBlocks {
		errs = append(errs, fmt.Errorf("block throttle MaxBlocks %d is out of range; use 1 to %d", c.MaxBlocks, maxThrottleBlocks))
	}
	if c.Window < minThrottleDuration || c.Window > maxThrottleWindow {
		errs = append(errs, fmt.Errorf("block throttle Window %v is out of range; use %v to %v", c.Window, minThrottleDuration, maxThrottleWindow))
	}
	if c.CoolDown < minThrottleDuration || c.CoolDown > maxThrottleCoolDown {
		errs = append(errs, fmt.Errorf("block throttle CoolDown %v is out of range; use %v to %v", c.CoolDown, minThrottleDuration, maxThrottleCoolDown))
	}
	if c.MaxPairs < blockThrottleShards || c.MaxPairs > maxThrottlePairs {
		errs = append(errs, fmt.Errorf("block throttle MaxPairs %d is out of range; use %d to %d", c.MaxPairs, blockThrottleShards, maxThrottlePairs))
	}
	return errors.Join(errs...)
}

// blockThrottleShards is the number of independently locked parts of the
// table, so that concurrent requests of different pairs rarely wait on
// one another.
const blockThrottleShards = 64

// BlockThrottle remembers which (machine, source address) pairs a
// guardrail has blocked repeatedly, so that their further requests can be
// rejected before the Ed25519 verification that a verified block costs.
// It only records and reports: the caller decides what a throttled pair
// gets, and must still check that the request would be blocked.
//
// IPv6 sources are tracked per /64, like the lockout, because one host
// usually controls a whole /64. IPv4-mapped addresses count as IPv4, and
// the invalid address (an unknown client) is one source.
//
// Memory is bounded by MaxPairs. When a shard is full, pairs that are
// neither counting nor throttled are removed first, then pairs that are
// not throttled, then any, down to nine tenths of the shard. A flood from
// many addresses can therefore make the throttle forget pairs, which costs
// verifications, but can never make it throttle a pair it did not see
// blocked. Throttled never allocates. A BlockThrottle is safe for
// concurrent use.
type BlockThrottle struct {
	cfg BlockThrottleConfig
	// base is the origin of the monotonic offsets stored in the table.
	base          time.Time
	seed          maphash.Seed
	shardCapacity int
	shards        [blockThrottleShards]throttleShard
}

type throttleShard struct {
	mu    sync.Mutex
	pairs map[throttleKey]throttleState
	// Padding keeps two shards' mutexes off one cache line.
	_ [40]byte
}

type throttleKey struct {
	machine string
	source  netip.Addr
}

// throttleState holds offsets from BlockThrottle.base in nanoseconds.
type throttleState struct {
	windowStart int64
	blocks      int
	// throttled is set once the pair has been throttled; throttledUntil
	// is the end of its latest cool-down.
	throttled      bool
	throttledUntil int64
}

// active reports whether the pair is throttled at offset at.
func (s *throttleState) active(at int64) bool {
	return s.throttled && at < s.throttledUntil
}

// recent reports whether the pair's latest cool-down ended less than
// window before at.
func (s *throttleState) recent(at, window int64) bool {
	return s.throttled && at < s.throttledUntil+window
}

// NewBlockThrottle returns a BlockThrottle. Fields of cfg that are out of
// range take their defaults.
func NewBlockThrottle(cfg BlockThrottleConfig) *BlockThrottle {
	def := DefaultBlockThrottleConfig()
	if cfg.MaxBlocks < 1 || cfg.MaxBlocks > maxThrottleBlocks {
		cfg.MaxBlocks = def.MaxBlocks
	}
	if cfg.Window < minThrottleDuration || cfg.Window > maxThrottleWindow {
		cfg.Window = def.Window
	}
	if cfg.CoolDown < minThrottleDuration || cfg.CoolDown > maxThrottleCoolDown {
		cfg.CoolDown = def.CoolDown
	}
	if cfg.MaxPairs < blockThrottleShards || cfg.MaxPairs > maxThrottlePairs {
		cfg.MaxPairs = def.MaxPairs
	}
	t := &BlockThrottle{
		cfg:           cfg,
		base:          time.Now(),
		seed:          maphash.MakeSeed(),
		shardCapacity: cfg.MaxPairs / blockThrottleShards,
	}
	for i := range t.shards {
		t.shards[i].pairs = make(map[throttleKey]throttleState)
	}
	return t
}

// Config returns the configuration in use, defaults applied.
func (t *BlockThrottle) Config() BlockThrottleConfig { return t.cfg }

// Throttled reports whether requests of machine from source are throttled
// at now: the pair had more than MaxBlocks verified blocks within Window,
// or a verified block since its last cool-down ended, and CoolDown has not
// passed since. machine is compared as given, so pass the canonical id.
func (t *BlockThrottle) Throttled(machine string, source netip.Addr, now time.Time) bool {
	key := throttleKey{machine: machine, source: throttleSource(source)}
	shard := t.shard(key)
	at := t.offset(now)

	shard.mu.Lock()
	state, ok := shard.pairs[key]
	shard.mu.Unlock()
	return ok && state.active(at)
}

// Blocked records a guardrail block of a request from machine at source
// whose signature verified, and reports whether the pair is throttled
// from now on.
func (t *BlockThrottle) Blocked(machine string, source netip.Addr, now time.Time) bool {
	key := throttleKey{machine: machine, source: throttleSource(source)}
	shard := t.shard(key)
	at := t.offset(now)
	window, coolDown := int64(t.cfg.Window), int64(t.cfg.CoolDown)

	shard.mu.Lock()
	defer shard.mu.Unlock()
	state, ok := shard.pairs[key]
	if !ok && len(shard.pairs) >= t.shardCapacity {
		t.evict(shard, at)
	}

	switch {
	case state.recent(at, window):
		// The pair was throttled recently and is still being blocked: the
		// full verification after the cool-down confirmed the flood.
		state.throttledUntil = max(state.throttledUntil, at+coolDown)
	case !ok || at >= state.windowStart+window || at < state.windowStart:
		state = throttleState{windowStart: at, blocks: 1}
	default:
		state.blocks++
		if state.blocks > t.cfg.MaxBlocks {
			state.throttled, state.throttledUntil = true, at+coolDown
		}
	}
	shard.pairs[key] = state
	return state.active(at)
}

// Len returns the number of pairs tracked.
func (t *BlockThrottle) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.pairs)
		s.mu.Unlock()
	}
	return n
}

// evict makes room in a full shard, whose lock the caller holds. The scan
// runs once per many inserts, because it removes down to nine tenths of
// the shard's capacity.
func (t *BlockThrottle) evict(s *throttleShard, at int64) {
	window := int64(t.cfg.Window)
	for key, st := range s.pairs {
		if (at >= st.windowStart+window || at < st.windowStart) && !st.recent(at, window) {
			delete(s.pairs, key)
		}
	}
	target := t.shardCapacity * 9 / 10
	if len(s.pairs) < t.shardCapacity {
		return
	}
	for key, st := range s.pairs {
		if len(s.pairs) <= target {
			return
		}
		if !st.active(at) {
			delete(s.pairs, key)
		}
	}
	for key := range s.pairs {
		if len(s.pairs) <= target {
			return
		}
		delete(s.pairs, key)
	}
}

// shard picks the shard of key from a seeded hash, so that a caller
// cannot choose addresses that all land in one shard.
func (t *BlockThrottle) shard(key throttleKey) *throttleShard {
	h := maphash.String(t.seed, key.machine)
	a := key.source.As16()
	for i := 0; i < len(a); i += 8 {
		h ^= uint64(a[i]) | uint64(a[i+1])<<8 | uint64(a[i+2])<<16 | uint64(a[i+3])<<24 |
			uint64(a[i+4])<<32 | uint64(a[i+5])<<40 | uint64(a[i+6])<<48 | uint64(a[i+7])<<56
		h *= 0x9e3779b97f4a7c15
	}
	return &t.shards[(h>>32)%blockThrottleShards]
}

// offset converts now to nanoseconds since base, using the monotonic
// clock reading when now has one.
func (t *BlockThrottle) offset(now time.Time) int64 {
	return int64(now.Sub(t.base))
}

// throttleSource maps an address to the source it is tracked as: IPv4 as
// is (unmapped), IPv6 by its /64 prefix, without zone.
func throttleSource(ip netip.Addr) netip.Addr {
	return lockoutKey(ip)
}
