package httpapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster/audit"
)

// benchMachines is the number of machines that the read benchmarks sign
// with, so that key lookups are spread over many entries.
const benchMachines = 64

// readBench is a server with the production audit path (an audit.Recorder
// that writes through Raft) and approved machines that may read one secret.
type readBench struct {
	env      *testEnv
	srv      *Server
	recorder *audit.Recorder
	path     string
	machines []testMachine
}

var (
	readBenchOnce sync.Once
	readBenchEnv  *readBench
	readBenchErr  error
)

// sharedReadBench starts the benchmark server once per test binary run.
func sharedReadBench(b *testing.B) *readBench {
	b.Helper()
	sharedOnce.Do(func() { shared, sharedErr = startEnv() })
	if sharedErr != nil {
		b.Fatalf("start test environment: %v", sharedErr)
	}
	readBenchOnce.Do(func() { readBenchEnv, readBenchErr = newReadBench(shared) })
	if readBenchErr != nil {
		b.Fatalf("set up read benchmark: %v", readBenchErr)
	}
	return readBenchEnv
}

func newReadBench(e *testEnv) (*readBench, error) {
	rb := &readBench{env: e}
	vault, err := benchAdmin[struct{ ID string }](e, http.StatusCreated, "POST", "/v1/admin/vaults", map[string]string{"name": "bench reads"})
	if err != nil {
		return nil, err
	}
	project, err := benchAdmin[struct{ ID string }](e, http.StatusCreated, "POST", "/v1/admin/vaults/"+vault.ID+"/projects", map[string]string{"name": "bench"})
	if err != nil {
		return nil, err
	}
	secret, err := benchAdmin[struct{ ID string }](e, http.StatusCreated, "POST",
		"/v1/admin/vaults/"+vault.ID+"/projects/"+project.ID+"/secrets", map[string]any{"name": "bench", "value": "bench-value"})
	if err != nil {
		return nil, err
	}
	rb.path = "/v1/secret/" + secret.ID

	for range benchMachines {
		m, err := benchMachine(e, vault.ID, project.ID, secret.ID)
		if err != nil {
			return nil, err
		}
		rb.machines = append(rb.machines, m)
	}

	rcfg := audit.DefaultRecorderConfig()
	rcfg.NodeID = "bench"
	if rb.recorder, err = audit.NewRecorder(rcfg, e.node, nil, nil); err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Auditor = RecorderAuditor(rb.recorder)
	cfg.Lockout = testLockout
	if rb.srv, err = New(cfg, e.node, e.sm, e.keyring, nil, testLogger()); err != nil {
		return nil, err
	}
	if err := rb.srv.Start(); err != nil {
		return nil, err
	}
	return rb, nil
}

// benchMachine registers an approved machine that may read secret.
func benchMachine(e *testEnv, vault, project, secret string) (testMachine, error) {
	tok, err := benchAdmin[issuedToken](e, http.StatusCreated, "POST", "/v1/admin/vaults/"+vault+"/bootstrap-tokens", map[string]any{})
	if err != nil {
		return testMachine{}, err
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return testMachine{}, err
	}
	body, _ := json.Marshal(registerRequest{PublicKey: base64.StdEncoding.EncodeToString(pub), Hostname: "bench"})
	resp, err := e.send(defaultSource, "POST", "/v1/bootstrap/"+tok.Token+"/register", []header{{"Content-Type", "application/json"}}, body)
	if err != nil {
		return testMachine{}, err
	}
	if resp.status != http.StatusCreated {
		return testMachine{}, fmt.Errorf("register: status %d: %s", resp.status, resp.body)
	}
	var reg registerResponse
	if err := json.Unmarshal(resp.body, &reg); err != nil {
		return testMachine{}, err
	}

	m := testMachine{id: reg.MachineID, vault: vault, key: priv}
	base := "/v1/admin/vaults/" + vault + "/machines/" + m.id
	steps := []struct {
		method, path string
		in           any
	}{
		{"POST", base + "/approve", map[string]any{}},
		{"POST", base + "/projects", map[string]string{"projectId": project}},
		{"PUT", base + "/grants", map[string]any{"secretIds": []string{secret}}},
	}
	for _, s := range steps {
		if _, err := benchAdmin[struct{}](e, http.StatusOK, s.method, s.path, s.in); err != nil {
			return testMachine{}, err
		}
	}
	return m, nil
}

// benchAdmin sends an admin request with the root token and decodes the
// response into a T.
func benchAdmin[T any](e *testEnv, want int, method, path string, in any) (T, error) {
	var out T
	body, err := json.Marshal(in)
	if err != nil {
		return out, err
	}
	headers := []header{{"Authorization", "Bearer " + e.root}, {"Content-Type", "application/json"}}
	resp, err := e.send(defaultSource, method, path, headers, body)
	if err != nil {
		return out, err
	}
	if resp.status != want {
		return out, fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.status, want, resp.body)
	}
	if len(resp.body) > 0 {
		err = json.Unmarshal(resp.body, &out)
	}
	return out, err
}

// presignedRead is the header values of one signed GET.
type presignedRead struct {
	machineID, timestamp, nonce, signature string
}

// presign signs n reads, spread over the machines, on every core.
func (rb *readBench) presign(n int) []presignedRead {
	out := make([]presignedRead, n)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				m := rb.machines[i%len(rb.machines)]
				nonce := fmt.Sprintf("bench-%d-%016x", i, time.Now().UnixNano())
				sig := ed25519.Sign(m.key, canonical("GET", rb.path, ts, nonce, nil))
				out[i] = presignedRead{m.id, ts, nonce, base64.StdEncoding.EncodeToString(sig)}
			}
		}()
	}
	wg.Wait()
	return out
}

// setHeaders writes the signed headers of r into req.
func (r *presignedRead) setHeaders(req *fasthttp.Request) {
	req.Header.Set("X-Machine-Id", r.machineID)
	req.Header.Set("X-Timestamp", r.timestamp)
	req.Header.Set("X-Nonce", r.nonce)
	req.Header.Set("X-Signature", r.signature)
}

// BenchmarkSignedRead_Loopback sends presigned GET /v1/secret/{id} requests
// through a fasthttp client to the server over loopback TCP, from 64
// goroutines with a connection each. Client and server share the cores.
func BenchmarkSignedRead_Loopback(b *testing.B) {
	rb := sharedReadBench(b)
	benchmarkLoopback(b, rb, rb.srv)
}

func benchmarkLoopback(b *testing.B, rb *readBench, srv *Server) {
	reads := rb.presign(b.N)
	client := &fasthttp.HostClient{Addr: srv.Addr(), MaxConns: 256, ReadTimeout: 10 * time.Second}
	var next atomic.Int64
	var failures atomic.Int64

	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	cpu := startCPUClock()
	b.RunParallel(func(pb *testing.PB) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + srv.Addr() + rb.path)
		for pb.Next() {
			r := &reads[next.Add(1)-1]
			r.setHeaders(req)
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	b.StopTimer()
	cpu.report(b)
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d reads failed", n, b.N)
	}
}

// BenchmarkSignedRead_Handler runs the server's request handler on a
// prepared fasthttp.RequestCtx, without a network, so that allocations
// and CPU are the server's alone.
func BenchmarkSignedRead_Handler(b *testing.B) {
	rb := sharedReadBench(b)
	reads := rb.presign(b.N)
	handler := rb.srv.Handler()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	var next atomic.Int64
	var failures atomic.Int64

	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPUClock()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		for pb.Next() {
			r := &reads[next.Add(1)-1]
			req.Reset()
			req.Header.SetMethod("GET")
			req.SetRequestURI(rb.path)
			r.setHeaders(&req)
			ctx.Init(&req, remote, nil)
			handler(&ctx)
			if ctx.Response.StatusCode() != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	b.StopTimer()
	cpu.report(b)
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d reads failed", n, b.N)
	}
	if err := rb.recorder.Sync(context.Background(), false); err != nil {
		b.Fatalf("sync audit recorder: %v", err)
	}
}

// cpuClock measures the CPU time of the whole process (user and system, all
// threads), which on a host shared with other work moves less than the
// wall-clock time per operation.
type cpuClock struct{ start time.Duration }

func startCPUClock() cpuClock { return cpuClock{start: processCPU()} }

// report adds cpu-ns/op, the process CPU time per operation, to b.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
