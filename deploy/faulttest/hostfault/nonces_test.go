package hostfault

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// journalDelay is how long the test waits after a response before it kills
// the nodes. The nonce is journaled by the peer-event loop right after the
// request is accepted, normally within a millisecond.
const journalDelay = 200 * time.Millisecond

func TestNonces_ReplayRejectedAfterKillOfEveryNode(t *testing.T) {
	c := newCluster(t, []string{t.TempDir(), t.TempDir(), t.TempDir()})
	c.startAll()
	leader := c.waitLeader()
	f := c.setup(leader)
	reader := c.registerTemp(leader, f, "reader", nil)
	c.waitServes(reader, f)

	captured := reader.sign(http.MethodGet, "/v1/secret/"+f.secretID, time.Now())
	accepting := c.nodes[1]
	if status, body, err := captured.send(context.Background(), accepting); err != nil || status != http.StatusOK {
		t.Fatalf("first send to %s: %d %s %v, want 200", accepting.id, status, body, err)
	}
	time.Sleep(journalDelay)
	for _, n := range c.nodes {
		c.kill(n)
	}
	c.startAll()
	c.waitLeader()
	for _, n := range c.nodes {
		eventually(t, 30*time.Second, n.id+" ready after the restart", func() string {
			h, err := c.health(n)
			if err != nil || !h.Ready {
				return fmt.Sprintf("health %+v %v", h, err)
			}
			return ""
		})
	}
	for _, n := range c.nodes {
		status, body, err := captured.send(context.Background(), n)
		if err != nil || status != http.StatusUnauthorized {
			t.Errorf("replay to %s after every node was killed: %d %s %v, want 401", n.id, status, body, err)
		}
	}
}
