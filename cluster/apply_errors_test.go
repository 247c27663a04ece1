package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// TestApply_ClassifyRaftErrors pins which Raft failures are "outcome
// unknown": an entry that reached the leader's log (index > 0) may commit
// under the next leader, so it must never be reported as a plain failure.
func TestApply_ClassifyRaftErrors(t *testing.T) {
	cases := []struct {
		name          string
		err           error
		index         uint64
		indeterminate bool
		retry         bool
		deadline      bool
	}{
		{"leadership lost after append", raft.ErrLeadershipLost, 42, true, false, false},
		{"shutdown after append", raft.ErrRaftShutdown, 42, true, false, false},
		{"not leader before append", raft.ErrNotLeader, 0, false, true, false},
		{"transfer in progress", raft.ErrLeadershipTransferInProgress, 0, false, true, false},
		{"shutdown before append", raft.ErrRaftShutdown, 0, false, true, false},
		{"aborted by restore", raft.ErrAbortedByRestore, 42, false, true, false},
		{"enqueue timeout", raft.ErrEnqueueTimeout, 0, false, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classifyApplyError(tc.err, tc.index)
			var retry *retryError
			if errors.Is(got, ErrIndeterminate) != tc.indeterminate {
				t.Errorf("classify(%v, %d) = %v; indeterminate = %v, want %v",
					tc.err, tc.index, got, !tc.indeterminate, tc.indeterminate)
			}
			if errors.As(got, &retry) != tc.retry {
				t.Errorf("classify(%v, %d) = %v; retry = %v, want %v", tc.err, tc.index, got, !tc.retry, tc.retry)
			}
			if errors.Is(got, context.DeadlineExceeded) != tc.deadline {
				t.Errorf("classify(%v, %d) = %v; deadline = %v, want %v",
					tc.err, tc.index, got, !tc.deadline, tc.deadline)
			}
		})
	}
}

// TestApply_StatusRoundTrip checks that the leader's error reaches the
// origin as the same kind of error.
func TestApply_StatusRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		match func(error) bool
	}{
		{"indeterminate", fmt.Errorf("%w: lost", ErrIndeterminate), func(e error) bool { return errors.Is(e, ErrIndeterminate) }},
		{"indeterminate with deadline", fmt.Errorf("%w: %w", ErrIndeterminate, context.DeadlineExceeded),
			func(e error) bool { return errors.Is(e, ErrIndeterminate) }},
		{"not proposed in time", fmt.Errorf("x: %w", context.DeadlineExceeded), func(e error) bool {
			return errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, ErrIndeterminate)
		}},
		{"retry", &retryError{reason: "no leader"}, func(e error) bool { var r *retryError; return errors.As(e, &r) }},
		{"unknown member", fmt.Errorf("%w: x", ErrUnknownMember), func(e error) bool { return errors.Is(e, ErrUnknownMember) }},
		{"member alive", fmt.Errorf("%w: x", ErrMemberAlive), func(e error) bool { return errors.Is(e, ErrMemberAlive) }},
		{"other failure", errors.New("disk full"), func(e error) bool {
			return e != nil && !errors.Is(e, ErrIndeterminate) && !errors.Is(e, ErrNoLeader)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := responseFromError(tc.err)
			got := errorFromStatus(res, "leader-1")
			if !tc.match(got) {
				t.Errorf("round trip of %v gave %v (status %d)", tc.err, got, res.status)
			}
		})
	}
	if got := errorFromStatus(responseFromError(nil), "l"); got != nil {
		t.Errorf("round trip of nil gave %v", got)
	}
}
