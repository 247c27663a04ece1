package faulttest

import (
	"testing"
	"time"
)

// Phases of the leader faults. The workload runs through all of them.
const (
	warmUp         = 3 * time.Second  // load before the crash
	leaderDown     = 8 * time.Second  // the crashed leader stays dead this long
	afterRestart   = 4 * time.Second  // load after it restarted
	leaderIsolated = 6 * time.Second  // the next leader stays partitioned this long
	afterHeal      = 4 * time.Second  // load after the partition healed
	maxOutage      = 5 * time.Second  // maximum time a majority node may serve no read
	rejoinBound    = 60 * time.Second // a returning node is healthy again
)

// TestFault_LeaderCrashAndPartitionUnderLoad kills the leader with SIGKILL
// while clients on every node update secrets, create secrets and read
// them, restarts it, then cuts the next leader off from its peers and
// heals that partition. It checks that the history of updates is
// linearizable, that every acknowledged update and creation is on every
// node afterwards, that the nodes of the majority kept serving reads, and
// that the returning nodes caught up.
func TestFault_LeaderCrashAndPartitionUnderLoad(t *testing.T) {
	c := startCluster(t)
	leader := c.waitLeader(c.nodes...)
	f := c.setup(leader)
	w := newWorkload(c, leader, f, 8)
	c.waitConverged()

	stop := w.run()
	defer stop()
	time.Sleep(warmUp)

	// Crash: SIGKILL the leader, restart it later.
	killed := c.waitLeader(c.nodes...)
	killedAt := time.Now()
	c.kill(killed)
	t.Logf("killed leader %s", killed.name)
	time.Sleep(leaderDown)
	next := c.waitLeader(c.followers(killed)...)
	restartedAt := time.Now()
	c.start(killed)
	t.Logf("%s leads; restarted %s %s after the kill", next.name, killed.name, restartedAt.Sub(killedAt).Round(time.Millisecond))
	c.waitHealthy(killed)
	time.Sleep(afterRestart)

	// Partition: cut the current leader off, heal later.
	isolated := c.waitLeader(c.nodes...)
	isolatedAt := time.Now()
	c.partition(isolated)
	t.Logf("partitioned leader %s", isolated.name)
	time.Sleep(leaderIsolated)
	healedAt := time.Now()
	c.heal(isolated)
	c.waitHealthy(isolated)
	time.Sleep(afterHeal)

	stop()
	loadEndedAt := time.Now()

	w.reportFailures(t)
	reads := w.checkReads(t)
	checkOutages(t, reads, c.followers(killed), killed.name+" was down", killedAt, restartedAt)
	checkOutages(t, reads, c.followers(isolated), isolated.name+" was partitioned", isolatedAt, healedAt)
	outage, served := longestOutage(reads[killed], restartedAt, loadEndedAt)
	t.Logf("restarted %s: %d reads served after the restart, longest time without one %s",
		killed.name, served, outage.Round(time.Millisecond))
	outage, served = longestOutage(reads[isolated], healedAt, loadEndedAt)
	t.Logf("healed %s: %d reads served after the heal, longest time without one %s",
		isolated.name, served, outage.Round(time.Millisecond))

	w.checkFinalState(t)
	w.checkLinearizable(t)
}

// checkOutages fails the test when one of nodes served no read for longer
// than maxOutage between from and until.
func checkOutages(t *testing.T, reads map[*node][]probe, nodes []*node, while string, from, until time.Time) {
	t.Helper()
	for _, n := range nodes {
		outage, served := longestOutage(reads[n], from, until)
		t.Logf("%s: %d reads served while %s, longest time without one %s",
			n.name, served, while, outage.Round(time.Millisecond))
		if outage > maxOutage {
			t.Errorf("%s served no read for %s while %s; want at most %s",
				n.name, outage.Round(time.Millisecond), while, maxOutage)
		}
	}
}

// waitHealthy waits until n reports itself healthy with a known leader.
func (c *testCluster) waitHealthy(n *node) {
	c.t.Helper()
	c.eventually(rejoinBound, n.name+" is healthy", func() string {
		h, err := c.health(n)
		switch {
		case err != nil:
			return err.Error()
		case !h.Healthy || h.LeaderID == "":
			return "not healthy yet"
		}
		return ""
	})
}
