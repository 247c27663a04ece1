package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// runReads measures signed reads on one node, then on 2..N nodes, then at
// fractions of the one-node rate for latency against load.
func (r *runner) runReads(ctx context.Context) error {
	fx, err := r.setupReaders(ctx)
	if err != nil {
		return err
	}
	res := &ReadsResult{Machines: r.cfg.Machines, Presigned: r.cfg.Presign}
	r.report.Reads = res

	one, err := r.readRun(ctx, fx, "reads 1 node", 1, r.cfg.Rate, r.cfg.Duration)
	if err != nil {
		return err
	}
	r.report.ReadsPerSecond = one.PerSecond
	r.report.RatioToVerifyFloor = one.PerSecond / r.report.VerifyFloorPerSecond
	res.Nodes = append(res.Nodes, NodeScaling{Nodes: 1, ReadsPerSecond: one.PerSecond, RatioToLinear: 1})

	for k := 2; k <= len(r.urls); k++ {
		run, err := r.readRun(ctx, fx, fmt.Sprintf("reads %d nodes", k), k, r.cfg.Rate, r.cfg.Duration)
		if err != nil {
			return err
		}
		ratio := run.PerSecond / (float64(k) * one.PerSecond)
		res.Nodes = append(res.Nodes, NodeScaling{Nodes: k, ReadsPerSecond: run.PerSecond, RatioToLinear: ratio})
		res.RatioAcrossNodes = ratio
	}

	for _, fraction := range r.cfg.Sweep {
		rate := fraction * one.PerSecond
		run, err := r.readRun(ctx, fx, fmt.Sprintf("reads at %.0f%% of max", fraction*100), 1, rate, r.cfg.sweepDuration())
		if err != nil {
			return err
		}
		res.Sweep = append(res.Sweep, newSweepPoint(fraction, rate, run))
	}
	return nil
}

// setupReaders creates the base objects and the reading machines.
func (r *runner) setupReaders(ctx context.Context) (*fixture, error) {
	start := time.Now()
	fx, err := r.createBase(ctx)
	if err != nil {
		return nil, err
	}
	machines, err := r.registerMachines(ctx, fx, r.cfg.Machines)
	if err != nil {
		return nil, err
	}
	fx.readers = newReadSet(fx.secretID, machines)
	r.report.Setup = &Setup{VaultID: fx.vaultID, Machines: len(machines), Seconds: time.Since(start).Seconds()}
	return fx, nil
}

func newSweepPoint(fraction, rate float64, run LoadRun) SweepPoint {
	pt := SweepPoint{Fraction: fraction, TargetRate: rate, ReadsPerSecond: run.PerSecond, Latency: run.Latency}
	if run.Latency.P50 > 0 {
		pt.P99OverP50 = run.Latency.P99 / run.Latency.P50
		pt.P999OverP50 = run.Latency.P999 / run.Latency.P50
	}
	return pt
}

// readRun runs signed reads of the fixture's secret against the first
// nodes targets, closed-loop, or open-loop when rate is positive.
func (r *runner) readRun(ctx context.Context, fx *fixture, name string, nodes int, rate float64, d time.Duration) (LoadRun, error) {
	reads, err := r.newReads(fx.readers, nodes, r.cfg.Connections)
	if err != nil {
		return LoadRun{}, err
	}
	if err := waitReadable(ctx, fx.readers, reads.targets(), http.StatusOK); err != nil {
		return LoadRun{}, err
	}
	r.presign(fx.readers, rate, d)

	run, err := r.load(ctx, loadSpec{name: name, connections: r.cfg.Connections, rate: rate, duration: d, send: reads.send})
	run.Nodes = nodes
	reads.describe(&run)
	r.report.Runs = append(r.report.Runs, run)
	return run, err
}

// readSet is a set of machines that read one secret, with the pool of
// requests signed ahead for them.
type readSet struct {
	signer *signer
	pool   *presignPool
}

func newReadSet(secretID string, machines []machineKey) *readSet {
	s := newSigner("/v1/secret/"+secretID, machines)
	return &readSet{signer: s, pool: newPresignPool(s)}
}

// newReads returns a sender of the set's reads over the first nodes
// targets, with conns workers.
func (r *runner) newReads(set *readSet, nodes, conns int) (*signedReads, error) {
	perNode := (conns + nodes - 1) / nodes
	targets, err := r.targets(nodes, perNode)
	if err != nil {
		return nil, err
	}
	var pool *presignPool
	if r.cfg.Presign {
		pool = set.pool
	}
	return newSignedReads(set.signer, pool, targets, conns), nil
}

// presign tops up the set's pool for a run when Config.Presign is set.
func (r *runner) presign(set *readSet, rate float64, d time.Duration) {
	if !r.cfg.Presign {
		return
	}
	n := presignCount(rate, r.report.VerifyFloorPerSecond, d)
	p := r.progress("presign", 0, int64(n))
	set.pool.fill(n, func() { p.add(true) })
	p.finish()
}
