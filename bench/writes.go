package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// secretWrites sends admin secret updates (PUT …/secrets/{id}), each
// worker to its own secret so that no two updates race for a version.
type secretWrites struct {
	workers []*writeWorker
}

type writeWorker struct {
	target *target
	req    *fasthttp.Request
	resp   *fasthttp.Response
	body   []byte
}

func newSecretWrites(t *target, token, vaultID string, secretIDs []string, workers int) *secretWrites {
	s := &secretWrites{}
	for w := range workers {
		path := "/v1/admin/vaults/" + vaultID + "/secrets/" + secretIDs[w%len(secretIDs)]
		req := t.newRequest(fasthttp.MethodPut, path)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.SetContentType("application/json")
		s.workers = append(s.workers, &writeWorker{target: t, req: req, resp: &fasthttp.Response{}})
	}
	return s
}

// send is the requestFunc of an admin-write load run. Each update stores
// a distinct value, so every write is a real new version.
func (s *secretWrites) send(worker int, seq int64) (int, error) {
	w := s.workers[worker]
	w.body = append(w.body[:0], `{"value":"bench value `...)
	w.body = strconv.AppendInt(w.body, seq, 10)
	w.body = append(w.body, `"}`...)
	w.req.SetBodyRaw(w.body)
	if err := w.target.hc.Do(w.req, w.resp); err != nil {
		return 0, err
	}
	return w.resp.StatusCode(), nil
}

// roundTripSamples is the number of health requests that measure the
// HTTP round trip without a write.
const roundTripSamples = 200

// runWrites measures admin secret updates at each writer count.
func (r *runner) runWrites(ctx context.Context) error {
	start := time.Now()
	fx, err := r.createBase(ctx)
	if err != nil {
		return err
	}
	secrets, err := r.createWriteSecrets(ctx, fx, slices.Max(r.cfg.Writers))
	if err != nil {
		return err
	}
	r.report.Setup = &Setup{VaultID: fx.vaultID, Seconds: time.Since(start).Seconds()}

	res := &WritesResult{}
	r.report.Writes = res
	if res.RoundTripP50Ms, err = r.roundTrip(); err != nil {
		return err
	}
	rates := map[int]float64{}
	for _, writers := range r.cfg.Writers {
		cpuBefore, cpuKnown := r.localNodesCPU()
		run, err := r.writeRun(ctx, fx, secrets, writersName("writes", writers), writers)
		if err != nil {
			return err
		}
		level := WriteLevel{Writers: writers, WritesPerSecond: run.PerSecond, Latency: run.Latency}
		if cpuAfter, ok := r.localNodesCPU(); ok && cpuKnown && run.Succeeded > 0 && run.Seconds > 0 {
			cpu := cpuAfter - cpuBefore
			level.ServerCPUMicrosPerWrite = float64(cpu.Microseconds()) / float64(run.Succeeded)
			level.ServerCores = cpu.Seconds() / run.Seconds
		}
		res.Levels = append(res.Levels, level)
		rates[writers] = run.PerSecond
		if writers == 1 {
			res.LoneWriteP50Ms = run.Latency.P50
		}
	}

	if maxWriters := slices.Max(r.cfg.Writers); maxWriters > 1 && rates[1] > 0 {
		res.RatioMaxWritersToOne = rates[maxWriters] / rates[1]
	}
	if res.LoneWriteP50Ms > 0 && r.report.Floor.FsyncMedianMs > 0 {
		res.RatioToFsync = res.LoneWriteP50Ms / r.report.Floor.FsyncMedianMs
	}
	return nil
}

// writeRun runs closed-loop secret updates with writers connections to
// the first node, which forwards them to the leader when it is not one.
func (r *runner) writeRun(ctx context.Context, fx *fixture, secrets []string, name string, writers int) (LoadRun, error) {
	targets, err := r.targets(1, writers)
	if err != nil {
		return LoadRun{}, err
	}
	w := newSecretWrites(targets[0], r.token, fx.vaultID, secrets, writers)
	run, err := r.load(ctx, loadSpec{name: name, connections: writers, duration: r.cfg.Duration, send: w.send})
	run.Nodes = 1
	r.report.Runs = append(r.report.Runs, run)
	return run, err
}

// localNodesCPU returns the CPU time (user and system) that the local
// nodes have used so far. It reports false with --target, and outside
// Linux.
func (r *runner) localNodesCPU() (time.Duration, bool) {
	if r.cluster == nil {
		return 0, false
	}
	var total time.Duration
	for _, n := range r.cluster.nodes {
		if n.cmd == nil || n.cmd.Process == nil {
			return 0, false
		}
		cpu, err := processCPUTime(n.cmd.Process.Pid)
		if err != nil {
			r.log.Debug("read node CPU time", "node", n.id, "error", err)
			return 0, false
		}
		total += cpu
	}
	return total, true
}

// writersName names a run by its writer count: "writes, 1 writer".
func writersName(prefix string, writers int) string {
	if writers == 1 {
		return prefix + ", 1 writer"
	}
	return fmt.Sprintf("%s, %d writers", prefix, writers)
}

// roundTrip returns the median time of GET /v1/sys/health on the first
// node, in milliseconds.
func (r *runner) roundTrip() (float64, error) {
	targets, err := r.targets(1, 1)
	if err != nil {
		return 0, err
	}
	t := targets[0]
	req, resp := t.newRequest(fasthttp.MethodGet, "/v1/sys/health"), &fasthttp.Response{}
	h := newLatencyHistogram()
	for range roundTripSamples {
		start := time.Now()
		if err := t.hc.Do(req, resp); err != nil {
			return 0, fmt.Errorf("measure round trip to %s: %w", t.url, err)
		}
		h.record(time.Since(start))
	}
	return h.summary().P50, nil
}
