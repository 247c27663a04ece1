package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// defaultFloodNormalRate is the open-loop rate, in requests per second,
// of the normal reads in the flood scenario when --rate is not set. It is
// a steady load well below a node's capacity, so that a change in its
// latency comes from the flood.
const defaultFloodNormalRate = 1000

// throttledMetric counts the blocked requests a node rejected before
// signature verification.
const throttledMetric = "keyward_guardrail_throttled_total"

// runFlood measures a machine's normal reads at a fixed rate, first alone
// and then beside a flood of reads from a second machine whose guardrail
// blocks every one of them. The flood is closed-loop, or open-loop at
// FloodRate when that is set.
func (r *runner) runFlood(ctx context.Context) error {
	fx, err := r.setupReaders(ctx)
	if err != nil {
		return err
	}
	blocked, err := r.registerBlockedMachine(ctx, fx)
	if err != nil {
		return err
	}
	rate := r.cfg.Rate
	if rate <= 0 {
		rate = defaultFloodNormalRate
	}
	// The normal reads get as many connections as the flood, so that a
	// slower server shows as latency and not as a client out of
	// connections.
	normalConns := r.cfg.Connections

	baseline, err := r.floodNormalRun(ctx, fx, "normal reads alone", rate, normalConns, nil)
	if err != nil {
		return err
	}

	blockedSet := newReadSet(fx.secretID, []machineKey{blocked})
	flood, err := r.newReads(blockedSet, 1, r.cfg.Connections)
	if err != nil {
		return err
	}
	if err := waitReadable(ctx, blockedSet, flood.targets(), http.StatusForbidden); err != nil {
		return err
	}
	r.presign(blockedSet, r.cfg.FloodRate, r.cfg.Duration)
	floodSpec := loadSpec{
		name: "blocked flood", connections: r.cfg.Connections, rate: r.cfg.FloodRate, duration: r.cfg.Duration, send: flood.send,
		success: func(status int) bool { return status == http.StatusForbidden },
	}
	metrics := flood.targets()[0]
	throttledBefore, haveMetric := r.scrapeCounter(metrics, throttledMetric)
	under, err := r.floodNormalRun(ctx, fx, "normal reads under flood", rate, normalConns, &floodSpec)
	if err != nil {
		return err
	}
	throttledAfter, haveAfter := r.scrapeCounter(metrics, throttledMetric)

	flood.describe(&r.report.Runs[len(r.report.Runs)-1])
	floodRun := r.report.Runs[len(r.report.Runs)-1]
	res := newFloodResult(rate, r.cfg, baseline, under, floodRun)
	if haveMetric && haveAfter && floodRun.Seconds > 0 {
		perSecond := (throttledAfter - throttledBefore) / floodRun.Seconds
		res.ThrottledPerSecond = &perSecond
		if res.BlockedPerSecond > 0 {
			share := perSecond / res.BlockedPerSecond
			res.ThrottledShare = &share
		}
	}
	r.report.Flood = res
	return nil
}

// newFloodResult compares the normal reads alone and under the flood.
func newFloodResult(rate float64, cfg Config, baseline, under, flood LoadRun) *FloodResult {
	res := &FloodResult{
		NormalRate: rate, FloodMode: flood.Mode, FloodConnections: flood.Connections, FloodTargetRate: cfg.FloodRate,
		Baseline: baseline.Latency, UnderFlood: under.Latency,
		BlockedPerSecond: flood.PerSecond, BlockedStatuses: flood.Errors, NormalErrorsFlood: under.Errors,
	}
	res.P50Ratio = ratio(under.Latency.P50, baseline.Latency.P50)
	res.P99Ratio = ratio(under.Latency.P99, baseline.Latency.P99)
	res.P999Ratio = ratio(under.Latency.P999, baseline.Latency.P999)
	return res
}

// ratio returns a / b, or zero when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// floodNormalRun runs the normal open-loop reads, beside flood when it is
// not nil, and adds the runs to the report (the flood run last).
func (r *runner) floodNormalRun(ctx context.Context, fx *fixture, name string, rate float64, conns int, flood *loadSpec) (LoadRun, error) {
	reads, err := r.newReads(fx.readers, 1, conns)
	if err != nil {
		return LoadRun{}, err
	}
	if err := waitReadable(ctx, fx.readers, reads.targets(), http.StatusOK); err != nil {
		return LoadRun{}, err
	}
	r.presign(fx.readers, rate, r.cfg.Duration)
	spec := loadSpec{name: name, connections: conns, rate: rate, duration: r.cfg.Duration, send: reads.send}

	var normal, blocked LoadRun
	if flood == nil {
		normal, err = r.load(ctx, spec)
	} else {
		normal, blocked, err = r.loadTogether(ctx, spec, *flood)
	}
	normal.Nodes = 1
	reads.describe(&normal)
	r.report.Runs = append(r.report.Runs, normal)
	if flood != nil {
		blocked.Nodes = 1
		r.report.Runs = append(r.report.Runs, blocked)
	}
	return normal, err
}

// scrapeCounter reads the counter name from the node's GET /metrics, and
// reports false when the request fails or the node does not export it.
func (r *runner) scrapeCounter(t *target, name string) (float64, bool) {
	req := t.newRequest(fasthttp.MethodGet, "/metrics")
	resp := &fasthttp.Response{}
	if err := t.hc.DoTimeout(req, resp, 10*time.Second); err != nil {
		r.log.Warn("read node metrics", "node", t.url, "err", err)
		return 0, false
	}
	if resp.StatusCode() != http.StatusOK {
		r.log.Warn("read node metrics", "node", t.url, "status", resp.StatusCode())
		return 0, false
	}
	value, ok, err := counterValue(resp.Body(), name)
	if err != nil {
		r.log.Warn("read node metrics", "node", t.url, "metric", name, "err", err)
	}
	return value, ok
}

// counterValue returns the sum of the samples of a counter in the
// Prometheus text format, and whether any sample was found.
func counterValue(text []byte, name string) (float64, bool, error) {
	var (
		sum   float64
		found bool
	)
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		rest := line[len(name):]
		if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue // another metric whose name starts with this one
		}
		fields := bytes.Fields(rest[bytes.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			return 0, false, fmt.Errorf("sample %q has no value", line)
		}
		v, err := strconv.ParseFloat(string(fields[0]), 64)
		if err != nil {
			return 0, false, fmt.Errorf("sample %q: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, sc.Err()
}
