package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// startLoner starts a node that never bootstraps, so it has no leader
// unless a test gives it a view of one.
func startLoner(t *testing.T, id string) *testNode {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(id, dir)
	cfg.LeaderWait = 300 * time.Millisecond
	return startNode(t, cfg, dir)
}

func staticLeader(addr, id string) func() (raft.ServerAddress, raft.ServerID) {
	return func() (raft.ServerAddress, raft.ServerID) {
		return raft.ServerAddress(addr), raft.ServerID(id)
	}
}

func applyErr(t *testing.T, tn *testNode, timeout time.Duration) (error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	resp, err := tn.node.Apply(ctx, vaultCommand(t, 1))
	if err == nil {
		t.Fatalf("apply succeeded with response %+v, want an error", resp)
	}
	return err, time.Since(start)
}

func TestForward_StaleSelfLeaderFailsFast(t *testing.T) {
	a := startLoner(t, "a")
	a.node.leaderLookup = staticLeader(a.node.RaftAddr(), "someone-else")

	err, took := applyErr(t, a, 5*time.Second)
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("apply error = %v, want ErrNoLeader", err)
	}
	if took > time.Second {
		t.Errorf("apply took %s, want under 1s", took)
	}
	if got := a.node.forwardsSent.Load(); got != 0 {
		t.Errorf("node forwarded %d requests to itself, want 0", got)
	}
}

func TestForward_MutualStaleLeadersBounded(t *testing.T) {
	a := startLoner(t, "a")
	b := startLoner(t, "b")
	// Each believes the other leads, as during an election.
	a.node.leaderLookup = staticLeader(b.node.RaftAddr(), "b")
	b.node.leaderLookup = staticLeader(a.node.RaftAddr(), "a")

	err, took := applyErr(t, a, 10*time.Second)
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("apply error = %v, want ErrNoLeader", err)
	}
	if errors.Is(err, ErrIndeterminate) {
		t.Errorf("apply error = %v, must not be indeterminate: nothing was proposed", err)
	}
	if max := a.cfg.LeaderWait + 2*time.Second; took > max {
		t.Errorf("apply took %s, want under %s", took, max)
	}
	if got := a.node.forwardsSent.Load(); got != 2 {
		t.Errorf("origin sent %d forwards, want 2 (one attempt and one retry)", got)
	}
	if got := b.node.forwardsServed.Load(); got != 2 {
		t.Errorf("peer served %d forwards, want 2", got)
	}
	if got := b.node.forwardsSent.Load(); got != 0 {
		t.Errorf("peer forwarded %d requests onwards, want 0", got)
	}
}

// fakeLeader accepts forwarding connections, reads one request from each
// and then runs after on the connection.
func fakeLeader(t *testing.T, after func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			var channel [1]byte
			if _, err := io.ReadFull(conn, channel[:]); err == nil {
				if _, err := readFrame(conn); err == nil {
					after(conn)
				}
			}
			conn.Close()
		}
	}()
	return ln.Addr().String()
}

func TestForward_OutcomeUnknownAfterSend(t *testing.T) {
	t.Run("connection closed after the request", func(t *testing.T) {
		a := startLoner(t, "a")
		a.node.leaderLookup = staticLeader(fakeLeader(t, func(net.Conn) {}), "l")
		err, _ := applyErr(t, a, 5*time.Second)
		if !errors.Is(err, ErrIndeterminate) {
			t.Fatalf("apply error = %v, want ErrIndeterminate", err)
		}
	})
	t.Run("deadline passes while the leader is silent", func(t *testing.T) {
		a := startLoner(t, "a")
		release := make(chan struct{})
		defer close(release)
		a.node.leaderLookup = staticLeader(fakeLeader(t, func(net.Conn) { <-release }), "l")
		err, took := applyErr(t, a, 300*time.Millisecond)
		if !errors.Is(err, ErrIndeterminate) {
			t.Errorf("apply error = %v, want ErrIndeterminate", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("apply error = %v, want it to match context.DeadlineExceeded", err)
		}
		if took > 2*time.Second {
			t.Errorf("apply took %s, want about the 300ms deadline", took)
		}
	})
	t.Run("unreachable leader is a definite failure", func(t *testing.T) {
		a := startLoner(t, "a")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		closedAddr := ln.Addr().String()
		ln.Close()
		a.node.leaderLookup = staticLeader(closedAddr, "l")
		err, _ = applyErr(t, a, 5*time.Second)
		if !errors.Is(err, ErrNoLeader) || errors.Is(err, ErrIndeterminate) {
			t.Fatalf("apply error = %v, want ErrNoLeader and not ErrIndeterminate", err)
		}
	})
}

// rawForward opens a plain forwarding connection to tn.
func rawForward(t *testing.T, tn *testNode) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", tn.node.RaftAddr(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte{channelForward}); err != nil {
		t.Fatalf("write channel byte: %v", err)
	}
	return conn
}

func TestForward_ServerRejectsBadFrames(t *testing.T) {
	a := startLoner(t, "a")

	t.Run("oversized length closes the connection", func(t *testing.T) {
		conn := rawForward(t, a)
		var head [4]byte
		binary.BigEndian.PutUint32(head[:], maxFrameBytes+1)
		if _, err := conn.Write(head[:]); err != nil {
			t.Fatalf("write header: %v", err)
		}
		if _, err := readFrame(conn); err == nil {
			t.Fatalf("server answered an oversized frame, want the connection closed")
		}
	})

	cases := []struct {
		name string
		req  request
	}{
		{"hop count above one", request{kind: kindApply, hops: 2, origin: "x", payload: []byte("{}")}},
		{"hop count zero", request{kind: kindApply, hops: 0, origin: "x", payload: []byte("{}")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawForward(t, a)
			if err := writeFrame(conn, tc.req.encode()); err != nil {
				t.Fatalf("write request: %v", err)
			}
			body, err := readFrame(conn)
			if err != nil {
				t.Fatalf("read reply: %v", err)
			}
			res, err := decodeResponse(body)
			if err != nil {
				t.Fatalf("decode reply: %v", err)
			}
			if res.status != statusBadRequest {
				t.Errorf("status = %d, want %d (bad request)", res.status, statusBadRequest)
			}
		})
	}

	t.Run("truncated header gets a bad request", func(t *testing.T) {
		conn := rawForward(t, a)
		if err := writeFrame(conn, []byte{kindApply, 1}); err != nil {
			t.Fatalf("write request: %v", err)
		}
		body, err := readFrame(conn)
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
		if res, err := decodeResponse(body); err != nil || res.status != statusBadRequest {
			t.Errorf("reply = %+v, %v; want status bad request", res, err)
		}
	})

	t.Run("non-leader refuses without forwarding", func(t *testing.T) {
		conn := rawForward(t, a)
		req := request{kind: kindApply, hops: 1, origin: "x", payload: []byte("{}")}
		if err := writeFrame(conn, req.encode()); err != nil {
			t.Fatalf("write request: %v", err)
		}
		body, err := readFrame(conn)
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
		if res, err := decodeResponse(body); err != nil || res.status != statusNotLeader {
			t.Errorf("reply = %+v, %v; want status not leader", res, err)
		}
		if got := a.node.forwardsSent.Load(); got != 0 {
			t.Errorf("node forwarded %d requests, want 0", got)
		}
	})

	t.Run("unknown channel byte is closed", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", a.node.RaftAddr(), 2*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte{0x16, 0x03, 0x01})
		var b [1]byte
		if _, err := conn.Read(b[:]); err == nil {
			t.Errorf("server sent data on an unknown channel, want the connection closed")
		}
	})
}
