package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// runMixed measures signed reads on the first node while the first
// --writers count of admin writers update secrets through it.
func (r *runner) runMixed(ctx context.Context) error {
	start := time.Now()
	fx, err := r.createBase(ctx)
	if err != nil {
		return err
	}
	machines, err := r.registerMachines(ctx, fx, r.cfg.Machines)
	if err != nil {
		return err
	}
	fx.readers = newReadSet(fx.secretID, machines)
	writers := r.cfg.Writers[0]
	secrets, err := r.createWriteSecrets(ctx, fx, writers)
	if err != nil {
		return err
	}
	r.report.Setup = &Setup{VaultID: fx.vaultID, Machines: len(machines), Seconds: time.Since(start).Seconds()}

	reads, err := r.newReads(fx.readers, 1, r.cfg.Connections)
	if err != nil {
		return err
	}
	if err := waitReadable(ctx, fx.readers, reads.targets(), http.StatusOK); err != nil {
		return err
	}
	r.presign(fx.readers, r.cfg.Rate, r.cfg.Duration)
	writeTargets, err := r.targets(1, writers)
	if err != nil {
		return err
	}
	writes := newSecretWrites(writeTargets[0], r.token, fx.vaultID, secrets, writers)

	readSpec := loadSpec{name: "mixed reads", connections: r.cfg.Connections, rate: r.cfg.Rate, duration: r.cfg.Duration, send: reads.send}
	writeSpec := loadSpec{name: writersName("mixed writes", writers), connections: writers, duration: r.cfg.Duration, send: writes.send}
	readRun, writeRun, err := r.loadTogether(ctx, readSpec, writeSpec)
	readRun.Nodes, writeRun.Nodes = 1, 1
	reads.describe(&readRun)
	r.report.Runs = append(r.report.Runs, readRun, writeRun)
	if err != nil {
		return err
	}

	r.report.ReadsPerSecond = readRun.PerSecond
	r.report.RatioToVerifyFloor = readRun.PerSecond / r.report.VerifyFloorPerSecond
	r.report.Mixed = &MixedResult{
		Writers: writers, ReadsPerSecond: readRun.PerSecond, WritesPerSecond: writeRun.PerSecond,
		ReadLatency: readRun.Latency, WriteLatency: writeRun.Latency,
	}
	return nil
}

// loadTogether runs two load specs at the same time. The progress line
// follows the first, and the second runs silently beside it.
func (r *runner) loadTogether(ctx context.Context, first, second loadSpec) (LoadRun, LoadRun, error) {
	var wg sync.WaitGroup
	var secondRun LoadRun
	var secondErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		secondRun, secondErr = runLoad(ctx, second, nil)
	}()
	firstRun, firstErr := r.load(ctx, first)
	wg.Wait()
	if firstErr != nil {
		return firstRun, secondRun, firstErr
	}
	if secondErr == nil && secondRun.Succeeded == 0 {
		secondErr = fmt.Errorf("%w in run %q: %d requests, errors %v", ErrNoSuccess, second.name, secondRun.Requests, secondRun.Errors)
	}
	return firstRun, secondRun, secondErr
}
