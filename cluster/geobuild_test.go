package cluster

import (
	"reflect"
	"testing"
	"time"
)

func TestGeoBuildMismatch_ReportedOnEveryNode(t *testing.T) {
	nodes := startThree(t, func(c *Config) {
		c.GeoBuild = "GeoLite2-Country 2026-11-25"
		if c.NodeID == "node-3" {
			c.GeoBuild = "GeoLite2-Country 2026-11-18"
		}
	})
	waitLeader(t, nodes...)
	want := []string{"GeoLite2-Country 2026-11-18", "GeoLite2-Country 2026-11-25"}
	for _, tn := range nodes {
		waitFor(t, 10*time.Second, tn.cfg.NodeID+" to see both builds", func() bool {
			return reflect.DeepEqual(tn.node.GeoBuildMismatch(), want)
		})
	}
}

func TestGeoBuildMismatch_NoneWhenBuildsAgree(t *testing.T) {
	nodes := startThree(t, func(c *Config) { c.GeoBuild = "embedded 2026-09-15" })
	waitLeader(t, nodes...)
	for _, tn := range nodes {
		waitFor(t, 10*time.Second, tn.cfg.NodeID+" to see every member alive", func() bool {
			alive := 0
			for _, m := range tn.node.Members() {
				if m.Alive {
					alive++
				}
			}
			return alive == 3
		})
		if got := tn.node.GeoBuildMismatch(); got != nil {
			t.Errorf("%s reports a mismatch %v although every node uses one build", tn.cfg.NodeID, got)
		}
	}
}
