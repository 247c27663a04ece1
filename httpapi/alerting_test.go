package httpapi

import (
	"bytes"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/cluster/audit"
	"github.com/keyward/keyward/fsm"
)

// silentWebhook accepts TCP connections and never reads or writes.
func silentWebhook(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/hook"
}

// tricklingWebhook accepts TCP connections and writes one byte of an HTTP
// response to each every interval. One goroutine serves every connection,
// so the receiver adds no goroutine per attempt to the counts.
func tricklingWebhook(t *testing.T, interval time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]int{}
	)
	done := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = 0
			mu.Unlock()
		}
	}()
	go func() {
		response := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			mu.Lock()
			for c, sent := range conns {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				if sent >= len(response) {
					continue
				}
				if _, err := c.Write(response[sent : sent+1]); err != nil {
					c.Close()
					delete(conns, c)
					continue
				}
				conns[c] = sent + 1
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/hook"
}

// liveGoroutines counts the goroutines of the process, leaving out the
// idle workers that fasthttp keeps for up to its idle duration (10 s by
// default) after a burst of connections, which are a bounded pool.
func liveGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		idleWorker := bytes.Contains(g, []byte("fasthttp.(*workerPool).workerFunc")) &&
			!bytes.Contains(g, []byte("serveConn"))
		if len(bytes.TrimSpace(g)) > 0 && !idleWorker {
			count++
		}
	}
	return count
}

// TestAlerting_SlowWebhooksDoNotDelayMachines sends a burst of 5,000
// blocked requests, each from its own forwarded address so that none
// coalesces. Meanwhile the vault's webhooks point at a receiver that
// accepts TCP and never responds and at one that trickles a byte every
// 10 s, and the audit log's writes are stalled. Machine responses must not
// wait for alerting or for the log. The recorder's bounded queue drops
// what does not fit and counts it, so every block is either in the log or
// counted as dropped. Each delivery attempt ends at its timeout. The
// goroutine count comes back to its level before the burst, plus the few
// goroutines of the attempts still in flight.
func TestAlerting_SlowWebhooksDoNotDelayMachines(t *testing.T) {
	const (
		burst       = 5_000
		connections = 64
		// attemptTimeout is far above the bound on machine responses, so
		// a response that waited for a delivery attempt would show.
		attemptTimeout = 5 * time.Second
		responseBound  = 2 * time.Second
	)
	e := startRecordedEnv(t, recordedOptions{
		recorder: func(c *audit.RecorderConfig) {
			c.QueueSize = 1_000
			c.BatchSize = 100
			c.MaxPending = 500
		},
		delivery: func(c *audit.DeliveryConfig) {
			c.MaxAttempts = 2
			c.ConnectTimeout = time.Second
			c.AttemptTimeout = attemptTimeout
			c.DisableAfter = 0
		},
	})
	f, blockedMachine := e.allowlistedMachine(t, "10.0.0.0/8")
	reader := e.newMachine(t, f.vault)
	e.approve(t, reader)
	e.attach(t, reader, f.project)
	e.grant(t, reader, f.secret)
	for _, url := range []string{silentWebhook(t), tricklingWebhook(t, 10*time.Second)} {
		e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/vaults/"+f.vault+"/webhooks",
			map[string]any{"url": url, "actions": []string{ActionTempMachineBlocked}}, nil)
	}
	path := "/v1/secret/" + f.secret
	requests := e.presign(blockedMachine, path, burst, forwardedAddr)

	// The webhook workers start within the dispatcher's poll interval;
	// the baseline is taken once they idle.
	time.Sleep(300 * time.Millisecond)
	baseline := liveGoroutines()

	release := e.gate.hold()
	defer release()
	// A server whose responses waited for the log would hang the burst;
	// opening the gate later turns that into a failed bound, not a hang.
	time.AfterFunc(20*time.Second, release)
	stop := make(chan struct{})
	var (
		peak       int
		sampleDone = make(chan struct{})
	)
	go func() {
		defer close(sampleDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				peak = max(peak, runtime.NumGoroutine())
			}
		}
	}()
	type readResult struct {
		ok       int
		failures []string
		slowest  time.Duration
	}
	reads := make(chan readResult, 1)
	go func() {
		ok, failures, slowest := e.readLoop(reader, path, defaultSource, 10*time.Millisecond, stop)
		reads <- readResult{ok, failures, slowest}
	}()

	client := newLoopbackClient(e.addr, proxySource, connections)
	got := client.sendAll(requests, connections)
	client.close()
	close(stop)
	<-sampleDone
	r := <-reads

	if got.errors != 0 || got.statuses[http.StatusForbidden] != burst || got.bodies[deniedBody] != burst {
		t.Fatalf("burst responses %v bodies %v with %d transport errors, want %d × 403 %s",
			got.statuses, got.bodies, got.errors, burst, deniedBody)
	}
	if got.maxTime > responseBound {
		t.Errorf("the slowest blocked response took %s, over the bound of %s", got.maxTime, responseBound)
	}
	if len(r.failures) != 0 || r.ok == 0 {
		t.Errorf("allowed reads during the burst: %d succeeded, failures %v", r.ok, r.failures)
	}
	if r.slowest > responseBound {
		t.Errorf("the slowest allowed read took %s, over the bound of %s", r.slowest, responseBound)
	}
	// Client and server each hold a few goroutines per connection; one
	// goroutine per event or per delivery would exceed this by thousands.
	if limit := baseline + 4*connections + 100; peak > limit {
		t.Errorf("%d goroutines at the peak of the burst, over %d (baseline %d)", peak, limit, baseline)
	}

	dropped := int64(counterValue(t, e.auditStats.Dropped))
	if dropped == 0 {
		t.Fatal("nothing was dropped while the log was stalled; the queue is not bounded or the test did not fill it")
	}
	release()
	e.syncAudit(t)
	var logged, readsLogged int64
	for _, en := range e.entries(t, f.vault, ActionTempMachineBlocked) {
		logged += en.Count
	}
	for _, en := range e.entries(t, f.vault, ActionSecretRead) {
		readsLogged += en.Count
	}
	all, err := e.sm.AuditAfter("", 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	var reported int64
	for _, en := range all {
		if en.Action == audit.ActionOverflow {
			reported += en.Count
		}
	}
	// The allowed reads are audited through the same queue, so their
	// events count among the dropped too.
	dropped = int64(counterValue(t, e.auditStats.Dropped))
	if reported != dropped {
		t.Errorf("audit_overflow entries report %d dropped events, the metric counts %d", reported, dropped)
	}
	if logged+readsLogged+reported != burst+int64(r.ok) {
		t.Errorf("%d blocks and %d reads in the log and %d reported dropped; want them to add up to %d blocks and %d reads",
			logged, readsLogged, reported, burst, r.ok)
	}

	// Each receiver holds its worker for at most one attempt timeout per
	// attempt: both record failed attempts while the log still holds
	// thousands of their events.
	waitFor(t, 3*attemptTimeout, "a timed-out attempt at each slow receiver", func() bool {
		return counterValue(t, e.auditStats.Attempts.WithLabelValues("error")) >= 2
	})
	hooks, err := e.sm.Webhooks(fsm.VaultID(f.vault))
	if err != nil || len(hooks) != 2 {
		t.Fatalf("webhooks %v, %v; want the two created", hooks, err)
	}
	for _, w := range hooks {
		if w.Delivered != 0 {
			t.Errorf("webhook %s shows %d deliveries to a receiver that never completes a response", w.URL, w.Delivered)
		}
	}

	// What remains after the burst is one attempt in flight per slow
	// receiver, a few goroutines each.
	waitFor(t, 10*time.Second, "the goroutine count to return to its baseline", func() bool {
		return liveGoroutines() <= baseline+12
	})
}
