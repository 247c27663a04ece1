package cluster

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// applyConfirmedVault creates vault i through tn with ApplyConfirmed.
func applyConfirmedVault(t *testing.T, tn *testNode, i int, wait time.Duration) Confirmation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, conf, err := tn.node.ApplyConfirmed(ctx, vaultCommand(t, i), wait)
	if err != nil {
		t.Fatalf("apply confirmed vault %d through %s: %v", i, tn.cfg.NodeID, err)
	}
	if resp.Code != "" {
		t.Fatalf("apply confirmed vault %d: state machine rejected it: %s %s", i, resp.Code, resp.Message)
	}
	return conf
}

// waitAppliedPayload encodes a kindWaitApplied payload.
func waitAppliedPayload(index uint64, bound time.Duration) []byte {
	b := binary.BigEndian.AppendUint64(nil, index)
	return binary.BigEndian.AppendUint32(b, uint32(bound.Milliseconds()))
}

func TestConfirm_SecurityCriticalWrites(t *testing.T) {
	nodes := startThree(t, nil)
	leader := waitLeader(t, nodes...)
	follower := followerOf(nodes, leader)
	applyVault(t, leader, 1)
	waitConverged(t, nodes...)

	t.Run("every member applied the write when it returns", func(t *testing.T) {
		conf := applyConfirmedVault(t, follower, 2, 5*time.Second)
		if conf.Members != 3 {
			t.Errorf("members = %d, want 3", conf.Members)
		}
		if conf.Confirmed != 3 {
			t.Errorf("confirmed = %d, want 3 (unconfirmed %v)", conf.Confirmed, conf.Unconfirmed)
		}
		for _, tn := range nodes {
			if got := tn.sm.AppliedIndex(); got < conf.Index {
				t.Errorf("%s applied index %d right after the confirmed write at %d", tn.cfg.NodeID, got, conf.Index)
			}
		}
	})

	t.Run("a member that times out raises its fence until it applies", func(t *testing.T) {
		target := follower.sm.AppliedIndex() + 3
		res := follower.node.serveWaitApplied(&request{
			kind: kindWaitApplied, hops: 1, timeout: 50 * time.Millisecond, origin: "test",
			payload: waitAppliedPayload(target, 5*time.Second),
		})
		if res.status != statusOK || len(res.payload) != 1 || res.payload[0] != outcomeTimeout {
			t.Fatalf("reply = status %d payload %v, want OK with outcome timeout", res.status, res.payload)
		}
		if follower.node.Ready() {
			t.Fatalf("%s is ready with a fence at %d and applied index %d", follower.cfg.NodeID, target, follower.sm.AppliedIndex())
		}
		for i := 10; i < 13; i++ {
			applyVault(t, leader, i)
		}
		waitFor(t, 5*time.Second, "the fenced follower to apply the entry and be ready", follower.node.Ready)
	})

	t.Run("a malformed wait request is rejected", func(t *testing.T) {
		res := follower.node.serveWaitApplied(&request{kind: kindWaitApplied, hops: 1, payload: []byte{1, 2, 3}})
		if res.status != statusBadRequest {
			t.Errorf("status = %d, want %d", res.status, statusBadRequest)
		}
	})

	t.Run("an unreachable member counts as stale after the wait", func(t *testing.T) {
		down := followerOf(nodes, leader)
		var up *testNode
		for _, tn := range nodes {
			if tn != leader && tn != down {
				up = tn
			}
		}
		downNode := down.node
		down.stopAbruptly()
		const wait = time.Second
		start := time.Now()
		conf := applyConfirmedVault(t, up, 20, wait)
		elapsed := time.Since(start)
		if conf.Confirmed != 2 || conf.Members != 3 {
			t.Errorf("confirmed %d of %d, want 2 of 3", conf.Confirmed, conf.Members)
		}
		if len(conf.Unconfirmed) != 1 || conf.Unconfirmed[0] != down.cfg.NodeID {
			t.Errorf("unconfirmed = %v, want [%s]", conf.Unconfirmed, down.cfg.NodeID)
		}
		if elapsed < wait {
			t.Errorf("returned after %s, before the wait of %s ended", elapsed, wait)
		}
		if s := downNode.Staleness(); s <= wait {
			t.Errorf("the unreachable member's staleness is %s at return, want above %s", s, wait)
		}
	})
}
