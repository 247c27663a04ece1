package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// barrierRetry is the wait between failed barriers at the start of a term.
const barrierRetry = 100 * time.Millisecond

// watchLeadership starts the leader's work when Raft reports leadership and
// cancels it when Raft reports its loss or the node closes. The loop does
// not wait for the jobs of an ended term (Close does), so a job that is
// slow to return does not block reading Raft's notifications.
func (n *Node) watchLeadership(ctx context.Context) {
	var (
		cancelTerm context.CancelFunc
		terms      sync.WaitGroup
	)
	stop := func() {
		if cancelTerm != nil {
			cancelTerm()
			cancelTerm = nil
		}
	}
	defer func() {
		stop()
		terms.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-n.notifyCh:
			stop()
			if !leader {
				n.logger.Info("lost leadership")
				continue
			}
			n.logger.Info("became leader")
			termCtx, cancel := context.WithCancel(ctx)
			cancelTerm = cancel
			terms.Add(1)
			go func() {
				defer terms.Done()
				n.runTerm(termCtx)
			}()
		}
	}
}

// runTerm waits until the state machine has applied every entry committed
// before this term, then runs the reconcile loop and the configured leader
// jobs until ctx ends.
func (n *Node) runTerm(ctx context.Context) {
	if !n.barrier(ctx) {
		return
	}
	// Absence clocks from an earlier term are stale: a node may have come
	// back and died again since.
	n.deadMu.Lock()
	clear(n.deadSince)
	n.deadMu.Unlock()
	var jobs sync.WaitGroup
	start := func(job func(context.Context)) {
		jobs.Add(1)
		go func() {
			defer jobs.Done()
			job(ctx)
		}()
	}
	start(n.reconcileLoop)
	for _, job := range n.cfg.LeaderJobs {
		start(job)
	}
	jobs.Wait()
}

// barrier retries a Raft barrier until it succeeds or ctx ends, and reports
// whether it succeeded.
func (n *Node) barrier(ctx context.Context) bool {
	for {
		err := waitFuture(ctx, n.raft.Barrier(n.cfg.ApplyTimeout))
		if err == nil {
			return true
		}
		if ctx.Err() != nil || errors.Is(err, raft.ErrRaftShutdown) {
			return false
		}
		n.logger.Warn("barrier at start of term failed", keyErr, err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(barrierRetry):
		}
	}
}

// waitFuture waits for a Raft future or for ctx, whichever ends first. Raft
// resolves every future it accepted while it runs, and Close shuts Raft
// down only after the node's goroutines return, so the helper goroutine
// ends soon after an early return.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
