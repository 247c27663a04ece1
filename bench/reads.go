package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// runReads measures signed reads on one node, then on 2..N nodes, then at
// fractions of the one-node rate for latency against load.
func (r *runner) runReads(ctx context.Context) error {
	fx, err := r.setupReaders(ctx)
	if err != nil {
		return err
	}
	res := &ReadsResult{Machines: r.cfg.Machines, Presigned: r.cfg.Presign, Pipeline: r.cfg.Pipeline}
	r.report.Reads = res

	var cpu [2]cpuSample
	one, err := r.readRun(ctx, fx, "reads 1 node", 1, r.cfg.Rate, r.cfg.Duration, &cpu)
	if err != nil {
		return err
	}
	res.CPU = r.readsCPU(cpu[0], cpu[1], one)
	r.report.ReadsPerSecond = one.PerSecond
	r.report.RatioToVerifyFloor = one.PerSecond / r.report.VerifyFloorPerSecond
	res.Nodes = append(res.Nodes, NodeScaling{Nodes: 1, ReadsPerSecond: one.PerSecond, RatioToLinear: 1})

	for k := 2; k <= len(r.urls); k++ {
		run, err := r.readRun(ctx, fx, fmt.Sprintf("reads %d nodes", k), k, r.cfg.Rate, r.cfg.Duration, nil)
		if err != nil {
			return err
		}
		ratio := run.PerSecond / (float64(k) * one.PerSecond)
		res.Nodes = append(res.Nodes, NodeScaling{Nodes: k, ReadsPerSecond: run.PerSecond, RatioToLinear: ratio})
		res.RatioAcrossNodes = ratio
	}

	for _, fraction := range r.cfg.Sweep {
		rate := fraction * one.PerSecond
		run, err := r.readRun(ctx, fx, fmt.Sprintf("reads at %.0f%% of max", fraction*100), 1, rate, r.cfg.sweepDuration(), nil)
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
// nodes targets, closed-loop, or open-loop when rate is positive. A non-nil
// cpu receives CPU samples taken just before and just after the load, so
// that presigning is not counted.
func (r *runner) readRun(ctx context.Context, fx *fixture, name string, nodes int, rate float64, d time.Duration, cpu *[2]cpuSample) (LoadRun, error) {
	reads, err := r.newReads(fx.readers, nodes, r.cfg.Connections)
	if err != nil {
		return LoadRun{}, err
	}
	if err := waitReadable(ctx, fx.readers, reads.targets(), http.StatusOK); err != nil {
		return LoadRun{}, err
	}
	r.presign(fx.readers, rate, d)

	if cpu != nil {
		cpu[0] = r.sampleCPU()
	}
	run, err := r.load(ctx, loadSpec{name: name, connections: r.cfg.Connections, rate: rate, duration: d, send: reads.send})
	if cpu != nil {
		cpu[1] = r.sampleCPU()
	}
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
	if depth := r.cfg.Pipeline; depth > 1 {
		for _, t := range targets {
			t.pipeline(max(perNode/depth, 1), depth, r.cfg.RequestTimeout)
		}
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

// ReadsCPU is the CPU time behind the one-node closed-loop run, for a node
// that the bench started. On a host whose cores the node shares with the
// load generator and other work, reads per second understate what the node
// does with the cores to itself; CPU time per read does not.
type ReadsCPU struct {
	// VerifyCPUMicros is the CPU time of one Ed25519 verification with an
	// expanded key on one thread (the floor's voiExpandedVerifyMicros,
	// measured in thread CPU time rather than wall time).
	VerifyCPUMicros float64 `json:"verifyCpuMicros"`
	// ServerCPUMicrosPerRead is the node process's CPU time (user and
	// system, every thread) during the run divided by the successful
	// reads; BenchCPUMicrosPerRead is the same for the bench process, the
	// load generator.
	ServerCPUMicrosPerRead float64 `json:"serverCpuMicrosPerRead"`
	BenchCPUMicrosPerRead  float64 `json:"benchCpuMicrosPerRead"`
	// RatioToVerifyFloor is VerifyCPUMicros / ServerCPUMicrosPerRead: the
	// reads per second the node would serve with every core to itself,
	// divided by verifyFloorPerSecond measured in CPU time.
	RatioToVerifyFloor float64 `json:"ratioToVerifyFloor"`
	// SignaturesPerBatch is the mean number of signatures the node verified
	// together during the run (keyward_verify_signatures_total divided by
	// keyward_verify_batches_total); 1 means no batching.
	SignaturesPerBatch float64 `json:"signaturesPerBatch,omitempty"`
}

// cpuSample is the CPU counters at one moment.
type cpuSample struct {
	server, bench       time.Duration
	batches, signatures float64
	ok                  bool
}

// sampleCPU reads the CPU time of the first local node and of this process,
// and the node's verification counters. ok is false without a local node
// or outside Linux.
func (r *runner) sampleCPU() cpuSample {
	if r.cluster == nil || len(r.cluster.nodes) == 0 || r.cluster.nodes[0].cmd == nil || r.cluster.nodes[0].cmd.Process == nil {
		return cpuSample{}
	}
	server, err := processCPUTime(r.cluster.nodes[0].cmd.Process.Pid)
	if err != nil {
		r.log.Warn("reading the node's CPU time failed; the CPU figures are left out", "err", err)
		return cpuSample{}
	}
	bench, err := processCPUTime(os.Getpid())
	if err != nil {
		r.log.Warn("reading the bench's CPU time failed; the CPU figures are left out", "err", err)
		return cpuSample{}
	}
	st := cpuSample{server: server, bench: bench, ok: true}
	st.batches, st.signatures = r.verifyCounters()
	return st
}

// verifyCounters returns keyward_verify_batches_total and
// keyward_verify_signatures_total of the first local node, or zeros when
// its /metrics does not have them.
func (r *runner) verifyCounters() (batches, signatures float64) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(r.urls[0] + "/metrics")
	if err != nil {
		r.log.Warn("reading the node's metrics failed", "err", err)
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "keyward_verify_batches_total":
			batches, _ = strconv.ParseFloat(value, 64)
		case "keyward_verify_signatures_total":
			signatures, _ = strconv.ParseFloat(value, 64)
		}
	}
	return batches, signatures
}

// readsCPU turns two samples around run into per-read figures, or nil when
// either sample is missing.
func (r *runner) readsCPU(before, after cpuSample, run LoadRun) *ReadsCPU {
	if !before.ok || !after.ok || run.Succeeded == 0 {
		return nil
	}
	// The verification is timed on the node's CPUs, which may differ in
	// speed from the load generator's.
	var verify time.Duration
	var verifyErr error
	err := runOnCPUs(r.placement.pinnedNodeCPUs(), func() { verify, verifyErr = measureVerifyCPU() })
	if err = errors.Join(err, verifyErr); err != nil {
		r.log.Warn("timing a verification in CPU time failed; the CPU figures are left out", "err", err)
		return nil
	}
	reads := float64(run.Succeeded)
	out := &ReadsCPU{
		VerifyCPUMicros:        micros(verify),
		ServerCPUMicrosPerRead: micros(after.server-before.server) / reads,
		BenchCPUMicrosPerRead:  micros(after.bench-before.bench) / reads,
	}
	if out.ServerCPUMicrosPerRead > 0 {
		out.RatioToVerifyFloor = out.VerifyCPUMicros / out.ServerCPUMicrosPerRead
	}
	if batches := after.batches - before.batches; batches > 0 {
		out.SignaturesPerBatch = (after.signatures - before.signatures) / batches
	}
	return out
}

// measureVerifyCPU returns the median thread CPU time of one verification
// with an expanded key over floorRounds rounds of about 50 ms each.
func measureVerifyCPU() (time.Duration, error) {
	c, err := newVerifyCase()
	if err != nil {
		return 0, err
	}
	if !c.expanded.Verify(c.msg, c.sig) {
		return 0, fmt.Errorf("a valid signature was rejected")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if threadCPUTime() == 0 {
		return 0, fmt.Errorf("no thread CPU clock on this system")
	}
	rounds := make([]time.Duration, 0, floorRounds)
	for range floorRounds {
		start := threadCPUTime()
		calls := 0
		for threadCPUTime()-start < 50*time.Millisecond {
			c.expanded.Verify(c.msg, c.sig)
			calls++
		}
		if calls == 0 {
			return 0, fmt.Errorf("the thread CPU clock did not advance")
		}
		rounds = append(rounds, (threadCPUTime()-start)/time.Duration(calls))
	}
	return median(rounds), nil
}

func micros(d time.Duration) float64 {
	return float64(d) / float64(time.Microsecond)
}
