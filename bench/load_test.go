package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestLoad_IntendedSendTime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		i    int64
		rate float64
		want time.Duration
	}{
		{"first request at start", 0, 1000, 0},
		{"one per millisecond", 7, 1000, 7 * time.Millisecond},
		{"fractional interval", 3, 3, time.Second},
		{"high rate", 250_000, 50_000, 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := intendedSendTime(start, c.i, c.rate).Sub(start); got != c.want {
				t.Errorf("request %d at %g/s: offset %v, want %v", c.i, c.rate, got, c.want)
			}
		})
	}
}

func TestLoad_ScheduledBefore(t *testing.T) {
	cases := []struct {
		name string
		d    time.Duration
		rate float64
		want int64
	}{
		{"whole count", time.Second, 1000, 1000},
		{"partial interval counts", 1500 * time.Millisecond, 1, 2},
		{"zero duration", 0, 1000, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := scheduledBefore(c.d, c.rate); got != c.want {
				t.Errorf("scheduledBefore(%v, %g) = %d, want %d", c.d, c.rate, got, c.want)
			}
		})
	}
}

// stallingTarget returns 200 at once, except for request stallAt, which
// takes stall. One connection in front of it gets a single slow response,
// and the requests scheduled during the stall wait behind it.
func stallingTarget(stallAt int64, stall time.Duration) requestFunc {
	return func(_ int, seq int64) (int, error) {
		if seq == stallAt {
			time.Sleep(stall)
		}
		return 200, nil
	}
}

func TestLoad_OpenLoopChargesQueueingBehindAStall(t *testing.T) {
	const stall = 200 * time.Millisecond
	spec := loadSpec{
		name: "stall", connections: 1, rate: 1000, duration: 600 * time.Millisecond,
		send: stallingTarget(10, stall),
	}
	run, err := runLoad(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}

	// About 200 of the ~600 requests were scheduled during the stall and
	// waited up to 200 ms for the one connection. So more than 10% of the
	// corrected latencies exceed 100 ms, while only the stalled request
	// itself has a long service time.
	if run.Latency.P90 < 100 {
		t.Errorf("corrected p90 = %v ms, want at least 100 ms: queueing behind the stall was not charged", run.Latency.P90)
	}
	if run.ServiceTime == nil {
		t.Fatal("open-loop run has no service time")
	}
	if run.ServiceTime.P90 >= 50 {
		t.Errorf("service-time p90 = %v ms, want under 50 ms: only one request was slow", run.ServiceTime.P90)
	}
	if run.Latency.Max < millis(stall) {
		t.Errorf("corrected max = %v ms, want at least %v", run.Latency.Max, millis(stall))
	}
	if run.Mode != modeOpen {
		t.Errorf("mode = %q, want %q", run.Mode, modeOpen)
	}
}

func TestLoad_ClosedLoopHidesTheStall(t *testing.T) {
	// The same stall measured closed-loop: the connection simply sends
	// nothing while it waits, so only one latency is long. This is the
	// coordinated omission that the open-loop mode corrects.
	spec := loadSpec{name: "stall", connections: 1, duration: 400 * time.Millisecond, send: stallingTarget(10, 200*time.Millisecond)}
	run, err := runLoad(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.Latency.P90 >= 50 {
		t.Errorf("closed-loop p90 = %v ms, want under 50 ms", run.Latency.P90)
	}
	if run.Latency.Max < 200 {
		t.Errorf("closed-loop max = %v ms, want at least 200 ms", run.Latency.Max)
	}
	if run.ServiceTime != nil {
		t.Errorf("closed-loop run has a separate service time %+v", run.ServiceTime)
	}
}

func TestLoad_ErrorsByStatusAndKind(t *testing.T) {
	send := func(_ int, seq int64) (int, error) {
		switch seq % 4 {
		case 1:
			return 503, nil
		case 2:
			return 0, fasthttp.ErrTimeout
		case 3:
			return 0, errors.New("connection reset by peer")
		}
		return 200, nil
	}
	spec := loadSpec{name: "errors", connections: 3, limit: 400, send: send}
	run, err := runLoad(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}

	if run.Requests != 400 {
		t.Errorf("requests = %d, want 400", run.Requests)
	}
	if run.Succeeded != 100 {
		t.Errorf("succeeded = %d, want 100", run.Succeeded)
	}
	if run.Latency.Count != 100 {
		t.Errorf("latency count = %d, want 100: only successes are timed", run.Latency.Count)
	}
	for _, key := range []string{"503", "timeout", "connection"} {
		if run.Errors[key] != 100 {
			t.Errorf("errors[%q] = %d, want 100 (all: %v)", key, run.Errors[key], run.Errors)
		}
	}
}

func TestLoad_CustomSuccessStatus(t *testing.T) {
	spec := loadSpec{
		name: "blocked", connections: 2, limit: 50,
		send:    func(int, int64) (int, error) { return 403, nil },
		success: func(status int) bool { return status == 403 },
	}
	run, err := runLoad(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.Succeeded != 50 || len(run.Errors) != 0 {
		t.Errorf("succeeded %d with errors %v, want 50 and none", run.Succeeded, run.Errors)
	}
}

func TestLoad_OpenLoopCountsUnsent(t *testing.T) {
	// One connection and a target that takes 20 ms cannot send 1,000/s:
	// about 10 of the 200 scheduled requests go out, the rest are unsent.
	spec := loadSpec{
		name: "overload", connections: 1, rate: 1000, duration: 200 * time.Millisecond,
		send: func(int, int64) (int, error) { time.Sleep(20 * time.Millisecond); return 200, nil },
	}
	run, err := runLoad(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.Unsent < 150 {
		t.Errorf("unsent = %d of 200 scheduled (%d sent), want at least 150", run.Unsent, run.Requests)
	}
	if run.Requests+run.Unsent != 200 {
		t.Errorf("sent %d + unsent %d = %d, want the 200 scheduled", run.Requests, run.Unsent, run.Requests+run.Unsent)
	}
}

func TestLoad_CancelStopsRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	send := func(int, int64) (int, error) {
		if calls.Add(1) == 20 {
			cancel()
		}
		time.Sleep(time.Millisecond)
		return 200, nil
	}
	start := time.Now()
	run, err := runLoad(ctx, loadSpec{name: "cancel", connections: 2, duration: time.Minute, send: send}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("run took %v after cancellation", elapsed)
	}
	if run.Requests < 20 {
		t.Errorf("requests = %d, want the ones completed before cancellation", run.Requests)
	}
}
