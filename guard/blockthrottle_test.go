package guard

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	throttleMachine = "0f9c3a52-8d4e-4b6a-9f3e-6c1d2b7a8e01"
	otherMachine    = "5b2e7c14-1a3f-4d8b-8c6e-9e0f1a2b3c4d"
)

func testThrottleConfig() BlockThrottleConfig {
	return BlockThrottleConfig{MaxBlocks: 3, Window: time.Second, CoolDown: time.Second, MaxPairs: 640}
}

// blockN records n verified blocks of the pair, 10 ms apart from start,
// and returns the time of the last one.
func blockN(bt *BlockThrottle, machine string, ip netip.Addr, start time.Time, n int) time.Time {
	at := start
	for i := range n {
		at = start.Add(time.Duration(i) * 10 * time.Millisecond)
		bt.Blocked(machine, ip, at)
	}
	return at
}

func TestBlockThrottle_ThrottlesPastMaxBlocks(t *testing.T) {
	bt := NewBlockThrottle(testThrottleConfig())
	ip := addr("198.51.100.7")
	now := utc("2026-06-01T12:00:00Z")

	last := blockN(bt, throttleMachine, ip, now, 3)
	if bt.Throttled(throttleMachine, ip, last) {
		t.Fatal("throttled after MaxBlocks blocks; the limit is more than MaxBlocks")
	}
	if !bt.Blocked(throttleMachine, ip, last.Add(10*time.Millisecond)) {
		t.Fatal("Blocked did not report the throttle on block MaxBlocks+1")
	}
	if !bt.Throttled(throttleMachine, ip, last.Add(10*time.Millisecond)) {
		t.Fatal("not throttled after MaxBlocks+1 blocks within the window")
	}
}

func TestBlockThrottle_WindowsDoNotAdd(t *testing.T) {
	bt := NewBlockThrottle(testThrottleConfig())
	ip := addr("198.51.100.7")
	now := utc("2026-06-01T12:00:00Z")

	blockN(bt, throttleMachine, ip, now, 3)
	// The window started at the first block, so this block opens a new
	// window instead of exceeding the limit.
	bt.Blocked(throttleMachine, ip, now.Add(time.Second))
	if bt.Throttled(throttleMachine, ip, now.Add(time.Second)) {
		t.Fatal("blocks of two windows added up to a throttle")
	}
}

func TestBlockThrottle_OnlyTheBlockedPair(t *testing.T) {
	bt := NewBlockThrottle(testThrottleConfig())
	ip := addr("198.51.100.7")
	now := utc("2026-06-01T12:00:00Z")
	last := blockN(bt, throttleMachine, ip, now, 4)

	cases := []struct {
		name    string
		machine string
		ip      string
		want    bool
	}{
		{"same pair", throttleMachine, "198.51.100.7", true},
		{"same pair, IPv4-mapped", throttleMachine, "::ffff:198.51.100.7", true},
		{"same machine, other address", throttleMachine, "198.51.100.8", false},
		{"other machine, same address", otherMachine, "198.51.100.7", false},
		{"machine id in another case", strings.ToUpper(throttleMachine), "198.51.100.7", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := bt.Throttled(c.machine, addr(c.ip), last); got != c.want {
				t.Errorf("Throttled(%s, %s) = %v, want %v", c.machine, c.ip, got, c.want)
			}
		})
	}
}

func TestBlockThrottle_IPv6CountsPerSlash64(t *testing.T) {
	bt := NewBlockThrottle(testThrottleConfig())
	now := utc("2026-06-01T12:00:00Z")
	for i := range 4 {
		bt.Blocked(throttleMachine, addr(fmt.Sprintf("2001:db8:1:2::%x", i+1)), now)
	}
	if !bt.Throttled(throttleMachine, addr("2001:db8:1:2::ffff"), now) {
		t.Error("four blocks from one /64 did not throttle another address of it")
	}
	if bt.Throttled(throttleMachine, addr("2001:db8:1:3::1"), now) {
		t.Error("a neighbouring /64 is throttled")
	}
}

func TestBlockThrottle_CoolDownThenReverified(t *testing.T) {
	cfg := testThrottleConfig()
	bt := NewBlockThrottle(cfg)
	ip := addr("198.51.100.7")
	now := utc("2026-06-01T12:00:00Z")

	last := blockN(bt, throttleMachine, ip, now, 4)
	end := last.Add(cfg.CoolDown)
	if !bt.Throttled(throttleMachine, ip, end.Add(-time.Nanosecond)) {
		t.Fatal("throttle ended before the cool-down passed")
	}
	if bt.Throttled(throttleMachine, ip, end) {
		t.Fatal("still throttled once the cool-down passed; the next request must be verified")
	}

	// The verified request after the cool-down is blocked again: the pair
	// is throttled again at once, without MaxBlocks more verifications.
	if !bt.Blocked(throttleMachine, ip, end) {
		t.Fatal("a verified block right after the cool-down did not throttle the pair again")
	}
	if !bt.Throttled(throttleMachine, ip, end.Add(cfg.CoolDown-time.Nanosecond)) {
		t.Fatal("the renewed throttle is shorter than the cool-down")
	}
}

func TestBlockThrottle_QuietPairStartsOver(t *testing.T) {
	cfg := testThrottleConfig()
	bt := NewBlockThrottle(cfg)
	ip := addr("198.51.100.7")
	now := utc("2026-06-01T12:00:00Z")

	last := blockN(bt, throttleMachine, ip, now, 4)
	quiet := last.Add(cfg.CoolDown + cfg.Window)
	if bt.Blocked(throttleMachine, ip, quiet) {
		t.Fatal("a pair quiet for the cool-down and a window was throttled by its first block")
	}
	last = blockN(bt, throttleMachine, ip, quiet.Add(10*time.Millisecond), 2)
	if bt.Throttled(throttleMachine, ip, last) {
		t.Fatal("a quiet pair was throttled before MaxBlocks+1 blocks")
	}
}

func TestBlockThrottle_ClockBeforeCreation(t *testing.T) {
	// Offsets are relative to the creation time, so a clock far in the
	// past gives negative offsets. A pair never blocked must still read as
	// not throttled.
	bt := NewBlockThrottle(testThrottleConfig())
	past := utc("2001-01-01T00:00:00Z")
	bt.Blocked(throttleMachine, addr("198.51.100.7"), past)
	if bt.Throttled(throttleMachine, addr("198.51.100.7"), past) {
		t.Fatal("one block throttled the pair")
	}
	if bt.Throttled(otherMachine, addr("198.51.100.7"), past) {
		t.Fatal("a pair never seen is throttled")
	}
}

func TestBlockThrottle_BoundedAndKeepsThrottledPairs(t *testing.T) {
	cfg := testThrottleConfig()
	bt := NewBlockThrottle(cfg)
	now := utc("2026-06-01T12:00:00Z")
	ip := addr("198.51.100.7")
	blockN(bt, throttleMachine, ip, now, 4)

	for i := range 20_000 {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		bt.Blocked(otherMachine, src, now.Add(50*time.Millisecond))
	}
	if n := bt.Len(); n > cfg.MaxPairs {
		t.Fatalf("%d pairs tracked, MaxPairs is %d", n, cfg.MaxPairs)
	}
	if !bt.Throttled(throttleMachine, ip, now.Add(50*time.Millisecond)) {
		t.Fatal("a flood of pairs that were never throttled evicted a throttled pair")
	}
}

func TestBlockThrottle_ThrottledDoesNotAllocate(t *testing.T) {
	bt := NewBlockThrottle(testThrottleConfig())
	now := utc("2026-06-01T12:00:00Z")
	ip := addr("198.51.100.7")
	v6 := addr("2001:db8::7")
	last := blockN(bt, throttleMachine, ip, now, 4)

	allocs := testing.AllocsPerRun(1000, func() {
		bt.Throttled(throttleMachine, ip, last)
		bt.Throttled(otherMachine, v6, last)
	})
	if allocs != 0 {
		t.Fatalf("Throttled allocates %v times per call pair", allocs)
	}
	allocs = testing.AllocsPerRun(1000, func() {
		bt.Blocked(throttleMachine, ip, last)
	})
	if allocs != 0 {
		t.Fatalf("Blocked of a tracked pair allocates %v times", allocs)
	}
}

func TestBlockThrottle_ConcurrentUse(t *testing.T) {
	bt := NewBlockThrottle(testThrottleConfig())
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(g)})
			for i := range 2000 {
				at := now.Add(time.Duration(i) * time.Microsecond)
				bt.Blocked(throttleMachine, ip, at)
				bt.Throttled(throttleMachine, ip, at)
				bt.Throttled(otherMachine, ip, at)
			}
		}()
	}
	wg.Wait()
	for g := range 8 {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(g)})
		if !bt.Throttled(throttleMachine, ip, now.Add(2*time.Millisecond)) {
			t.Errorf("source %s not throttled after 2,000 blocks", ip)
		}
	}
	if n := bt.Len(); n != 8 {
		t.Errorf("%d pairs tracked, want 8", n)
	}
}

func TestBlockThrottleConfig_Validate(t *testing.T) {
	if err := DefaultBlockThrottleConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cases := []struct {
		name string
		edit func(*BlockThrottleConfig)
		want string
	}{
		{"zero max blocks", func(c *BlockThrottleConfig) { c.MaxBlocks = 0 }, "MaxBlocks 0"},
		{"short window", func(c *BlockThrottleConfig) { c.Window = time.Millisecond }, "Window 1ms"},
		{"long cool-down", func(c *BlockThrottleConfig) { c.CoolDown = 2 * time.Minute }, "CoolDown 2m0s"},
		{"fewer pairs than shards", func(c *BlockThrottleConfig) { c.MaxPairs = 10 }, "MaxPairs 10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultBlockThrottleConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, c.want)
			}
		})
	}
}

func TestNewBlockThrottle_OutOfRangeTakesDefaults(t *testing.T) {
	got := NewBlockThrottle(BlockThrottleConfig{MaxBlocks: 5}).Config()
	want := DefaultBlockThrottleConfig()
	want.MaxBlocks = 5
	if got != want {
		t.Fatalf("config %+v, want %+v", got, want)
	}
}

func TestBlockThrottleConfig_WithDefaultsFillsZeroFields(t *testing.T) {
	got := BlockThrottleConfig{CoolDown: 3 * time.Second}.WithDefaults()
	want := DefaultBlockThrottleConfig()
	want.CoolDown = 3 * time.Second
	if got != want {
		t.Fatalf("config %+v, want %+v", got, want)
	}
}

func BenchmarkBlockThrottle_Throttled(b *testing.B) {
	bt := NewBlockThrottle(DefaultBlockThrottleConfig())
	now := time.Now()
	for i := range 1000 {
		src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		for range 25 {
			bt.Blocked(throttleMachine, src, now)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
			bt.Throttled(throttleMachine, src, now)
			i = (i + 1) % 1000
		}
	})
}
