package faulttest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"syscall"
	"time"
)

// probe is one signed read of a secret sent by a poller or a reader.
type probe struct {
	node     *node
	machine  string // test label of the machine that signed it
	secretID string
	sent     time.Time
	done     time.Time
	status   int // 0 when no response arrived
	value    string
	err      error
}

// unavailable reports whether the probe got no response or a 503, which a
// client treats as "try another node".
func (p probe) unavailable() bool {
	return p.err != nil || p.status == http.StatusServiceUnavailable
}

func (p probe) String() string {
	if p.err != nil {
		return fmt.Sprintf("%s on %s at %s: %v", p.machine, p.node.name, p.sent.Format("15:04:05.000"), p.err)
	}
	return fmt.Sprintf("%s on %s at %s: status %d", p.machine, p.node.name, p.sent.Format("15:04:05.000"), p.status)
}

// probeLog collects probes from concurrent pollers.
type probeLog struct {
	mu     sync.Mutex
	probes []probe
}

// pollGroup runs pollers that record signed reads into a probeLog until
// stop is called.
type pollGroup struct {
	log    *probeLog
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func newPollGroup(log *probeLog) *pollGroup {
	ctx, cancel := context.WithCancel(context.Background())
	return &pollGroup{log: log, ctx: ctx, cancel: cancel}
}

// poll starts a poller that sends signed reads of secretID as m to n every
// interval and records each one.
func (g *pollGroup) poll(n *node, label string, m machine, secretID string, interval time.Duration) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for g.ctx.Err() == nil {
			g.log.add(readProbe(n, label, m, secretID))
			sleepCtx(g.ctx, interval)
		}
	}()
}

// stop ends the pollers and waits for their last requests. Calling it
// again does nothing, so a test can defer it and also call it early.
func (g *pollGroup) stop() {
	g.once.Do(func() {
		g.cancel()
		g.wg.Wait()
	})
}

// readProbe sends one signed read. It does not use the poller's context,
// so that stopping the pollers never turns a request into an error.
func readProbe(n *node, label string, m machine, secretID string) probe {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := probe{node: n, machine: label, secretID: secretID, sent: time.Now()}
	p.status, p.value, p.err = readSecret(ctx, n, m, secretID)
	p.done = time.Now()
	return p
}

func (l *probeLog) add(p probe) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.probes = append(l.probes, p)
}

// matching returns the probes of machine label on n, in the order sent.
func (l *probeLog) matching(n *node, label string) []probe {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []probe
	for _, p := range l.probes {
		if p.node == n && p.machine == label {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sent.Before(out[j].sent) })
	return out
}

// refused reports whether err is a refused TCP connection: nothing was
// sent, so a write that got it certainly did not happen.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
