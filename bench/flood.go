package bench

import (
	"context"
	"net/http"
)

// defaultFloodNormalRate is the open-loop rate, in requests per second,
// of the normal reads in the flood scenario when --rate is not set. It is
// a steady load well below a node's capacity, so that a change in its
// latency comes from the flood.
const defaultFloodNormalRate = 1000

// runFlood measures a machine's normal reads at a fixed rate, first alone
// and then beside a closed-loop flood of reads from a second machine whose
// guardrail blocks every one of them.
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
	r.presign(blockedSet, 0, r.cfg.Duration)
	floodSpec := loadSpec{
		name: "blocked flood", connections: r.cfg.Connections, duration: r.cfg.Duration, send: flood.send,
		success: func(status int) bool { return status == http.StatusForbidden },
	}
	under, err := r.floodNormalRun(ctx, fx, "normal reads under flood", rate, normalConns, &floodSpec)
	if err != nil {
		return err
	}

	flood.describe(&r.report.Runs[len(r.report.Runs)-1])
	floodRun := r.report.Runs[len(r.report.Runs)-1]
	res := &FloodResult{
		NormalRate: rate, Baseline: baseline.Latency, UnderFlood: under.Latency,
		BlockedPerSecond: floodRun.PerSecond, BlockedStatuses: floodRun.Errors, NormalErrorsFlood: under.Errors,
	}
	if baseline.Latency.P99 > 0 {
		res.P99Ratio = under.Latency.P99 / baseline.Latency.P99
	}
	r.report.Flood = res
	return nil
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
