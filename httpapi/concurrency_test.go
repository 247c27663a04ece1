package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// parallel runs fn(i) for i in [0, n) on workers goroutines and fails the
// test on the first error.
func parallel(t *testing.T, n, workers int, fn func(i int) error) {
	t.Helper()
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// call sends a request with the root token and returns an error, instead
// of failing the test, so that it can run on any goroutine.
func (e *testEnv) call(method, path string, want int, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	resp, err := e.send(defaultSource, method, path, []header{{"Authorization", "Bearer " + e.root}}, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.status != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.status, want, resp.body)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(resp.body, out)
}

// forwardedAddr returns a distinct documentation address for request i.
func forwardedAddr(i int) string {
	switch {
	case i < 250:
		return fmt.Sprintf("198.51.100.%d", i+1)
	case i < 500:
		return fmt.Sprintf("203.0.113.%d", i-249)
	case i < 750:
		return fmt.Sprintf("192.0.2.%d", i-499)
	}
	return fmt.Sprintf("2001:db8::%x", i-749)
}

// TestConcurrency_BlockedRequestsAuditTheirOwnData sends 1,000 blocked
// requests at once, from distinct machines and forwarded addresses, each
// with its own body, and checks that every audit event, built on the
// request path and consumed by another goroutine, describes its own
// request. Run it with -race: a slice of a reused fasthttp buffer kept in
// an event shows up as a mismatch or a race report.
func TestConcurrency_BlockedRequestsAuditTheirOwnData(t *testing.T) {
	e := sharedEnv(t)
	vault := e.newVault(t)
	const n = 1000

	machines := make([]testMachine, n)
	parallel(t, n, 32, func(i int) error {
		var tok issuedToken
		err := e.call("POST", "/v1/admin/vaults/"+vault+"/temp-tokens", http.StatusCreated, map[string]any{
			"name": fmt.Sprintf("burst-%04d", i), "lifetime": map[string]int{"days": 1},
			"guardrails": map[string]any{"ipAllowlist": map[string]any{"cidrs": []string{"10.0.0.0/8"}}},
		}, &tok)
		if err != nil {
			return err
		}
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		var reg registerResponse
		err = e.call("POST", "/v1/"+vault+"/temp-bootstrap/"+tok.Token+"/register", http.StatusCreated,
			registerRequest{PublicKey: base64.StdEncoding.EncodeToString(pub), Hostname: fmt.Sprintf("host-%d", i)}, &reg)
		if err != nil {
			return err
		}
		machines[i] = testMachine{id: reg.MachineID, vault: vault, key: priv}
		return e.call("POST", e.machinePath(machines[i])+"/approve", http.StatusOK, nil, nil)
	})

	type sent struct {
		machine, addr, bodyHash, requestID string
		status                             int
	}
	results := make([]sent, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := machines[i]
			body := []byte(fmt.Sprintf(`{"projectId":"proj_%010d"}`, i))
			h := m.signedHeaders("POST", "/v1/secrets/list", body, e.clock.Now().Unix())
			h = append(h, header{"X-Forwarded-For", forwardedAddr(i)})
			<-start
			resp, err := e.send(proxySource, "POST", "/v1/secrets/list", h, body)
			if err != nil {
				results[i].status = -1
				return
			}
			results[i] = sent{m.id, forwardedAddr(i), hexSHA256(body), resp.header.Get("X-Request-Id"), resp.status}
		}()
	}
	close(start)
	wg.Wait()

	byRequest := make(map[string]sent, n)
	for i, r := range results {
		if r.status != http.StatusForbidden {
			t.Fatalf("request %d: status %d, want 403", i, r.status)
		}
		byRequest[r.requestID] = r
	}
	if len(byRequest) != n {
		t.Fatalf("%d distinct request ids for %d requests", len(byRequest), n)
	}

	var events []AuditEvent
	waitFor(t, 10*time.Second, "one block event per request", func() bool {
		events = events[:0]
		for _, ev := range e.audit.snapshot() {
			if _, ok := byRequest[ev.RequestID]; ok && ev.Action == ActionTempMachineBlocked {
				events = append(events, ev)
			}
		}
		return len(events) >= n
	})
	if len(events) != n {
		t.Fatalf("%d block events for %d requests", len(events), n)
	}
	for _, ev := range events {
		want := byRequest[ev.RequestID]
		if ev.MachineID != want.machine || ev.SourceIP != want.addr || ev.BodySHA256 != want.bodyHash ||
			ev.Path != "/v1/secrets/list" || ev.ProxyIP != proxySource || ev.Fields["ip"] != want.addr {
			t.Errorf("event %+v does not match its request %+v", ev, want)
		}
	}
}
