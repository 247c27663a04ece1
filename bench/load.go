package bench

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// requestFunc sends request number seq (from zero, unique within a run)
// for the load worker numbered worker, and returns the response status, or
// an error when no response arrived. It is called concurrently with
// distinct worker numbers, never twice at once with the same number, so
// per-worker state needs no lock.
type requestFunc func(worker int, seq int64) (status int, err error)

// Load modes.
const (
	modeClosed = "closed"
	modeOpen   = "open"
)

// loadSpec describes one load run.
type loadSpec struct {
	name        string
	connections int
	// rate is in requests per second. Zero runs closed-loop.
	rate float64
	// duration ends the run. Zero means no time limit, and then limit
	// must be set.
	duration time.Duration
	// limit, when positive, ends a closed-loop run after that many
	// requests.
	limit int64
	// success reports whether a status counts as a success. Nil accepts
	// every 2xx. Only successes enter the latency histogram.
	success func(status int) bool
	send    requestFunc
}

// LoadRun is the result of one load run.
type LoadRun struct {
	Name string `json:"name"`
	// Mode is "closed" (each connection sends its next request when the
	// previous one completes) or "open" (requests are sent on a fixed
	// schedule at TargetRate).
	Mode        string  `json:"mode"`
	Nodes       int     `json:"nodes,omitempty"`
	Connections int     `json:"connections"`
	TargetRate  float64 `json:"targetRate,omitempty"`
	Seconds     float64 `json:"seconds"`
	// Requests counts every request that got a response or an error.
	Requests  int64 `json:"requests"`
	Succeeded int64 `json:"succeeded"`
	// PerSecond is Succeeded divided by Seconds.
	PerSecond float64 `json:"perSecond"`
	// Presigned is the number of requests signed before the run, and
	// SignedInline the number signed while it ran (the pool ran out or
	// presigning was off).
	Presigned    int64 `json:"presigned,omitempty"`
	SignedInline int64 `json:"signedInline,omitempty"`
	// Unsent counts open-loop requests scheduled before the end of the
	// run that no connection was free to send: the target rate was not
	// reached.
	Unsent int64 `json:"unsent,omitempty"`
	// Latency of the successful requests. Open loop measures from the
	// scheduled send time, so queueing behind a slow response is included.
	Latency Latency `json:"latencyMs"`
	// ServiceTime is the open-loop latency measured from the actual send.
	// It hides queueing and is shown for comparison only.
	ServiceTime *Latency `json:"serviceTimeMs,omitempty"`
	// Errors counts the failed requests by HTTP status, or by "timeout"
	// and "connection" when no response arrived.
	Errors map[string]int64 `json:"errors"`
}

// workerStats is the record of one load worker, merged after the run.
type workerStats struct {
	latency   *latencyHistogram
	service   *latencyHistogram
	requests  int64
	succeeded int64
	errors    map[string]int64
}

func newWorkerStats() *workerStats {
	return &workerStats{latency: newLatencyHistogram(), service: newLatencyHistogram(), errors: map[string]int64{}}
}

// observe records one completed request.
func (s *workerStats) observe(spec *loadSpec, status int, err error, latency, service time.Duration, p *progress) {
	s.requests++
	ok := err == nil && spec.isSuccess(status)
	p.add(ok)
	if !ok {
		s.errors[errorKey(status, err)]++
		return
	}
	s.succeeded++
	s.latency.record(latency)
	s.service.record(service)
}

func (spec *loadSpec) isSuccess(status int) bool {
	if spec.success != nil {
		return spec.success(status)
	}
	return status >= 200 && status <= 299
}

// errorKey names a failure for the errors table.
func errorKey(status int, err error) string {
	switch {
	case err == nil:
		return strconv.Itoa(status)
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "connection"
	}
}

// intendedSendTime returns when request i (from zero) of an open-loop run
// at rate requests per second is scheduled: start + i/rate.
func intendedSendTime(start time.Time, i int64, rate float64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// scheduledBefore returns how many requests an open-loop run at rate
// schedules in the first d: the i with i/rate < d.
func scheduledBefore(d time.Duration, rate float64) int64 {
	return int64(math.Ceil(d.Seconds() * rate))
}

// runLoad runs spec until its duration has passed or ctx is done. It
// always returns the requests completed so far, and a cancelled context
// is reported as ctx.Err() beside them.
func runLoad(ctx context.Context, spec loadSpec, p *progress) (LoadRun, error) {
	stopped := &atomic.Bool{}
	stopWatch := context.AfterFunc(ctx, func() { stopped.Store(true) })
	defer stopWatch()

	stats := make([]*workerStats, spec.connections)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(spec.duration)
	if spec.duration == 0 {
		end = start.Add(100 * 365 * 24 * time.Hour)
	}
	for w := range stats {
		stats[w] = newWorkerStats()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if spec.rate > 0 {
				openLoopWorker(&spec, w, start, end, &next, stopped, stats[w], p)
			} else {
				closedLoopWorker(&spec, w, end, &next, stopped, stats[w], p)
			}
		}()
	}
	wg.Wait()

	run := mergeStats(&spec, stats, time.Since(start))
	if spec.rate > 0 && !stopped.Load() {
		run.Unsent = max(scheduledBefore(spec.duration, spec.rate)-run.Requests, 0)
	}
	return run, ctx.Err()
}

func closedLoopWorker(spec *loadSpec, w int, end time.Time, next *atomic.Int64, stopped *atomic.Bool, s *workerStats, p *progress) {
	for !stopped.Load() {
		sent := time.Now()
		if !sent.Before(end) {
			return
		}
		seq := next.Add(1) - 1
		if spec.limit > 0 && seq >= spec.limit {
			return
		}
		status, err := spec.send(w, seq)
		latency := time.Since(sent)
		s.observe(spec, status, err, latency, latency, p)
	}
}

// onTimeSlack is how late a request scheduled before the end of an
// open-loop run may go out after the end. A sleep that overshoots by a
// few scheduler ticks on a busy host is not a missed send.
const onTimeSlack = 10 * time.Millisecond

// openLoopWorker takes the next scheduled request, waits for its send
// time, sends it and charges its latency from the scheduled time. When
// every worker is busy past a send time, the request goes out late and
// its latency includes the wait: that is the correction for coordinated
// omission. Requests that are late when the run ends are not sent.
func openLoopWorker(spec *loadSpec, w int, start, end time.Time, next *atomic.Int64, stopped *atomic.Bool, s *workerStats, p *progress) {
	for !stopped.Load() {
		seq := next.Add(1) - 1
		intended := intendedSendTime(start, seq, spec.rate)
		if !intended.Before(end) {
			return
		}
		if wait := time.Until(intended); wait > 0 {
			time.Sleep(wait)
		}
		sent := time.Now()
		if !sent.Before(end) && sent.Sub(intended) > onTimeSlack {
			return
		}
		status, err := spec.send(w, seq)
		done := time.Now()
		s.observe(spec, status, err, done.Sub(intended), done.Sub(sent), p)
	}
}

// mergeStats combines the workers' records into one LoadRun.
func mergeStats(spec *loadSpec, stats []*workerStats, elapsed time.Duration) LoadRun {
	latency, service := newLatencyHistogram(), newLatencyHistogram()
	run := LoadRun{
		Name:        spec.name,
		Mode:        modeClosed,
		Connections: spec.connections,
		TargetRate:  spec.rate,
		Seconds:     elapsed.Seconds(),
		Errors:      map[string]int64{},
	}
	for _, s := range stats {
		latency.merge(s.latency)
		service.merge(s.service)
		run.Requests += s.requests
		run.Succeeded += s.succeeded
		for k, n := range s.errors {
			run.Errors[k] += n
		}
	}
	run.Latency = latency.summary()
	if spec.rate > 0 {
		run.Mode = modeOpen
		summary := service.summary()
		run.ServiceTime = &summary
	}
	if run.Seconds > 0 {
		run.PerSecond = float64(run.Succeeded) / run.Seconds
	}
	return run
}
