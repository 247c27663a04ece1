package audit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/fsm"
)

// TestAudit_ThreeNodesHoldTheSameLog records events on every node of a
// real three-node cluster, with admin writes in between, and compares the
// log that each node answers queries from.
func TestAudit_ThreeNodesHoldTheSameLog(t *testing.T) {
	nodes := startThree(t, nil)
	createVault(t, nodes[1])
	var recorders []*Recorder
	for _, n := range nodes {
		cfg := DefaultRecorderConfig()
		cfg.NodeID, cfg.FlushInterval = n.id, 20*time.Millisecond
		r, err := NewRecorder(cfg, n, nil, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeRecorder(t, r) })
		recorders = append(recorders, r)
	}

	now := time.Now()
	for i := range 30 {
		ev := blocked(machineA, fmt.Sprintf("198.51.100.%d", i), now.Add(time.Duration(i)*time.Millisecond))
		recorders[i%3].Record(ev)
		if i%10 == 0 {
			mustApply(t, nodes[i%3], fsm.CmdSetAuditRetention, fsm.SetAuditRetentionPayload{VaultID: testVault, Days: 30 + i})
		}
	}
	for _, r := range recorders {
		syncRecorder(t, r, true)
	}

	want := 30 + 3 + 1 // events, retention changes, vault creation
	waitFor(t, 10*time.Second, "every node to apply every entry", func() bool {
		for _, n := range nodes {
			if len(vaultEntries(t, n.sm)) != want {
				return false
			}
		}
		return true
	})
	first := vaultEntries(t, nodes[0].sm)
	for _, n := range nodes[1:] {
		if got := vaultEntries(t, n.sm); !slices.EqualFunc(got, first, entriesEqual) {
			t.Fatalf("%s holds a different log than node-1", n.id)
		}
	}
	nodesSeen := map[string]bool{}
	for i, e := range first {
		if i > 0 && e.ID <= first[i-1].ID {
			t.Fatalf("ids not increasing at %d: %d after %d", i, e.ID, first[i-1].ID)
		}
		nodesSeen[e.Node] = true
	}
	if len(nodesSeen) != 3 {
		t.Fatalf("entries name nodes %v, want all three", nodesSeen)
	}
}

func entriesEqual(a, b fsm.AuditEntry) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestWebhook_LeaderFailoverDeliversEveryEventOnce kills the leader while
// deliveries are pending. The new leader resumes from the cursor in Raft:
// every event arrives, and no event arrives under two delivery ids.
func TestWebhook_LeaderFailoverDeliversEveryEventOnce(t *testing.T) {
	var (
		mu  sync.Mutex
		ids = map[string]map[string]bool{} // event uuid -> delivery ids
	)
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		time.Sleep(30 * time.Millisecond) // keep deliveries pending
		w.WriteHeader(http.StatusOK)
	})
	nodes := startThree(t, withDispatcher(t, nil, nil))
	leader := leaderOf(nodes)
	createVault(t, leader)
	createWebhook(t, leader, webhook1, rcv.URL, "temp_machine_blocked")
	for range 4 {
		appendEntries(t, leader, 10, "before")
	}
	waitFor(t, 10*time.Second, "some deliveries", func() bool { return len(rcv.requests()) >= 5 })

	leader.crash()
	var survivors []*testNode
	for _, n := range nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	waitFor(t, 15*time.Second, "a new leader", func() bool { return leaderOf(survivors) != nil })
	for range 4 {
		appendEntries(t, survivors[0], 10, "after")
	}

	events := vaultEntries(t, survivors[0].sm, "temp_machine_blocked")
	if len(events) != 80 {
		t.Fatalf("%d events in the log, want 80", len(events))
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		clear(ids)
		for _, r := range rcv.requests() {
			p := decodePayload(t, r.body)
			if ids[p.ID] == nil {
				ids[p.ID] = map[string]bool{}
			}
			ids[p.ID][r.deliveryID] = true
		}
		return len(ids)
	}
	waitFor(t, 20*time.Second, "every event delivered", func() bool { return count() == len(events) })
	for _, e := range events {
		got := ids[e.UUID]
		if len(got) != 1 || !got[DeliveryID(webhook1, e.ID)] {
			t.Errorf("event %d arrived under delivery ids %v", e.ID, got)
		}
	}
	t.Logf("%d requests for %d events (at least once)", len(rcv.requests()), len(events))
}
