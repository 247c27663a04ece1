package cluster

import (
	"testing"
	"time"
)

func TestClockSkew_OneNodeAheadIsSkewed(t *testing.T) {
	for _, shift := range []time.Duration{2 * time.Hour, -2 * time.Hour} {
		t.Run(shift.String(), func(t *testing.T) {
			nodes := startThree(t, func(c *Config) {
				if c.NodeID == "node-3" {
					c.Clock = func() time.Time { return time.Now().Add(shift) }
				}
			})
			waitLeader(t, nodes...)

			waitFor(t, 15*time.Second, "node-3 to find its clock skewed", func() bool {
				_, skewed := nodes[2].node.ClockSkew()
				return skewed
			})
			offset, _ := nodes[2].node.ClockSkew()
			if offset > -shift+time.Minute || offset < -shift-time.Minute {
				t.Errorf("node-3 median offset to its peers = %s, want about %s", offset, -shift)
			}
			for _, tn := range nodes[:2] {
				waitFor(t, 10*time.Second, tn.cfg.NodeID+" to have measured both peers", func() bool {
					tn.node.clock.mu.Lock()
					defer tn.node.clock.mu.Unlock()
					return len(tn.node.clock.offsets) == 2
				})
				if _, skewed := tn.node.ClockSkew(); skewed {
					t.Errorf("%s counts as skewed although only one of its two peers disagrees", tn.cfg.NodeID)
				}
			}
		})
	}
}

func TestClockSkew_AgreeingClocksAreNotSkewed(t *testing.T) {
	nodes := startThree(t, func(c *Config) {
		if c.NodeID == "node-3" {
			c.Clock = func() time.Time { return time.Now().Add(2 * time.Second) }
		}
	})
	waitLeader(t, nodes...)
	for _, tn := range nodes {
		waitFor(t, 10*time.Second, tn.cfg.NodeID+" to have measured both peers", func() bool {
			tn.node.clock.mu.Lock()
			defer tn.node.clock.mu.Unlock()
			return len(tn.node.clock.offsets) == 2
		})
		if _, skewed := tn.node.ClockSkew(); skewed {
			t.Errorf("%s counts as skewed with clocks 2 s apart and a 5 s bound", tn.cfg.NodeID)
		}
	}
}
