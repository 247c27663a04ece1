package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// Loopback addresses of the throttle tests: the temp machine may read
// from allowedSource only, and floodSource is blocked by its guardrail.
const (
	allowedSource = "127.0.0.5"
	floodSource   = "127.0.0.6"
)

// deniedBody is the body of every guardrail block, verified or not.
const deniedBody = `{"error":"Access denied"}`

// allowlistedMachine returns a fixture and an approved temp machine, with
// the fixture's secret granted, whose IP guardrail admits only cidr.
func (e *testEnv) allowlistedMachine(t *testing.T, cidr string) (fixture, testMachine) {
	t.Helper()
	f := e.newFixture(t)
	m, _ := e.tempMachine(t, f.vault, map[string]any{
		"name": "stolen-laptop", "lifetime": map[string]int{"days": 1},
		"guardrails": map[string]any{"ipAllowlist": map[string]any{"cidrs": []string{cidr}}},
	})
	e.approve(t, m)
	e.attach(t, m, f.project)
	e.grant(t, m, f.secret)
	return f, m
}

// unverifiedField returns the "unverified" count in an entry's fields.
func unverifiedField(t *testing.T, e fsm.AuditEntry) int64 {
	t.Helper()
	var fields struct {
		Unverified int64 `json:"unverified"`
	}
	if err := json.Unmarshal(e.Fields, &fields); err != nil {
		t.Fatalf("entry %d fields %s: %v", e.ID, e.Fields, err)
	}
	return fields.Unverified
}

// TestBlockThrottle_TenThousandBlocksAllAudited floods the server with
// 10,000 signed reads of one machine from an address its guardrail
// blocks. A short cool-down makes the flood a mix of requests rejected
// before verification and requests verified in full. Every request gets
// the same 403, the audit log holds the first block in full and counts
// that add up to 10,000, and reads of the same machine from its allowed
// address and of another machine keep succeeding meanwhile.
func TestBlockThrottle_TenThousandBlocksAllAudited(t *testing.T) {
	const n = 10_000
	e := startRecordedEnv(t, recordedOptions{server: func(c *Config) {
		c.BlockThrottle = guard.BlockThrottleConfig{MaxBlocks: 20, Window: time.Second, CoolDown: 100 * time.Millisecond}
	}})
	f, m := e.allowlistedMachine(t, allowedSource+"/32")
	other := e.newMachine(t, f.vault)
	e.approve(t, other)
	e.attach(t, other, f.project)
	e.grant(t, other, f.secret)
	path := "/v1/secret/" + f.secret
	flood := e.presign(m, path, n, nil)

	stop := make(chan struct{})
	type readResult struct {
		ok       int
		failures []string
	}
	results := make(chan readResult, 2)
	for _, r := range []struct {
		machine testMachine
		src     string
	}{{m, allowedSource}, {other, defaultSource}} {
		go func() {
			ok, failures, _ := e.readLoop(r.machine, path, r.src, 5*time.Millisecond, stop)
			results <- readResult{ok, failures}
		}()
	}

	client := newLoopbackClient(e.addr, floodSource, 16)
	got := client.sendAll(flood, 16)
	client.close()
	close(stop)

	if got.errors != 0 || got.statuses[http.StatusForbidden] != n {
		t.Fatalf("flood responses %v with %d transport errors, want %d × 403", got.statuses, got.errors, n)
	}
	if got.bodies[deniedBody] != n {
		t.Fatalf("flood bodies %v, want %d × %s", got.bodies, n, deniedBody)
	}
	for range 2 {
		r := <-results
		if len(r.failures) != 0 {
			t.Errorf("allowed reads failed during the flood: %v", r.failures)
		}
		if r.ok == 0 {
			t.Error("no allowed read completed during the flood")
		}
	}

	throttled := int64(counterValue(t, e.srv.metrics.blockThrottled))
	if throttled == 0 || throttled > n-21 {
		t.Fatalf("%d of %d requests throttled; want some, and at least the first 21 verified", throttled, n)
	}
	t.Logf("%d of %d blocked requests were rejected before verification", throttled, n)

	e.syncAudit(t)
	entries := e.entries(t, f.vault, ActionTempMachineBlocked)
	if len(entries) == 0 {
		t.Fatal("no temp_machine_blocked entry")
	}
	first := entries[0]
	var firstFields map[string]any
	if err := json.Unmarshal(first.Fields, &firstFields); err != nil {
		t.Fatal(err)
	}
	if first.Count != 1 || first.SourceIP != floodSource || string(first.MachineID) != m.id || first.Detail == "" {
		t.Errorf("first entry %+v, want one block of %s from %s in full", first, m.id, floodSource)
	}
	if firstFields["ip"] != floodSource || firstFields["requestId"] == nil || firstFields["unverified"] != nil {
		t.Errorf("first entry fields %s, want the verified block with its address and request id", first.Fields)
	}

	var total, unverified int64
	for _, en := range entries {
		if string(en.MachineID) != m.id || en.SourceIP != floodSource {
			t.Errorf("entry %d is of %s from %s", en.ID, en.MachineID, en.SourceIP)
		}
		total += en.Count
		unverified += unverifiedField(t, en)
	}
	if total != n {
		t.Errorf("entry counts add up to %d, want %d", total, n)
	}
	if unverified != throttled {
		t.Errorf("entries mark %d blocks unverified, the metric counted %d", unverified, throttled)
	}
	if dropped := counterValue(t, e.auditStats.Dropped); dropped != 0 {
		t.Errorf("%v audit events dropped", dropped)
	}
}

// TestBlockThrottle_RespondsLikeVerifiedBlock throttles a pair and checks
// that a throttled response has the status and body of a verified one.
// A bad signature from the throttled pair gets that same 403 until the
// cool-down ends, and the throttled event is marked unverified.
func TestBlockThrottle_RespondsLikeVerifiedBlock(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.allowlistedMachine(t, allowedSource+"/32")
	path := "/v1/secret/" + f.secret
	t0 := time.Now().Truncate(time.Second)
	e.clock.freeze(t, t0)

	limit := DefaultConfig().BlockThrottle.MaxBlocks
	for i := range limit + 1 {
		resp := e.signed(t, floodSource, m, "GET", path, nil)
		expectStatus(t, resp, http.StatusForbidden)
		if got := string(resp.body); got != deniedBody {
			t.Fatalf("verified block %d body %s, want %s", i, got, deniedBody)
		}
		if ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionTempMachineBlocked); ev.Unverified {
			t.Fatalf("verified block %d is marked unverified", i)
		}
	}

	resp := e.signed(t, floodSource, m, "GET", path, nil)
	expectStatus(t, resp, http.StatusForbidden)
	if got := string(resp.body); got != deniedBody {
		t.Fatalf("throttled body %s, want %s", got, deniedBody)
	}
	if ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionTempMachineBlocked); !ev.Unverified || ev.Fields["ip"] != floodSource {
		t.Fatalf("throttled block event %+v, want it marked unverified with the address", ev)
	}

	bad := m.signedHeaders("GET", path, nil, t0.Unix())
	bad[3].value = bad[3].value[:10] + "AAAA" + bad[3].value[14:]
	resp = e.mustSend(t, floodSource, "GET", path, bad, nil)
	expectStatus(t, resp, http.StatusForbidden)
	if got := string(resp.body); got != deniedBody {
		t.Fatalf("bad signature of a throttled pair: body %s, want %s", got, deniedBody)
	}

	// Once the cool-down has passed, the next request is verified in full.
	e.clock.freeze(t, t0.Add(DefaultConfig().BlockThrottle.CoolDown))
	bad = m.signedHeaders("GET", path, nil, t0.Unix())
	bad[3].value = bad[3].value[:10] + "AAAA" + bad[3].value[14:]
	resp = e.mustSend(t, floodSource, "GET", path, bad, nil)
	expectStatus(t, resp, http.StatusUnauthorized)
}

// TestBlockThrottle_ChangesTakeEffectAtOnce throttles a pair and then
// changes what the full checks would return. An allowed address of the
// same machine, a guardrail edit that admits the flooding address and a
// disabled machine each get the full checks' response on the next request.
func TestBlockThrottle_ChangesTakeEffectAtOnce(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.allowlistedMachine(t, allowedSource+"/32")
	path := "/v1/secret/" + f.secret
	e.clock.freeze(t, time.Now())
	throttle := func() {
		t.Helper()
		for range DefaultConfig().BlockThrottle.MaxBlocks + 1 {
			expectStatus(t, e.signed(t, floodSource, m, "GET", path, nil), http.StatusForbidden)
		}
		if !e.srv.blockThrottle.Throttled(m.id, netip.MustParseAddr(floodSource), e.clock.Now()) {
			t.Fatal("the pair is not throttled after the limit of blocks")
		}
	}

	throttle()
	expectStatus(t, e.signed(t, allowedSource, m, "GET", path, nil), http.StatusOK)

	e.adminOK(t, http.StatusOK, "PUT", e.machinePath(m)+"/guardrails",
		[]byte(`{"ipAllowlist":{"cidrs":["`+allowedSource+`/32","`+floodSource+`/32"]}}`), nil)
	expectStatus(t, e.signed(t, floodSource, m, "GET", path, nil), http.StatusOK)

	e.adminOK(t, http.StatusOK, "PUT", e.machinePath(m)+"/guardrails",
		[]byte(`{"ipAllowlist":{"cidrs":["`+allowedSource+`/32"]}}`), nil)
	throttle()
	e.adminOK(t, http.StatusOK, "POST", e.machinePath(m)+"/disable", map[string]any{}, nil)
	resp := e.signed(t, floodSource, m, "GET", path, nil)
	expectStatus(t, resp, http.StatusForbidden)
	if msg := machineError(t, resp); msg != "Machine is disabled" {
		t.Fatalf("disabled machine from a throttled address: %q, want the status message", msg)
	}
}

// TestBlockThrottle_DisabledVerifiesEveryRequest checks that
// DisableBlockThrottle leaves every block to the full checks.
func TestBlockThrottle_DisabledVerifiesEveryRequest(t *testing.T) {
	e := startRecordedEnv(t, recordedOptions{server: func(c *Config) { c.DisableBlockThrottle = true }})
	f, m := e.allowlistedMachine(t, allowedSource+"/32")
	path := "/v1/secret/" + f.secret
	client := newLoopbackClient(e.addr, floodSource, 4)
	defer client.close()
	got := client.sendAll(e.presign(m, path, 200, nil), 4)
	if got.statuses[http.StatusForbidden] != 200 {
		t.Fatalf("responses %v, want 200 × 403", got.statuses)
	}
	if n := counterValue(t, e.srv.metrics.blockThrottled); n != 0 {
		t.Fatalf("%v requests throttled with the throttle off", n)
	}
}

func TestConfig_BlockThrottleValidated(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BlockThrottle.CoolDown = 2 * time.Hour
	if err := cfg.Validate(); err == nil {
		t.Fatal("a 2 h cool-down was accepted")
	}
	cfg.DisableBlockThrottle = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the throttle is off, yet its config was rejected: %v", err)
	}
	partial := Config{BlockThrottle: guard.BlockThrottleConfig{MaxBlocks: 5}}.withDefaults()
	if partial.BlockThrottle.MaxBlocks != 5 || partial.BlockThrottle.Window != time.Second || partial.BlockThrottle.MaxPairs == 0 {
		t.Fatalf("partial throttle config %+v did not take the defaults of its zero fields", partial.BlockThrottle)
	}
}

// blockedReadPath sets up, through the admin API, a temp machine whose IP
// guardrail admits only cidr and that may read one secret, and returns
// the secret's read path and the machine.
func (e *testEnv) blockedReadPath(cidr string) (string, testMachine, error) {
	var vault, project, secret struct{ ID string }
	if err := e.call("POST", "/v1/admin/vaults", http.StatusCreated, map[string]string{"name": "bench blocks"}, &vault); err != nil {
		return "", testMachine{}, err
	}
	if err := e.call("POST", "/v1/admin/vaults/"+vault.ID+"/projects", http.StatusCreated, map[string]string{"name": "bench"}, &project); err != nil {
		return "", testMachine{}, err
	}
	err := e.call("POST", "/v1/admin/vaults/"+vault.ID+"/projects/"+project.ID+"/secrets", http.StatusCreated,
		map[string]any{"name": "bench", "value": "bench-value"}, &secret)
	if err != nil {
		return "", testMachine{}, err
	}

	var tok issuedToken
	err = e.call("POST", "/v1/admin/vaults/"+vault.ID+"/temp-tokens", http.StatusCreated, map[string]any{
		"name": "bench-blocked", "lifetime": map[string]int{"days": 1},
		"guardrails": map[string]any{"ipAllowlist": map[string]any{"cidrs": []string{cidr}}},
	}, &tok)
	if err != nil {
		return "", testMachine{}, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", testMachine{}, err
	}
	var reg registerResponse
	err = e.call("POST", "/v1/"+vault.ID+"/temp-bootstrap/"+tok.Token+"/register", http.StatusCreated,
		registerRequest{PublicKey: base64.StdEncoding.EncodeToString(pub), Hostname: "bench"}, &reg)
	if err != nil {
		return "", testMachine{}, err
	}

	m := testMachine{id: reg.MachineID, vault: vault.ID, key: priv}
	if err := e.call("POST", e.machinePath(m)+"/approve", http.StatusOK, map[string]any{}, nil); err != nil {
		return "", testMachine{}, err
	}
	if err := e.call("POST", e.machinePath(m)+"/projects", http.StatusOK, map[string]string{"projectId": project.ID}, nil); err != nil {
		return "", testMachine{}, err
	}
	err = e.call("PUT", e.machinePath(m)+"/grants", http.StatusOK, map[string]any{"secretIds": []string{secret.ID}}, nil)
	return "/v1/secret/" + secret.ID, m, err
}

// BenchmarkGuardrailBlock_Handler runs the server's handler, without a
// network, on signed reads of one machine from an address its guardrail
// blocks, with the production audit path. "verified" has the throttle
// off, so each request is verified before it is blocked. "throttled" has
// a cool-down longer than the run, so after the first 21 every request is
// rejected before verification.
func BenchmarkGuardrailBlock_Handler(b *testing.B) {
	for _, bc := range []struct {
		name     string
		throttle bool
	}{{"verified", false}, {"throttled", true}} {
		b.Run(bc.name, func(b *testing.B) {
			e := startRecordedEnv(b, recordedOptions{server: func(c *Config) {
				c.DisableBlockThrottle = !bc.throttle
				c.BlockThrottle.CoolDown = time.Minute
			}})
			path, m, err := e.blockedReadPath(allowedSource + "/32")
			if err != nil {
				b.Fatal(err)
			}
			reqs := e.presignParallel(m, path, b.N)
			handler := e.srv.Handler()
			remote := &net.TCPAddr{IP: net.ParseIP(floodSource), Port: 40000}
			var next, failures atomic.Int64

			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				var req fasthttp.Request
				for pb.Next() {
					r := &reqs[next.Add(1)-1]
					req.Reset()
					req.Header.SetMethod("GET")
					req.SetRequestURI(r.path)
					for _, h := range r.headers {
						req.Header.Set(h.name, h.value)
					}
					ctx.Init(&req, remote, nil)
					handler(&ctx)
					if ctx.Response.StatusCode() != http.StatusForbidden {
						failures.Add(1)
					}
				}
			})
			b.StopTimer()
			if n := failures.Load(); n > 0 {
				b.Fatalf("%d of %d requests were not blocked", n, b.N)
			}
		})
	}
}

// presignParallel is presign on every core, for benchmarks that need many
// signatures.
func (e *testEnv) presignParallel(m testMachine, path string, n int) []signedRequest {
	out := make([]signedRequest, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				out[i] = e.presign(m, path, 1, nil)[0]
			}
		}()
	}
	wg.Wait()
	return out
}
