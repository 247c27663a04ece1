package guard

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// LockoutConfig sets when a source address is locked out after failed
// authentications. The zero value is not usable; start from
// DefaultLockoutConfig.
type LockoutConfig struct {
	// MaxFailures is the number of failures within Window that locks the
	// source. Default 20.
	MaxFailures int
	// Window is the length of the fixed counting window, which starts at the
	// first failure of a source. Default 1 minute.
	Window time.Duration
	// Duration is how long a locked source stays locked. Default 5 minutes.
	Duration time.Duration
	// MaxSources bounds the number of sources tracked at once. Default
	// 100,000, an estimated 10 MB.
	MaxSources int
}

// DefaultLockoutConfig returns 20 failures per minute, locked 5 minutes, at
// most 100,000 sources tracked.
func DefaultLockoutConfig() LockoutConfig {
	return LockoutConfig{
		MaxFailures: 20,
		Window:      time.Minute,
		Duration:    5 * time.Minute,
		MaxSources:  100_000,
	}
}

// Validate returns an error naming the first field that is out of range.
func (c LockoutConfig) Validate() error {
	var errs []error
	if c.MaxFailures < 1 {
		errs = append(errs, fmt.Errorf("lockout MaxFailures %d: must be at least 1", c.MaxFailures))
	}
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("lockout Window %v: must be positive", c.Window))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("lockout Duration %v: must be positive", c.Duration))
	}
	if c.MaxSources < 1 {
		errs = append(errs, fmt.Errorf("lockout MaxSources %d: must be at least 1", c.MaxSources))
	}
	return errors.Join(errs...)
}

// Lockout counts failed authentications per source and locks a source out
// once it reaches MaxFailures within Window. IPv6 sources are counted per
// /64, because one host usually controls a whole /64 and could otherwise
// step around the count. An invalid address (unknown client) is one source.
//
// Memory is bounded by MaxSources. When the table is full, expired entries
// are removed first and then unlocked entries. So a flood from many
// addresses can reset counters but cannot release a locked source, unless
// every tracked source is locked. A Lockout is safe for concurrent use.
type Lockout struct {
	cfg LockoutConfig

	mu      sync.Mutex
	sources map[netip.Addr]*lockoutEntry
}

type lockoutEntry struct {
	windowStart time.Time
	failures    int
	lockedUntil time.Time
}

// NewLockout returns a Lockout. Fields of cfg that are out of range take
// their defaults, so a partly filled config still locks.
func NewLockout(cfg LockoutConfig) *Lockout {
	def := DefaultLockoutConfig()
	if cfg.MaxFailures < 1 {
		cfg.MaxFailures = def.MaxFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = def.Window
	}
	if cfg.Duration <= 0 {
		cfg.Duration = def.Duration
	}
	if cfg.MaxSources < 1 {
		cfg.MaxSources = def.MaxSources
	}
	return &Lockout{cfg: cfg, sources: make(map[netip.Addr]*lockoutEntry)}
}

// Locked reports whether ip is locked out at now.
func (l *Lockout) Locked(ip netip.Addr, now time.Time) bool {
	key := lockoutKey(ip)

	l.mu.Lock()
	defer l.mu.Unlock()

	entry, ok := l.sources[key]
	return ok && now.Before(entry.lockedUntil)
}

// Failure records a failed authentication from ip at now. Failures while
// locked do not extend the lock.
func (l *Lockout) Failure(ip netip.Addr, now time.Time) {
	key := lockoutKey(ip)

	l.mu.Lock()
	defer l.mu.Unlock()

	entry, ok := l.sources[key]
	if !ok {
		if len(l.sources) >= l.cfg.MaxSources {
			l.evictLocked(now)
		}
		entry = &lockoutEntry{windowStart: now}
		l.sources[key] = entry
	}
	if now.Before(entry.lockedUntil) {
		return
	}
	if !now.Before(entry.windowStart.Add(l.cfg.Window)) {
		entry.windowStart = now
		entry.failures = 0
	}

	entry.failures++
	if entry.failures >= l.cfg.MaxFailures {
		entry.lockedUntil = now.Add(l.cfg.Duration)
		entry.failures = 0
		entry.windowStart = entry.lockedUntil
	}
}

// Len returns the number of sources tracked.
func (l *Lockout) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}

// evictLocked makes room when the table is full. It removes entries whose
// window and lock have both passed. If the table is still full, it drops
// unlocked entries, then any entries, until the table is at nine tenths of
// MaxSources. The scan therefore runs once per many inserts, not per insert.
func (l *Lockout) evictLocked(now time.Time) {
	for key, e := range l.sources {
		if !now.Before(e.windowStart.Add(l.cfg.Window)) && !now.Before(e.lockedUntil) {
			delete(l.sources, key)
		}
	}
	target := l.cfg.MaxSources * 9 / 10
	if len(l.sources) < l.cfg.MaxSources {
		return
	}
	for key, e := range l.sources {
		if len(l.sources) <= target {
			return
		}
		if !now.Before(e.lockedUntil) {
			delete(l.sources, key)
		}
	}
	for key := range l.sources {
		if len(l.sources) <= target {
			return
		}
		delete(l.sources, key)
	}
}

// lockoutKey maps ip to the source it counts against: IPv4 as is (unmapped),
// IPv6 by its /64 prefix.
func lockoutKey(ip netip.Addr) netip.Addr {
	if !ip.IsValid() {
		return netip.Addr{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip
	}
	prefix, _ := ip.Prefix(64)
	return prefix.Addr()
}
