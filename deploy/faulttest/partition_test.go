package faulttest

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestFault_CutOffFollowerNeverServesRevokedMachine cuts one follower off
// from its peers, revokes a machine on the majority side, and heals the
// partition. The follower must turn to 503 within --max-staleness. It must
// never serve the revoked machine after the revoke was acknowledged, also
// not between reconnecting and applying the revoke. Once it caught up, it
// must serve the machine that is still granted.
// Then it stops a follower, revokes another machine and starts the
// follower again: the follower must not serve that machine from the state
// it had on disk.
func TestFault_CutOffFollowerNeverServesRevokedMachine(t *testing.T) {
	c := startCluster(t)
	leader := c.waitLeader(c.nodes...)
	f := c.setup(leader)
	secret := c.createSecret(leader, f, "db-password", "s3cr3t")
	kept := c.registerMachine(leader, f, "kept", secret.id)
	revoked := c.registerMachine(leader, f, "revoked", secret.id)
	revokedWhileDown := c.registerMachine(leader, f, "revoked-while-down", secret.id)
	c.waitRead(kept, secret.id, "s3cr3t")
	c.waitRead(revoked, secret.id, "s3cr3t")
	c.waitRead(revokedWhileDown, secret.id, "s3cr3t")

	isolated := c.followers(leader)[0]
	majority := c.followers(isolated)

	// Pollers record every response for the revoked machine on every node and
	// for the kept machine on the isolated node, from before the partition
	// until after the isolated node caught up.
	var probes probeLog
	pollers := newPollGroup(&probes)
	defer pollers.stop()
	for _, n := range c.nodes {
		pollers.poll(n, "revoked", revoked, secret.id, 20*time.Millisecond)
	}
	pollers.poll(isolated, "kept", kept, secret.id, 20*time.Millisecond)

	partitionedAt := time.Now()
	c.partition(isolated)
	staleAt := waitFor(t, isolated, kept, secret.id, http.StatusServiceUnavailable, maxStaleness+5*time.Second)
	if d := staleAt.Sub(partitionedAt); d > maxStaleness+1500*time.Millisecond {
		t.Errorf("isolated %s responded 503 only %s after the partition; --max-staleness is %s",
			isolated.name, d.Round(time.Millisecond), maxStaleness)
	}
	t.Logf("isolated %s refused machine requests %s after the partition", isolated.name,
		staleAt.Sub(partitionedAt).Round(time.Millisecond))

	// A revoke returns once every node applied it or counts as stale, and
	// its response lists which nodes confirmed.
	var confirmation struct {
		ConfirmedNodes   int      `json:"confirmedNodes"`
		ClusterNodes     int      `json:"clusterNodes"`
		UnconfirmedNodes []string `json:"unconfirmedNodes"`
	}
	revokeSent := time.Now()
	c.mustAdmin(majority[0], http.StatusOK, http.MethodPost, f.machinePath(revoked.id)+"/revoke", map[string]any{}, &confirmation)
	revokedAt := time.Now()
	t.Logf("revoke acknowledged after %s: %+v", revokedAt.Sub(revokeSent).Round(time.Millisecond), confirmation)
	if confirmation.ClusterNodes != 3 || confirmation.ConfirmedNodes != 2 ||
		len(confirmation.UnconfirmedNodes) != 1 || confirmation.UnconfirmedNodes[0] != isolated.name {
		t.Errorf("revoke confirmation = %+v, want 2 of 3 nodes confirmed and %s unconfirmed", confirmation, isolated.name)
	}
	for _, n := range majority {
		waitFor(t, n, revoked, secret.id, http.StatusForbidden, 10*time.Second)
	}

	// Stay partitioned a little longer, so that the pollers cover the
	// isolated node while it has not received the revoke.
	time.Sleep(2 * time.Second)

	// Reconnecting is the riskiest moment: the node hears from the leader
	// again before it has applied the revoke. A second poller sends the
	// revoked machine's requests every 2 ms from now on.
	pollers.poll(isolated, "revoked", revoked, secret.id, 2*time.Millisecond)
	healedAt := time.Now()
	c.heal(isolated)
	caughtUpAt := waitFor(t, isolated, kept, secret.id, http.StatusOK, 45*time.Second)
	waitFor(t, isolated, revoked, secret.id, http.StatusForbidden, 10*time.Second)
	t.Logf("isolated %s served the kept machine again %s after the partition healed", isolated.name,
		caughtUpAt.Sub(healedAt).Round(time.Millisecond))
	time.Sleep(time.Second)
	pollers.stop()

	checkIsolatedProbes(t, &probes, isolated, staleAt, revokedAt, healedAt)
	for _, n := range majority {
		checkMajorityProbes(t, &probes, n, revokedAt)
	}
	c.waitConverged()

	checkRestartAfterRevoke(t, c, f, secret.id, kept, revokedWhileDown)
}

// checkRestartAfterRevoke stops a follower, revokes a machine while it is
// down and starts it again. From its first response until it has caught
// up, the follower may reject the machine or be unavailable, but it must
// never serve it.
func checkRestartAfterRevoke(t *testing.T, c *testCluster, f fixture, secretID string, kept, revoked machine) {
	t.Helper()
	leader := c.waitLeader(c.nodes...)
	down := c.followers(leader)[0]
	c.stop(down)
	c.mustAdmin(leader, http.StatusOK, http.MethodPost, f.machinePath(revoked.id)+"/revoke", map[string]any{}, nil)

	var probes probeLog
	pollers := newPollGroup(&probes)
	defer pollers.stop()
	pollers.poll(down, "revoked-while-down", revoked, secretID, 10*time.Millisecond)
	pollers.poll(down, "kept", kept, secretID, 10*time.Millisecond)
	startedAt := time.Now()
	c.start(down)
	caughtUpAt := waitFor(t, down, kept, secretID, http.StatusOK, 45*time.Second)
	waitFor(t, down, revoked, secretID, http.StatusForbidden, 10*time.Second)
	time.Sleep(time.Second)
	pollers.stop()

	counts := map[string]int{}
	for _, p := range probes.matching(down, "revoked-while-down") {
		switch {
		case p.err != nil:
			counts["no response"]++
		case p.status == http.StatusOK:
			counts["served"]++
			t.Errorf("restarted %s served a machine revoked while it was down: %s", down.name, p)
		case p.status == http.StatusForbidden || p.status == http.StatusServiceUnavailable:
			counts[strconv.Itoa(p.status)]++
		default:
			counts[strconv.Itoa(p.status)]++
			t.Errorf("restarted %s responded %d for the revoked machine (want 403 or 503): %s", down.name, p.status, p)
		}
	}
	t.Logf("restarted %s served the kept machine %s after the start; responses for the revoked one: %v",
		down.name, caughtUpAt.Sub(startedAt).Round(time.Millisecond), counts)
}

// checkIsolatedProbes checks the responses of the isolated node. They are
// 200, 403 or 503, and only 503 from the moment it was seen stale until
// the heal. No request sent after the revoke was acknowledged gets a 200
// for the revoked machine.
func checkIsolatedProbes(t *testing.T, probes *probeLog, isolated *node, staleAt, revokedAt, healedAt time.Time) {
	t.Helper()
	for _, label := range []string{"kept", "revoked"} {
		var served, denied int
		for _, p := range probes.matching(isolated, label) {
			switch {
			case p.err != nil:
				t.Errorf("isolated node did not respond: %s", p)
				continue
			case p.status != http.StatusOK && p.status != http.StatusForbidden && p.status != http.StatusServiceUnavailable:
				t.Errorf("isolated node responded %d (want 200, 403 or 503): %s", p.status, p)
			}
			if p.sent.After(staleAt) && p.done.Before(healedAt) && p.status != http.StatusServiceUnavailable {
				t.Errorf("isolated node responded %d while partitioned and stale (want 503): %s", p.status, p)
			}
			if label == "revoked" && p.sent.After(revokedAt) {
				if p.status == http.StatusOK {
					served++
					t.Errorf("isolated node served the revoked machine after the revoke was acknowledged: %s, sent %s after the heal",
						p, p.sent.Sub(healedAt).Round(time.Millisecond))
				} else if p.status == http.StatusForbidden {
					denied++
				}
			}
		}
		if label == "revoked" {
			t.Logf("isolated %s after the revoke: %d served, %d refused with 403", isolated.name, served, denied)
		}
	}
}

// checkMajorityProbes checks the responses for the revoked machine on a node
// of the majority: only 200, 403 and 503, and no 200 to a request sent
// after the revoke was acknowledged.
func checkMajorityProbes(t *testing.T, probes *probeLog, n *node, revokedAt time.Time) {
	t.Helper()
	for _, p := range probes.matching(n, "revoked") {
		switch {
		case p.err != nil:
			t.Errorf("majority node did not respond: %s", p)
		case p.status == http.StatusOK && p.sent.After(revokedAt):
			t.Errorf("%s served the revoked machine after the revoke was acknowledged: %s", n.name, p)
		case p.status != http.StatusOK && p.status != http.StatusForbidden && p.status != http.StatusServiceUnavailable:
			t.Errorf("%s responded %d for the revoked machine (want 200, 403 or 503): %s", n.name, p.status, p)
		}
	}
}

// waitFor polls n with signed reads of secretID as m until one returns
// status, and returns when that response arrived. It fails the test after
// timeout.
func waitFor(t *testing.T, n *node, m machine, secretID string, status int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		p := readProbe(n, "waiter", m, secretID)
		if p.err == nil && p.status == status {
			return p.done
		}
		last = p.String()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not respond %d within %s; last response: %s", n.name, status, timeout, last)
	return time.Time{}
}
