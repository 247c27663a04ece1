package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/keyward/keyward/httpapi/client"
)

// runner holds what the scenarios of one run share.
type runner struct {
	cfg    Config
	log    *slog.Logger
	report *Report

	// cluster is the local cluster the bench started, nil with targets.
	cluster *localCluster
	urls    []string
	token   string
	// admin calls the admin plane of the first node with the token, and
	// unauthenticated calls the registration routes without one.
	admin           *client.Client
	unauthenticated *client.Client

	// placement is the CPUs of the local nodes and of this process, nil
	// with targets or where placement is unavailable. restoreCPUs, when
	// set, gives this process back the CPUs and GOMAXPROCS it had.
	placement   *cpuPlacement
	restoreCPUs func() error
}

// Run runs cfg.Scenario and returns its report. A local cluster that Run
// started is stopped before it returns, on success, error or
// cancellation.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	started := time.Now()
	r := &runner{cfg: cfg, log: logger.With("component", "bench"), report: newReport(cfg, started)}

	err := r.run(ctx)
	if closeErr := r.close(); closeErr != nil {
		err = errors.Join(err, closeErr)
	}
	if r.restoreCPUs != nil {
		if restoreErr := r.restoreCPUs(); restoreErr != nil {
			err = errors.Join(err, fmt.Errorf("restore this process's CPU affinity: %w", restoreErr))
		}
	}
	if err != nil {
		return nil, err
	}
	r.report.Seconds = time.Since(started).Seconds()
	return r.report, nil
}

func (r *runner) run(ctx context.Context) error {
	if r.cfg.Scenario == ScenarioScale {
		if err := r.measureFloor(r.workDir()); err != nil {
			return err
		}
		return r.runScale(ctx)
	}

	if err := r.connect(ctx); err != nil {
		return err
	}
	fsyncDir := r.workDir()
	if r.cluster != nil {
		fsyncDir = r.cluster.nodes[0].dataDir
	}
	// The floor is measured before any load, while the nodes are idle.
	if err := r.measureFloor(fsyncDir); err != nil {
		return err
	}

	scenarios := map[string]func(context.Context) error{
		ScenarioReads:    r.runReads,
		ScenarioWrites:   r.runWrites,
		ScenarioMixed:    r.runMixed,
		ScenarioFlood:    r.runFlood,
		ScenarioRegister: r.runRegister,
	}
	if err := scenarios[r.cfg.Scenario](ctx); err != nil {
		return err
	}
	return r.writePlots()
}

// connect starts a local cluster or connects to the targets.
func (r *runner) connect(ctx context.Context) error {
	r.urls, r.token = r.cfg.Targets, r.cfg.Token
	if len(r.urls) == 0 {
		if err := r.placeCPUs(); err != nil {
			return err
		}
		r.log.Info("starting local cluster", "nodes", r.cfg.LocalNodes, "binary", r.cfg.Binary)
		c, err := startLocalCluster(ctx, r.cfg.Binary, r.cfg.LocalNodes, r.placement.pinnedNodeCPUs())
		if err != nil {
			return err
		}
		r.cluster = c
		r.urls, r.token = c.urls(), c.token
		r.report.Notes = append(r.report.Notes, r.placementNote())
	}
	r.report.Target = Target{Local: r.cluster != nil, Nodes: r.urls}

	opts := []client.Option{client.WithTimeout(r.cfg.RequestTimeout), client.WithUserAgent("keyward-bench")}
	if r.cfg.CAFile != "" {
		opts = append(opts, client.WithCAFile(r.cfg.CAFile))
	}
	var err error
	if r.admin, err = client.New(r.urls[0], append(opts, client.WithToken(r.token))...); err != nil {
		return err
	}
	r.unauthenticated, err = client.New(r.urls[0], opts...)
	return err
}

func (r *runner) close() error {
	if r.cluster == nil {
		return nil
	}
	return r.cluster.close()
}

func (r *runner) workDir() string {
	if r.cfg.WorkDir != "" {
		return r.cfg.WorkDir
	}
	return os.TempDir()
}

func (r *runner) measureFloor(fsyncDir string) error {
	p := r.progress("floor", 0, 0)
	floor, err := measureFloor(r.floorCores(), r.placement.pinnedNodeCPUs(), r.cfg.FloorTime, fsyncDir)
	p.finish()
	if err != nil {
		return err
	}
	r.report.Floor = floor
	r.report.VerifyFloorPerSecond = floor.VerifyFloorPerSecond
	return nil
}

// progress starts a progress line for a phase of a known duration or a
// known number of items.
func (r *runner) progress(label string, total time.Duration, items int64) *progress {
	if total == 0 && items == 0 {
		items = -1
	}
	return startProgress(r.cfg.Progress, r.cfg.ProgressTTY, label, total, items)
}

// targets returns fasthttp clients for the first n nodes, each allowing
// conns connections.
func (r *runner) targets(n, conns int) ([]*target, error) {
	out := make([]*target, n)
	for i := range out {
		t, err := newTarget(r.urls[i], r.cfg.CAFile, conns, r.cfg.RequestTimeout)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// load runs spec with a progress line. It fails when no request
// succeeded. The caller adds the run to the report.
func (r *runner) load(ctx context.Context, spec loadSpec) (LoadRun, error) {
	p := r.progress(spec.name, spec.duration, spec.limit)
	run, err := runLoad(ctx, spec, p)
	p.finish()
	if err != nil {
		return run, err
	}
	if run.Succeeded == 0 {
		return run, fmt.Errorf("%w in run %q: %d requests, errors %v", ErrNoSuccess, spec.name, run.Requests, run.Errors)
	}
	return run, nil
}
