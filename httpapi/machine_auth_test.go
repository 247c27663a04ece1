package httpapi

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"net"
	"net/http"
	"strings"
	"testing"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

const (
	headerTestMachineID = "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
	headerTestTimestamp = "1767225600"
	headerTestNonce     = "3f9a1c2e7b4d4e10"
)

var headerTestSignature = base64.StdEncoding.EncodeToString(make([]byte, guard.SignatureSize))

// signedHeaderLines returns the four signed headers under the given names,
// in the order machine id, timestamp, nonce, signature.
func signedHeaderLines(names [4]string) []string {
	values := [4]string{headerTestMachineID, headerTestTimestamp, headerTestNonce, headerTestSignature}
	lines := make([]string, len(names))
	for i, name := range names {
		lines[i] = name + ": " + values[i]
	}
	return lines
}

var canonicalHeaderNames = [4]string{guard.HeaderMachineID, guard.HeaderTimestamp, guard.HeaderNonce, guard.HeaderSignature}

// parsedRequest parses a GET request with the header lines the way the
// server does, names normalized, and returns it as a request.
func parsedRequest(t testing.TB, lines []string) *request {
	t.Helper()
	raw := "GET /v1/secret/sk_0123456789 HTTP/1.1\r\nHost: keyward.test\r\n" +
		strings.Join(lines, "\r\n") + "\r\n\r\n"
	ctx := new(fasthttp.RequestCtx)
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return &request{ctx: ctx}
}

func TestReadSignedHeaders_NameCase(t *testing.T) {
	cases := map[string][4]string{
		"canonical":  canonicalHeaderNames,
		"lower case": {"x-machine-id", "x-timestamp", "x-nonce", "x-signature"},
		"upper case": {"X-MACHINE-ID", "X-TIMESTAMP", "X-NONCE", "X-SIGNATURE"},
		"mixed case": {"x-MACHINE-id", "X-timeSTAMP", "x-NoNcE", "X-sIgNaTuRe"},
	}
	for name, names := range cases {
		t.Run(name, func(t *testing.T) {
			h, err := readSignedHeaders(parsedRequest(t, signedHeaderLines(names)))
			if err != nil {
				t.Fatalf("readSignedHeaders: %v", err)
			}
			if string(h.MachineID[:]) != headerTestMachineID {
				t.Errorf("MachineID = %q, want %q", h.MachineID[:], headerTestMachineID)
			}
			if string(h.TimestampRaw) != headerTestTimestamp {
				t.Errorf("TimestampRaw = %q, want %q", h.TimestampRaw, headerTestTimestamp)
			}
			if string(h.Nonce) != headerTestNonce {
				t.Errorf("Nonce = %q, want %q", h.Nonce, headerTestNonce)
			}
		})
	}
}

func TestReadSignedHeaders_Rejects(t *testing.T) {
	valid := signedHeaderLines(canonicalHeaderNames)
	without := func(i int) []string {
		return append(append([]string(nil), valid[:i]...), valid[i+1:]...)
	}
	with := func(extra ...string) []string {
		return append(append([]string(nil), valid...), extra...)
	}
	digest := hexSHA256(nil)
	tests := []struct {
		name     string
		lines    []string
		hasQuery bool
		want     error
	}{
		{"X-Machine-Id again in lower case", with("x-machine-id: 00000000-0000-4000-8000-000000000001"), false, guard.ErrDuplicateHeader},
		{"X-Timestamp again in upper case", with("X-TIMESTAMP: 1000000000"), false, guard.ErrDuplicateHeader},
		{"X-Nonce again in mixed case", with("x-NONCE: another-nonce"), false, guard.ErrDuplicateHeader},
		{"X-Signature twice with one value", with(valid[3]), false, guard.ErrDuplicateHeader},
		{"X-Content-Sha256 in two cases", with("X-Content-Sha256: "+digest, "x-content-sha256: "+digest), false, guard.ErrDuplicateHeader},
		{"missing X-Machine-Id", without(0), false, guard.ErrMissingHeader},
		{"missing X-Timestamp", without(1), false, guard.ErrMissingHeader},
		{"missing X-Nonce", without(2), false, guard.ErrMissingHeader},
		{"missing X-Signature", without(3), false, guard.ErrMissingHeader},
		{"malformed X-Machine-Id", append([]string{"X-Machine-Id: m-a"}, valid[1:]...), false, guard.ErrMalformedHeader},
		{"malformed X-Nonce", append(append([]string(nil), valid[:2]...), "X-Nonce: a:b:c:d:e", valid[3]), false, guard.ErrMalformedHeader},
		{"query string", valid, true, ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := parsedRequest(t, tt.lines)
			rc.hasQuery = tt.hasQuery
			_, err := readSignedHeaders(rc)
			if !errors.Is(err, tt.want) {
				t.Errorf("readSignedHeaders error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReadSignedHeaders_DoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are checked without the race detector, whose instrumentation allocates")
	}
	rc := parsedRequest(t, append(signedHeaderLines(canonicalHeaderNames), "X-Content-Sha256: "+hexSHA256(nil)))
	if _, err := readSignedHeaders(rc); err != nil {
		t.Fatalf("readSignedHeaders: %v", err)
	}

	allocs := testing.AllocsPerRun(100, func() {
		if _, err := readSignedHeaders(rc); err != nil {
			t.Fatalf("readSignedHeaders: %v", err)
		}
	})
	if allocs != 0 {
		t.Errorf("readSignedHeaders of valid headers allocated %.1f times, want 0", allocs)
	}
}

func TestBodyHashText(t *testing.T) {
	for _, body := range [][]byte{nil, {}, []byte(`{"projectId":"proj_0123456789"}`)} {
		sum := sha256.Sum256(body)
		if got, want := bodyHashText(body, &sum), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("bodyHashText(%q) = %s, want %s", body, got, want)
		}
	}
}

func TestBodyHashText_EmptyBodyDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are checked without the race detector, whose instrumentation allocates")
	}
	sum := sha256.Sum256(nil)
	allocs := testing.AllocsPerRun(100, func() { _ = bodyHashText(nil, &sum) })
	if allocs != 0 {
		t.Errorf("bodyHashText of an empty body allocated %.1f times, want 0", allocs)
	}
}

func TestInternTable_LookupReturnsAddedString(t *testing.T) {
	table := newInternTable(64)
	if _, ok := table.lookup([]byte(headerTestMachineID)); ok {
		t.Fatal("lookup found an id before it was added")
	}

	id := strings.Clone(headerTestMachineID)
	table.add(id)
	table.add(strings.Clone(headerTestMachineID))
	got, ok := table.lookup([]byte(headerTestMachineID))
	if !ok {
		t.Fatal("lookup did not find an added id")
	}
	if got != headerTestMachineID {
		t.Errorf("lookup = %q, want %q", got, headerTestMachineID)
	}
	if unsafe.StringData(got) != unsafe.StringData(id) {
		t.Error("lookup returned a different copy from the first one added")
	}
}

func TestInternTable_FullShardIsEmptied(t *testing.T) {
	table := newInternTable(internShards) // one string per shard
	first := strings.Clone(headerTestMachineID)
	table.add(first)
	shard := &table.shards[internShardOf(table, first)]

	// Add ids until one lands in the same shard as first.
	for i := 0; ; i++ {
		other := strings.Replace(headerTestMachineID, "6f1c", hex.EncodeToString([]byte{byte(i >> 8), byte(i)}), 1)
		if internShardOf(table, other) != internShardOf(table, first) {
			continue
		}
		table.add(other)
		if n := len(shard.strings); n != 1 {
			t.Fatalf("shard holds %d strings after an insert at its limit, want 1", n)
		}
		if _, ok := table.lookup([]byte(first)); ok {
			t.Error("the full shard kept its old string")
		}
		if _, ok := table.lookup([]byte(other)); !ok {
			t.Error("the string added to a full shard is missing")
		}
		return
	}
}

// internShardOf returns the index of the shard of table that holds s.
func internShardOf(table *internTable, s string) uint64 {
	return maphash.String(table.seed, s) & (internShards - 1)
}

func TestInternTable_LookupDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are checked without the race detector, whose instrumentation allocates")
	}
	table := newInternTable(64)
	table.add(strings.Clone(headerTestMachineID))
	text := []byte(headerTestMachineID)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := table.lookup(text); !ok {
			t.Fatal("lookup did not find an added id")
		}
	})
	if allocs != 0 {
		t.Errorf("lookup allocated %.1f times, want 0", allocs)
	}
}

func TestReleaseMachineCall_ClearsFields(t *testing.T) {
	mc := machineCallPool.Get().(*machineCall)
	*mc = machineCall{entry: &fsm.MachineEntry{}, body: []byte("body")}
	mc.machine = &mc.entry.Machine
	releaseMachineCall(mc)
	if mc.entry != nil || mc.machine != nil || mc.body != nil || mc.client.IsValid() {
		t.Errorf("released machineCall still holds %+v", *mc)
	}
}

// TestSignedRead_KeptValuesSurviveBufferReuse sends requests through the
// handler on one reused fasthttp request, so that each request overwrites
// the header buffers of the one before. The audit events and the interned
// machine id must keep the values of their own request.
func TestSignedRead_KeptValuesSurviveBufferReuse(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	read := "/v1/secret/" + f.secret
	handler := e.srv.Handler()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 77), Port: 40000}
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request

	serve := func(machineID string) (status int, requestID string) {
		req.Reset()
		req.Header.SetMethod("GET")
		req.SetRequestURI(read)
		for _, h := range (vector{method: "GET", target: read}).headersFor(m, e.clock.Now()) {
			req.Header.Set(h.name, h.value)
		}
		req.Header.Set(guard.HeaderMachineID, machineID)
		ctx.Init(&req, remote, nil)
		handler(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Header.Peek("X-Request-Id"))
	}

	// Upper case, so that the server must store its own lower-case copy.
	status, readID := serve(strings.ToUpper(m.id))
	if status != http.StatusOK {
		t.Fatalf("signed read: status %d, want 200", status)
	}
	const unknownA = "0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a"
	const unknownB = "0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b"
	if status, _ = serve(unknownB); status != http.StatusUnauthorized {
		t.Fatalf("unknown machine: status %d, want 401", status)
	}
	status, unknownID := serve(unknownA)
	if status != http.StatusUnauthorized {
		t.Fatalf("unknown machine: status %d, want 401", status)
	}
	if status, _ = serve(unknownB); status != http.StatusUnauthorized {
		t.Fatalf("unknown machine: status %d, want 401", status)
	}

	readEvent := e.audit.byRequest(t, readID, ActionSecretRead)
	if readEvent.MachineID != m.id {
		t.Errorf("secret_read has machine %q, want %q", readEvent.MachineID, m.id)
	}
	if readEvent.BodySHA256 != hexSHA256(nil) {
		t.Errorf("secret_read has body hash %q, want %q", readEvent.BodySHA256, hexSHA256(nil))
	}
	if ev := e.audit.byRequest(t, unknownID, ActionAuthFailure); ev.Fields["claimedMachineId"] != unknownA {
		t.Errorf("auth_failure claims machine %v, want %s", ev.Fields["claimedMachineId"], unknownA)
	}
	if id, ok := machineIDs.lookup([]byte(m.id)); !ok || id != m.id {
		t.Errorf("interned id = %q, %v; want %q", id, ok, m.id)
	}
	for _, id := range []string{unknownA, unknownB} {
		if _, ok := machineIDs.lookup([]byte(id)); ok {
			t.Errorf("unknown machine %s was interned", id)
		}
	}
}
