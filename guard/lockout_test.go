package guard

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLockout_LocksAfterMaxFailures(t *testing.T) {
	cfg := DefaultLockoutConfig()
	l := NewLockout(cfg)
	ip := addr("198.51.100.20")
	now := utc("2026-06-01T12:00:00Z")

	for i := range cfg.MaxFailures - 1 {
		l.Failure(ip, now.Add(time.Duration(i)*time.Second))
	}
	if l.Locked(ip, now.Add(30*time.Second)) {
		t.Fatalf("locked after %d failures, limit %d", cfg.MaxFailures-1, cfg.MaxFailures)
	}

	l.Failure(ip, now.Add(30*time.Second))
	if !l.Locked(ip, now.Add(30*time.Second)) {
		t.Fatalf("not locked after %d failures", cfg.MaxFailures)
	}
	if !l.Locked(ip, now.Add(30*time.Second+cfg.Duration-time.Nanosecond)) {
		t.Error("lock ended before Duration passed")
	}
	if l.Locked(ip, now.Add(30*time.Second+cfg.Duration)) {
		t.Error("still locked once Duration passed")
	}
	if l.Locked(addr("198.51.100.21"), now.Add(30*time.Second)) {
		t.Error("another address locked")
	}
}

func TestLockout_WindowResets(t *testing.T) {
	cfg := LockoutConfig{MaxFailures: 3, Window: time.Minute, Duration: 5 * time.Minute, MaxSources: 10}
	l := NewLockout(cfg)
	ip := addr("198.51.100.20")
	now := utc("2026-06-01T12:00:00Z")

	l.Failure(ip, now)
	l.Failure(ip, now.Add(30*time.Second))
	// The window started at the first failure, so this one starts a new
	// window instead of reaching the limit.
	l.Failure(ip, now.Add(time.Minute))
	if l.Locked(ip, now.Add(time.Minute)) {
		t.Error("failures from two windows added up to a lock")
	}
	l.Failure(ip, now.Add(70*time.Second))
	l.Failure(ip, now.Add(80*time.Second))
	if !l.Locked(ip, now.Add(80*time.Second)) {
		t.Error("three failures in one window did not lock")
	}
}

func TestLockout_FailuresWhileLockedDoNotExtend(t *testing.T) {
	cfg := LockoutConfig{MaxFailures: 1, Window: time.Minute, Duration: 5 * time.Minute, MaxSources: 10}
	l := NewLockout(cfg)
	ip := addr("198.51.100.20")
	now := utc("2026-06-01T12:00:00Z")

	l.Failure(ip, now)
	l.Failure(ip, now.Add(4*time.Minute))
	if l.Locked(ip, now.Add(5*time.Minute)) {
		t.Error("a failure while locked extended the lock")
	}
}

func TestLockout_SourceKeys(t *testing.T) {
	cfg := LockoutConfig{MaxFailures: 2, Window: time.Minute, Duration: time.Minute, MaxSources: 10}
	now := utc("2026-06-01T12:00:00Z")
	tests := []struct {
		name          string
		first, second string
		sameSource    bool
	}{
		{"IPv4-mapped counts as IPv4", "203.0.113.7", "::ffff:203.0.113.7", true},
		{"one IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"two IPv6 /64s", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"two IPv4 addresses", "203.0.113.7", "203.0.113.8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLockout(cfg)
			l.Failure(addr(tt.first), now)
			l.Failure(addr(tt.second), now)
			if got := l.Locked(addr(tt.first), now); got != tt.sameSource {
				t.Errorf("Locked = %v, want %v", got, tt.sameSource)
			}
		})
	}
}

func TestLockout_BoundedAndKeepsLockedSources(t *testing.T) {
	cfg := LockoutConfig{MaxFailures: 2, Window: time.Minute, Duration: time.Hour, MaxSources: 100}
	l := NewLockout(cfg)
	now := utc("2026-06-01T12:00:00Z")
	locked := addr("198.51.100.1")
	l.Failure(locked, now)
	l.Failure(locked, now)

	// A flood of single failures from many addresses, each below the
	// limit, fills the table but must not push the locked source out.
	for i := range 1000 {
		l.Failure(netip.AddrFrom4([4]byte{203, 0, byte(113 + i/256), byte(i)}), now)
	}
	if got := l.Len(); got > cfg.MaxSources {
		t.Errorf("Len = %d, above MaxSources %d", got, cfg.MaxSources)
	}
	if !l.Locked(locked, now) {
		t.Error("locked source released by the flood")
	}
}

func TestLockoutConfig_Validate(t *testing.T) {
	if err := DefaultLockoutConfig().Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
	tests := []struct {
		field  string
		modify func(*LockoutConfig)
	}{
		{"MaxFailures", func(c *LockoutConfig) { c.MaxFailures = 0 }},
		{"Window", func(c *LockoutConfig) { c.Window = -time.Second }},
		{"Duration", func(c *LockoutConfig) { c.Duration = 0 }},
		{"MaxSources", func(c *LockoutConfig) { c.MaxSources = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			cfg := DefaultLockoutConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}
