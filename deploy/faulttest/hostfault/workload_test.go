package hostfault

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"
)

// workload sends, until stopped, a signed read of the secret and a request
// that a guardrail blocks to every node every 100 ms, and one extension a
// second through the nodes in turn. It records what came back.
type workload struct {
	c       *cluster
	f       fixture
	reader  machine
	blocked machine
	stop    context.CancelFunc
	wg      sync.WaitGroup

	mu sync.Mutex
	// served holds, per node, when each read of the secret succeeded.
	served map[string][]time.Time
	// readStatus and blockedStatus count statuses per node; status 0 is a
	// request that got no response.
	readStatus    map[string]map[int]int
	blockedStatus map[string]map[int]int
	// leaks lists blocked requests that were served.
	leaks []string
	// acked holds the reasons of extensions that returned 200; extStatus
	// counts the statuses of all of them.
	acked     []string
	extStatus map[int]int
	// extFailures describes the extensions that did not return 200.
	extFailures []string
	// slowest is the longest time any request took.
	slowest time.Duration
}

func startWorkload(c *cluster, f fixture, reader, blocked machine) *workload {
	ctx, stop := context.WithCancel(context.Background())
	w := &workload{
		c: c, f: f, reader: reader, blocked: blocked, stop: stop,
		served:        map[string][]time.Time{},
		readStatus:    map[string]map[int]int{},
		blockedStatus: map[string]map[int]int{},
		extStatus:     map[int]int{},
	}
	for _, n := range c.nodes {
		w.readStatus[n.id] = map[int]int{}
		w.blockedStatus[n.id] = map[int]int{}
		w.wg.Add(1)
		go w.checkLoop(ctx, n)
	}
	w.wg.Add(1)
	go w.extendLoop(ctx)
	return w
}

// halt stops the workload and waits for requests in flight.
func (w *workload) halt() {
	w.stop()
	w.wg.Wait()
}

func (w *workload) checkLoop(ctx context.Context, n *node) {
	defer w.wg.Done()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		w.check(n)
	}
}

// check sends one read and one blocked request to n. Requests are never
// cancelled by the workload's stop, so none ends as "no response" for that.
func (w *workload) check(n *node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	status, _, _ := readSecret(ctx, n, w.reader, w.f)
	took := time.Since(start)
	blockedStatus, body, _ := readSecret(ctx, n, w.blocked, w.f)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.slowest = max(w.slowest, took, time.Since(start)-took)
	w.readStatus[n.id][status]++
	if status == http.StatusOK {
		w.served[n.id] = append(w.served[n.id], start)
	}
	w.blockedStatus[n.id][blockedStatus]++
	if blockedStatus == http.StatusOK {
		w.leaks = append(w.leaks, fmt.Sprintf("%s served a blocked request at %s: %s", n.id, start.Format("15:04:05.000"), body))
	}
}

func (w *workload) extendLoop(ctx context.Context) {
	defer w.wg.Done()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		n := w.c.nodes[i%len(w.c.nodes)]
		reason := fmt.Sprintf("extension-%03d", i)
		reqCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		start := time.Now()
		status, body, err := w.c.extend(reqCtx, n, w.f, w.reader, reason)
		cancel()
		w.mu.Lock()
		w.extStatus[status]++
		if status == http.StatusOK {
			w.acked = append(w.acked, reason)
		} else {
			w.extFailures = append(w.extFailures, fmt.Sprintf("%s via %s after %s: %d %s %v",
				reason, n.id, time.Since(start).Round(time.Millisecond), status, clip(body), err))
		}
		w.mu.Unlock()
	}
}

// maxGap returns the longest time between two successful reads on node id
// within [from, to], counting from from and up to to.
func (w *workload) maxGap(id string, from, to time.Time) time.Duration {
	w.mu.Lock()
	times := append([]time.Time(nil), w.served[id]...)
	w.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	last, gap := from, time.Duration(0)
	for _, at := range times {
		if at.Before(from) || at.After(to) {
			continue
		}
		gap = max(gap, at.Sub(last))
		last = at
	}
	return max(gap, to.Sub(last))
}

// summary describes the statuses seen, for the test log.
func (w *workload) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("reads by node and status %v; blocked requests %v; extensions %v (%d acknowledged); "+
		"slowest check %s; extensions that failed: %v",
		w.readStatus, w.blockedStatus, w.extStatus, len(w.acked), w.slowest.Round(time.Millisecond), w.extFailures)
}

// clip shortens a response body for a log line.
func clip(b []byte) string {
	const limit = 300
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
