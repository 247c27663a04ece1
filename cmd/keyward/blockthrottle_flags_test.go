package main

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/httpapi"
)

func TestServerFlags_BlockThrottle(t *testing.T) {
	cases := []struct {
		name         string
		throttle     guard.BlockThrottleConfig
		wantErr      string
		wantOff      bool
		wantBlocks   int
		wantCoolDown time.Duration
	}{
		{"defaults", guard.BlockThrottleConfig{MaxBlocks: 20, Window: time.Second, CoolDown: time.Second}, "", false, 20, time.Second},
		{"changed", guard.BlockThrottleConfig{MaxBlocks: 50, Window: 2 * time.Second, CoolDown: 5 * time.Second}, "", false, 50, 5 * time.Second},
		{"zero turns it off", guard.BlockThrottleConfig{MaxBlocks: 0, Window: time.Second, CoolDown: time.Second}, "", true, 0, 0},
		{"negative blocks", guard.BlockThrottleConfig{MaxBlocks: -1, Window: time.Second, CoolDown: time.Second}, "--block-throttle-blocks -1", false, 0, 0},
		{"window too short", guard.BlockThrottleConfig{MaxBlocks: 20, Window: time.Millisecond, CoolDown: time.Second}, "Window 1ms", false, 0, 0},
		{"cool-down too long", guard.BlockThrottleConfig{MaxBlocks: 20, Window: time.Second, CoolDown: time.Hour}, "CoolDown 1h0m0s", false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := serverOptions{blockThrottle: c.throttle}
			cfg := httpapi.DefaultConfig()
			err := o.setBlockThrottle(&cfg)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.DisableBlockThrottle != c.wantOff {
				t.Fatalf("DisableBlockThrottle = %v, want %v", cfg.DisableBlockThrottle, c.wantOff)
			}
			if c.wantOff {
				return
			}
			if cfg.BlockThrottle.MaxBlocks != c.wantBlocks || cfg.BlockThrottle.CoolDown != c.wantCoolDown {
				t.Fatalf("throttle %+v, want %d blocks and a %s cool-down", cfg.BlockThrottle, c.wantBlocks, c.wantCoolDown)
			}
			if cfg.BlockThrottle.MaxPairs != guard.DefaultBlockThrottleConfig().MaxPairs {
				t.Fatalf("MaxPairs %d, want the default", cfg.BlockThrottle.MaxPairs)
			}
		})
	}
}
