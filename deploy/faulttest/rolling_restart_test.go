package faulttest

import (
	"testing"
	"time"
)

// TestFault_RollingRestartUnderLoad restarts the three nodes one at a time
// (SIGTERM, start, wait until healthy) while the workload reads, updates
// and creates secrets through every node. A read may only succeed or be
// unavailable, which means a 503 or no connection to the node being
// restarted. A 401, 403, 404 or 500 fails the test. Afterwards every acknowledged write is
// on every node and the update history is linearizable.
func TestFault_RollingRestartUnderLoad(t *testing.T) {
	c := startCluster(t)
	leader := c.waitLeader(c.nodes...)
	f := c.setup(leader)
	w := newWorkload(c, leader, f, 8)
	c.waitConverged()

	stop := w.run()
	defer stop()
	time.Sleep(2 * time.Second)

	restartedAt := map[*node]time.Time{}
	for _, n := range c.nodes {
		wasLeader := c.waitLeader(c.nodes...) == n
		began := time.Now()
		c.stop(n)
		stoppedAt := time.Now()
		c.start(n)
		c.waitHealthy(n)
		c.waitLeader(c.nodes...)
		restartedAt[n] = time.Now()
		t.Logf("restarted %s (leader before: %v): stopped in %s, healthy %s after the start", n.name, wasLeader,
			stoppedAt.Sub(began).Round(time.Millisecond), restartedAt[n].Sub(stoppedAt).Round(time.Millisecond))
		// Let the whole cluster serve for a moment before the next restart.
		time.Sleep(time.Second)
	}
	stop()
	loadEndedAt := time.Now()

	w.reportFailures(t)
	reads := w.checkReads(t)
	for _, n := range c.nodes {
		_, served := longestOutage(reads[n], restartedAt[n], loadEndedAt)
		t.Logf("%s: %d reads in all, %d served after its restart", n.name, len(reads[n]), served)
		if served == 0 {
			t.Errorf("%s served no read after its restart", n.name)
		}
	}
	w.checkFinalState(t)
	w.checkLinearizable(t)
}
