package audit

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/fsm"
)

const (
	webhook1 = "whk_aaaaaaaaaaaaaaa1"
	webhook2 = "whk_aaaaaaaaaaaaaaa2"
	webhook3 = "whk_aaaaaaaaaaaaaaa3"
)

// testDeliveryConfig scales the timeouts down so tests stay fast.
func testDeliveryConfig(node string) DeliveryConfig {
	cfg := DefaultDeliveryConfig()
	cfg.NodeID = node
	cfg.PollInterval = 50 * time.Millisecond
	cfg.BackoffBase = 50 * time.Millisecond
	cfg.BackoffMax = 200 * time.Millisecond
	cfg.ConnectTimeout = 500 * time.Millisecond
	cfg.TLSHandshakeTimeout = 500 * time.Millisecond
	cfg.AttemptTimeout = time.Second
	cfg.FlushInterval = 50 * time.Millisecond
	cfg.AllowLoopback = true
	return cfg
}

// withDispatcher returns leader jobs of a dispatcher bound to the node,
// with cfg changed by edit; the dispatcher is stored in *out when set.
func withDispatcher(t *testing.T, edit func(*DeliveryConfig), out **Dispatcher) func(tn *testNode) []func(context.Context) {
	return func(tn *testNode) []func(context.Context) {
		cfg := testDeliveryConfig(tn.id)
		if edit != nil {
			edit(&cfg)
		}
		d, err := NewDispatcher(cfg, tn, tn.sm, testKeyring(t), nil, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		if out != nil {
			*out = d
		}
		return []func(context.Context){d.RunWebhooks}
	}
}

// TestWebhook_RetriesKeepIDBodyAndValidSignature is the receiver that
// fails, then answers too late, then accepts: every attempt carries the
// same delivery id and byte-identical body with a valid signature.
func TestWebhook_RetriesKeepIDBodyAndValidSignature(t *testing.T) {
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request, attempt int) {
		switch attempt {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			// Processes the event but responds after the sender's timeout.
			select {
			case <-time.After(1500 * time.Millisecond):
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	tn := startSingle(t, withDispatcher(t, nil, nil))
	createVault(t, tn)
	w, secret := createWebhook(t, tn, webhook1, rcv.URL, "temp_machine_blocked")
	appendEntries(t, tn, 1, "blocked")
	entry := vaultEntries(t, tn.sm, "temp_machine_blocked")[0]

	waitFor(t, 15*time.Second, "the delivery to be recorded", func() bool {
		return webhookState(t, tn.sm, w.ID).Delivered == 1
	})
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts reached the receiver, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.deliveryID != DeliveryID(w.ID, entry.ID) || r.attempt != i+1 || r.event != "temp_machine_blocked" {
			t.Errorf("attempt %d: id %q attempt %d event %q", i+1, r.deliveryID, r.attempt, r.event)
		}
		if string(r.body) != string(reqs[0].body) {
			t.Errorf("attempt %d body differs from the first:\n%s\n%s", i+1, r.body, reqs[0].body)
		}
		verifySignature(t, r.signature, secret, r.body)
	}
	p := decodePayload(t, reqs[0].body)
	if p.ID != entry.UUID || p.Timestamp != entry.Timestamp || p.Data.ID != entry.ID || p.Severity != fsm.SeverityHigh {
		t.Fatalf("payload %+v does not describe entry %+v", p, entry)
	}
	if gap := reqs[2].at.Sub(reqs[1].at); gap < time.Second {
		t.Fatalf("third attempt %s after the second; the second should have waited for the 1 s timeout", gap)
	}
	recs, err := tn.sm.Deliveries(w.ID, 10)
	if err != nil || len(recs) != 1 || recs[0].Status != fsm.DeliveryDelivered || recs[0].Attempts != 3 {
		t.Fatalf("delivery log %+v, %v", recs, err)
	}
}

func TestWebhook_FinalFailureIsAuditedAndCounted(t *testing.T) {
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusBadGateway) })
	var d *Dispatcher
	tn := startSingle(t, withDispatcher(t, func(c *DeliveryConfig) { c.MaxAttempts = 3 }, &d))
	createVault(t, tn)
	w, _ := createWebhook(t, tn, webhook1, rcv.URL, "temp_machine_blocked")
	appendEntries(t, tn, 1, "blocked")

	waitFor(t, 10*time.Second, "the failure to be recorded", func() bool { return webhookState(t, tn.sm, w.ID).Failed == 1 })
	if n := len(rcv.requests()); n != 3 {
		t.Fatalf("%d attempts, want the bound of 3", n)
	}
	failed := vaultEntries(t, tn.sm, "webhook_delivery_failed")
	if len(failed) != 1 || !strings.Contains(failed[0].Detail, "HTTP 502") {
		t.Fatalf("failure entries %+v", failed)
	}
	if v := counterValue(t, d.metrics.Deliveries.WithLabelValues(fsm.DeliveryFailed)); v != 1 {
		t.Fatalf("failed deliveries metric %v, want 1", v)
	}
}

// hangingServer accepts TCP connections and never responds.
func hangingServer(t *testing.T) string {
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
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String() + "/hook"
}

// TestWebhook_SlowReceiversDelayNoOther points one webhook at a server that
// never responds and one at a server that trickles a byte at a time. A third
// webhook receives a burst at full speed meanwhile. The trickling attempt is
// cut off by the total timeout.
func TestWebhook_SlowReceiversDelayNoOther(t *testing.T) {
	trickle := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.WriteHeader(http.StatusOK)
		for range 40 {
			w.Write([]byte("."))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(200 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	fast := newReceiver(t, okReply)
	tn := startSingle(t, withDispatcher(t, func(c *DeliveryConfig) { c.MaxAttempts = 2 }, nil))
	createVault(t, tn)
	createWebhook(t, tn, webhook1, hangingServer(t), "*")
	createWebhook(t, tn, webhook2, trickle.URL, "temp_machine_blocked")
	createWebhook(t, tn, webhook3, fast.URL, "temp_machine_blocked")

	start := time.Now()
	for range 5 {
		appendEntries(t, tn, 20, "burst")
	}
	waitFor(t, 5*time.Second, "the fast receiver to get the burst", func() bool {
		return webhookState(t, tn.sm, webhook3).Delivered == 100
	})
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Fatalf("the fast receiver needed %s for 100 events", elapsed)
	}

	waitFor(t, 10*time.Second, "the trickling delivery to fail", func() bool {
		return webhookState(t, tn.sm, webhook2).Failed >= 1
	})
	recs, err := tn.sm.Deliveries(webhook2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	first := recs[len(recs)-1]
	if first.Status != fsm.DeliveryFailed || first.Attempts != 2 || first.DurationMs > 3_000 {
		t.Fatalf("trickling delivery %+v; want two attempts, each cut off after 1 s", first)
	}
	if !strings.Contains(first.Error, "Timeout") && !strings.Contains(first.Error, "deadline") {
		t.Fatalf("trickling delivery error %q does not name the timeout", first.Error)
	}
	if hung := webhookState(t, tn.sm, webhook1); hung.Delivered != 0 {
		t.Fatalf("the hanging receiver shows %d deliveries", hung.Delivered)
	}
}

func TestWebhook_DisabledAfterRepeatedFailures(t *testing.T) {
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusServiceUnavailable) })
	tn := startSingle(t, withDispatcher(t, func(c *DeliveryConfig) {
		c.MaxAttempts = 1
		c.DisableAfter = 3
	}, nil))
	createVault(t, tn)
	w, _ := createWebhook(t, tn, webhook1, rcv.URL, "temp_machine_blocked")
	appendEntries(t, tn, 6, "blocked")

	waitFor(t, 10*time.Second, "the webhook to be disabled", func() bool { return !webhookState(t, tn.sm, w.ID).Enabled })
	time.Sleep(300 * time.Millisecond) // room for a delivery that should not happen
	if n := len(rcv.requests()); n != 3 {
		t.Fatalf("%d requests, want 3: delivery must stop once disabled", n)
	}
	got := webhookState(t, tn.sm, w.ID)
	if got.ConsecutiveFailures != 3 || got.DisabledReason == "" {
		t.Fatalf("disabled webhook %+v", got)
	}
	if n := len(vaultEntries(t, tn.sm, "webhook_disabled")); n != 1 {
		t.Fatalf("%d webhook_disabled entries, want 1", n)
	}
}

func TestWebhook_RefusedAddressIsNeverDialled(t *testing.T) {
	rcv := newReceiver(t, okReply)
	tn := startSingle(t, withDispatcher(t, func(c *DeliveryConfig) {
		c.AllowLoopback = false
		c.MaxAttempts = 1
	}, nil))
	createVault(t, tn)
	// The URL names the host, so only the dial-time check can catch it.
	url := strings.Replace(rcv.URL, "127.0.0.1", "localhost", 1)
	url = strings.Replace(url, "http://", "https://", 1)
	w, _ := createWebhook(t, tn, webhook1, url, "temp_machine_blocked")
	appendEntries(t, tn, 1, "blocked")

	waitFor(t, 10*time.Second, "the refusal to be recorded", func() bool { return webhookState(t, tn.sm, w.ID).Failed == 1 })
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("the refused receiver got %d requests", n)
	}
	recs, _ := tn.sm.Deliveries(w.ID, 1)
	if !strings.Contains(recs[0].Error, "loopback") {
		t.Fatalf("error %q does not say why", recs[0].Error)
	}
}
