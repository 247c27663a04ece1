package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// propagationBound is how long after the response to a request every
// other node must reject its replay. Nodes send accepted nonces to their
// peers in the background, normally within milliseconds, so a replay sent
// at once can still win the race. The bound allows for a loaded test
// machine.
const propagationBound = 250 * time.Millisecond

// TestFault_ReplayedSignedRequest captures signed requests and replays them
// byte for byte. A replay must get 401 from the node that accepted the
// request, from any other node once propagationBound has passed since the
// first response, and from the node after it restarted, whether it was
// stopped or killed. Every replay gets 200 or 401, never anything else.
// The test logs how many replays sent at once, or at the same time as the
// first use, another node still accepted: the propagation window.
//
// Each rejected replay counts as a failed authentication from the test's
// address. By default the cluster locks an address out after 20 failures
// in a minute and then responds 429, so the test sends 16 at most when
// every check holds.
func TestFault_ReplayedSignedRequest(t *testing.T) {
	c := startCluster(t)
	leader := c.waitLeader(c.nodes...)
	f := c.setup(leader)
	secret := c.createSecret(leader, f, "api-key", "replay-me")
	m := c.registerMachine(leader, f, "replayed", secret.id)
	c.waitRead(m, secret.id, "replay-me")
	path := "/v1/secret/" + secret.id

	// The cluster's helpers fail the test itself, so the parts run in
	// sequence here and not as subtests.
	checkImmediateReplays(t, c, m, path)
	checkReplaysAfterBound(t, c, m, path)
	measureConcurrentReplays(t, c, m, path)
	checkReplayAfterRestart(t, c, m, path, false)
	checkReplayAfterRestart(t, c, m, path, true)
}

// checkImmediateReplays uses a request on each node, replays it to the same
// node, which must reject it, and at once to the others. It logs which of
// those accepted it and how soon after the first response the replays
// were sent.
func checkImmediateReplays(t *testing.T, c *testCluster, m machine, path string) {
	t.Helper()
	var accepted []string
	var earliest, latest time.Duration
	for _, origin := range c.nodes {
		req := m.sign(http.MethodGet, path, nil, time.Now())
		expectStatus(t, origin, req, http.StatusOK, "first use")
		respondedAt := time.Now()
		for _, other := range c.followers(origin) {
			gap := time.Since(respondedAt)
			if earliest == 0 || gap < earliest {
				earliest = gap
			}
			latest = max(latest, gap)
			if replayStatus(t, other, req) == http.StatusOK {
				accepted = append(accepted, fmt.Sprintf("%s→%s %s after the first response", origin.name, other.name,
					gap.Round(time.Microsecond)))
				expectStatus(t, other, req, http.StatusUnauthorized, "second replay to "+other.name)
			}
		}
		expectStatus(t, origin, req, http.StatusUnauthorized, "replay to the node that accepted it")
	}
	t.Logf("replays sent to another node %s to %s after the first response: %d of %d accepted %v",
		earliest.Round(time.Microsecond), latest.Round(time.Microsecond),
		len(accepted), len(c.nodes)*(len(c.nodes)-1), accepted)
}

// checkReplaysAfterBound uses a request on one node, waits
// propagationBound and replays it to every other node, which must reject
// it.
func checkReplaysAfterBound(t *testing.T, c *testCluster, m machine, path string) {
	t.Helper()
	origin := c.nodes[0]
	req := m.sign(http.MethodGet, path, nil, time.Now())
	expectStatus(t, origin, req, http.StatusOK, "first use")
	time.Sleep(propagationBound)
	for _, other := range c.followers(origin) {
		expectStatus(t, other, req, http.StatusUnauthorized,
			fmt.Sprintf("replay %s after the first use on %s", propagationBound, origin.name))
	}
}

// measureConcurrentReplays sends the same request to two nodes at the same
// moment, as an attacker racing the client would, and logs how often both
// accepted it.
func measureConcurrentReplays(t *testing.T, c *testCluster, m machine, path string) {
	t.Helper()
	const races = 3
	both := 0
	for i := range races {
		a, b := c.nodes[i%3], c.nodes[(i+1)%3]
		req := m.sign(http.MethodGet, path, nil, time.Now())
		statuses := make([]int, 2)
		var wg sync.WaitGroup
		for j, n := range []*node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, _, err := sendSigned(context.Background(), n, req)
				if err != nil {
					status = 0
				}
				statuses[j] = status
			}()
		}
		wg.Wait()
		for j, status := range statuses {
			if status != http.StatusOK && status != http.StatusUnauthorized {
				t.Errorf("concurrent use on %s: status %d, want 200 or 401", []*node{a, b}[j].name, status)
			}
		}
		switch {
		case statuses[0] == http.StatusOK && statuses[1] == http.StatusOK:
			both++
		case statuses[0] != http.StatusOK && statuses[1] != http.StatusOK:
			t.Errorf("concurrent use on %s and %s: neither accepted the request (%v)", a.name, b.name, statuses)
		}
	}
	t.Logf("the same request sent to two nodes at once was accepted by both in %d of %d races", both, races)
}

// checkReplayAfterRestart uses a request on a node, stops it (or kills it
// with SIGKILL, so that it saves nothing on the way down), starts it and
// replays the request to it from the moment it starts. While the node
// refuses connections or responds 503 it is still starting, and its first
// other response must be 401.
func checkReplayAfterRestart(t *testing.T, c *testCluster, m machine, path string, crash bool) {
	t.Helper()
	target, how := c.nodes[2], "stopped"
	req := m.sign(http.MethodGet, path, nil, time.Now())
	expectStatus(t, target, req, http.StatusOK, "first use")
	if crash {
		how = "killed"
		c.kill(target)
	} else {
		c.stop(target)
	}
	c.start(target)

	// Only the final 401 counts as a failed authentication, so polling
	// costs one failure towards the lockout.
	deadline := time.Now().Add(rejoinBound)
	for {
		status, body, err := sendSigned(context.Background(), target, req)
		if err == nil && status != http.StatusServiceUnavailable {
			if status != http.StatusUnauthorized {
				t.Errorf("replay to %s after it was %s and started again: status %d %s, want 401",
					target.name, how, status, clip(body))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not respond within %s after it was %s and started again: status %d %v",
				target.name, rejoinBound, how, status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.waitHealthy(target)
}

// replayStatus sends req to n and returns the status, which must be 200 or
// 401: a replay is either served or rejected as a replay.
func replayStatus(t *testing.T, n *node, req signedRequest) int {
	t.Helper()
	status, body, err := sendSigned(context.Background(), n, req)
	if err != nil {
		t.Fatalf("replay to %s: %v", n.name, err)
	}
	if status != http.StatusOK && status != http.StatusUnauthorized {
		t.Errorf("replay to %s: status %d %s, want 200 or 401", n.name, status, clip(body))
	}
	return status
}

// expectStatus sends req to n and fails the test unless the status is want.
func expectStatus(t *testing.T, n *node, req signedRequest, want int, what string) {
	t.Helper()
	status, body, err := sendSigned(context.Background(), n, req)
	if err != nil {
		t.Fatalf("%s on %s: %v", what, n.name, err)
	}
	if status != want {
		t.Errorf("%s on %s: status %d %s, want %d", what, n.name, status, clip(body), want)
	}
}
