package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/guard"
)

func TestSignature_CanonicalGoldenVector(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"empty body", nil, "GET:/v1/secret/sk_abcdefghij:1700000000:nonce-0001:" +
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"JSON body", []byte(`{"projectId":"proj_abcdefghij"}`), "GET:/v1/secret/sk_abcdefghij:1700000000:nonce-0001:" +
			hexSHA256([]byte(`{"projectId":"proj_abcdefghij"}`))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := guard.AppendCanonical(nil, []byte("GET"), []byte("/v1/secret/sk_abcdefghij"),
				[]byte("1700000000"), []byte("nonce-0001"), tc.body)
			if string(got) != tc.want {
				t.Errorf("canonical = %q, want %q", got, tc.want)
			}
			if helper := canonical("GET", "/v1/secret/sk_abcdefghij", "1700000000", "nonce-0001", tc.body); string(helper) != tc.want {
				t.Errorf("test helper canonical = %q, want %q", helper, tc.want)
			}
		})
	}
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// groupOrder is the order L of the Ed25519 base point.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// nonCanonicalS returns sig with S replaced by S + L, which verifies under
// a lax verifier but must be rejected.
func nonCanonicalS(sig []byte) []byte {
	le := append([]byte(nil), sig[32:]...)
	reverse(le)
	s := new(big.Int).SetBytes(le)
	s.Add(s, groupOrder)
	out := make([]byte, 32)
	s.FillBytes(out)
	reverse(out)
	return append(append([]byte(nil), sig[:32]...), out...)
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// vector describes one signed request to send.
type vector struct {
	name     string
	method   string
	target   string // request-target sent
	signPath string // path covered by the signature; target when empty
	body     []byte
	skew     int64  // seconds added to the clock for X-Timestamp
	tsText   string // X-Timestamp sent instead of the computed one
	key      ed25519.PrivateKey
	mutate   func(h []header) []header
	want     int
}

// headersFor signs v for machine m at now.
func (v vector) headersFor(m testMachine, now time.Time) []header {
	path := v.signPath
	if path == "" {
		path = v.target
	}
	ts := strconv.FormatInt(now.Unix()+v.skew, 10)
	if v.tsText != "" {
		ts = v.tsText
	}
	key := m.key
	if v.key != nil {
		key = v.key
	}
	nonce := newNonce()
	sig := ed25519.Sign(key, canonical(v.method, path, ts, nonce, v.body))
	h := []header{
		{"X-Machine-Id", m.id},
		{"X-Timestamp", ts},
		{"X-Nonce", nonce},
		{"X-Signature", base64.StdEncoding.EncodeToString(sig)},
	}
	if v.mutate != nil {
		h = v.mutate(h)
	}
	return h
}

func replaceHeader(h []header, name, value string) []header {
	out := append([]header(nil), h...)
	for i := range out {
		if out[i].name == name {
			out[i].value = value
		}
	}
	return out
}

func TestSignature_VectorsEndToEnd(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	now := time.Now().Truncate(time.Second)
	e.clock.freeze(t, now)
	const src = "127.0.0.10"

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	read := "/v1/secret/" + f.secret
	listBody := []byte(`{"projectId":"` + f.project + `"}`)
	vectors := []vector{
		{name: "empty body", method: "GET", target: read, want: http.StatusOK},
		{name: "JSON body", method: "POST", target: "/v1/secrets/list", body: listBody, want: http.StatusOK},
		{name: "query string signed without it", method: "GET", target: read + "?version=1", signPath: read, want: http.StatusUnauthorized},
		{name: "query string signed with it", method: "GET", target: read + "?version=1", signPath: read + "?version=1", want: http.StatusUnauthorized},
		{name: "timestamp 300 s ahead", method: "GET", target: read, skew: 300, want: http.StatusOK},
		{name: "timestamp 300 s behind", method: "GET", target: read, skew: -300, want: http.StatusOK},
		{name: "timestamp 301 s ahead", method: "GET", target: read, skew: 301, want: http.StatusUnauthorized},
		{name: "timestamp 301 s behind", method: "GET", target: read, skew: -301, want: http.StatusUnauthorized},
		{name: "timestamp in milliseconds", method: "GET", target: read, tsText: strconv.FormatInt(now.UnixMilli(), 10), want: http.StatusUnauthorized},
		{name: "timestamp with leading zero", method: "GET", target: read, tsText: "0" + strconv.FormatInt(now.Unix(), 10), want: http.StatusUnauthorized},
		{name: "wrong key", method: "GET", target: read, key: otherKey, want: http.StatusUnauthorized},
		{name: "body signed as empty", method: "POST", target: "/v1/secrets/list", body: listBody, want: http.StatusUnauthorized,
			mutate: func(h []header) []header {
				sig := ed25519.Sign(m.key, canonical("POST", "/v1/secrets/list", h[1].value, h[2].value, nil))
				return replaceHeader(h, "X-Signature", base64.StdEncoding.EncodeToString(sig))
			}},
		{name: "non-canonical S", method: "GET", target: read, want: http.StatusUnauthorized,
			mutate: func(h []header) []header {
				sig, _ := base64.StdEncoding.DecodeString(h[3].value)
				return replaceHeader(h, "X-Signature", base64.StdEncoding.EncodeToString(nonCanonicalS(sig)))
			}},
		{name: "signature not base64", method: "GET", target: read, want: http.StatusUnauthorized,
			mutate: func(h []header) []header { return replaceHeader(h, "X-Signature", strings.Repeat("!", 88)) }},
		{name: "missing signature", method: "GET", target: read, want: http.StatusUnauthorized,
			mutate: func(h []header) []header { return h[:3] }},
		{name: "machine id in upper case", method: "GET", target: read, want: http.StatusOK,
			mutate: func(h []header) []header { return replaceHeader(h, "X-Machine-Id", strings.ToUpper(m.id)) }},
		{name: "unknown machine", method: "GET", target: read, want: http.StatusUnauthorized,
			mutate: func(h []header) []header {
				return replaceHeader(h, "X-Machine-Id", "00000000-0000-4000-8000-000000000000")
			}},
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			resp := e.mustSend(t, src, v.method, v.target, v.headersFor(m, now), v.body)
			if resp.status != v.want {
				t.Fatalf("status %d, want %d; body %s", resp.status, v.want, resp.body)
			}
			if v.want != http.StatusOK {
				machineError(t, resp)
			}
		})
	}

	t.Run("replayed nonce", func(t *testing.T) {
		h := vector{method: "GET", target: read}.headersFor(m, now)
		expectStatus(t, e.mustSend(t, src, "GET", read, h, nil), http.StatusOK)
		resp := e.mustSend(t, src, "GET", read, h, nil)
		expectStatus(t, resp, http.StatusUnauthorized)
		ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionAuthFailure)
		if ev.Fields["reason"] != "nonce_reused" {
			t.Errorf("auth_failure reason = %v, want nonce_reused", ev.Fields["reason"])
		}
	})

	t.Run("nonce of a rejected request stays usable", func(t *testing.T) {
		bad := vector{method: "GET", target: read, key: otherKey}.headersFor(m, now)
		resp := e.mustSend(t, src, "GET", read, bad, nil)
		expectStatus(t, resp, http.StatusUnauthorized)
		ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionAuthFailure)
		if ev.Fields["reason"] != "invalid_signature" || ev.MachineID != m.id || ev.SourceIP != src {
			t.Errorf("auth_failure event = %+v, want invalid_signature for %s from %s", ev, m.id, src)
		}

		good := vector{method: "GET", target: read}.headersFor(m, now)
		good = replaceHeader(good, "X-Nonce", bad[2].value)
		sig := ed25519.Sign(m.key, canonical("GET", read, good[1].value, bad[2].value, nil))
		good = replaceHeader(good, "X-Signature", base64.StdEncoding.EncodeToString(sig))
		expectStatus(t, e.mustSend(t, src, "GET", read, good, nil), http.StatusOK)
	})
}

func TestSignature_LockoutAfterRepeatedFailures(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	const src = "127.0.0.11"
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	read := "/v1/secret/" + f.secret

	for i := 0; i < testLockout.MaxFailures; i++ {
		h := vector{method: "GET", target: read, key: otherKey}.headersFor(m, e.clock.Now())
		expectStatus(t, e.mustSend(t, src, "GET", read, h, nil), http.StatusUnauthorized)
	}
	resp := e.signed(t, src, m, "GET", read, nil)
	expectStatus(t, resp, http.StatusTooManyRequests)
	if resp.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	machineError(t, resp)
	ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionAuthFailure)
	if ev.Fields["reason"] != "locked_out" || ev.SourceIP != src {
		t.Errorf("auth_failure event of the 429 = %+v, want reason locked_out from %s", ev, src)
	}

	expectStatus(t, e.signed(t, "127.0.0.12", m, "GET", read, nil), http.StatusOK)
}

func TestPath_VerifiedBytesAreRoutedBytes(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	const src = "127.0.0.13"
	encodedID := "%73" + f.secret[1:] // "s" written as %73

	cases := []struct {
		name     string
		target   string
		signPath string
		want     int
	}{
		{"plain id", "/v1/secret/" + f.secret, "", http.StatusOK},
		{"empty segment", "/v1/secret//" + f.secret, "", http.StatusBadRequest},
		{"dot segment", "/v1/secret/./" + f.secret, "", http.StatusBadRequest},
		{"dot-dot segment", "/v1/secrets/../secret/" + f.secret, "", http.StatusBadRequest},
		{"encoded dot segment", "/v1/secret/%2e%2e/" + f.secret, "", http.StatusBadRequest},
		{"encoded slash signed raw", "/v1/secret/app%2Fdb-password", "", http.StatusNotFound},
		{"lower-case encoded slash signed raw", "/v1/secret/app%2fdb-password", "", http.StatusNotFound},
		{"encoded slash signed decoded", "/v1/secret/app%2Fdb-password", "/v1/secret/app/db-password", http.StatusUnauthorized},
		{"re-encoded by a proxy", "/v1/secret/" + encodedID, "/v1/secret/" + f.secret, http.StatusUnauthorized},
		{"encoded id signed raw is not decoded", "/v1/secret/" + encodedID, "", http.StatusNotFound},
		{"double encoding is not decoded twice", "/v1/secret/app%252Fdb-password", "", http.StatusNotFound},
		{"trailing slash", "/v1/secret/" + f.secret + "/", "", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := vector{method: "GET", target: tc.target, signPath: tc.signPath}.headersFor(m, e.clock.Now())
			resp := e.mustSend(t, src, "GET", tc.target, h, nil)
			if resp.status != tc.want {
				t.Fatalf("GET %s: status %d, want %d; body %s", tc.target, resp.status, tc.want, resp.body)
			}
			if resp.status != http.StatusOK {
				machineError(t, resp)
			}
		})
	}
}

func TestHeaders_CaseAndRepeats(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	const src = "127.0.0.14"
	read := "/v1/secret/" + f.secret
	rename := func(h []header, convert func(string) string) []header {
		out := append([]header(nil), h...)
		for i := range out {
			out[i].name = convert(out[i].name)
		}
		return out
	}

	cases := []struct {
		name   string
		mutate func(h []header) []header
		want   int
	}{
		{"lower-case names", func(h []header) []header { return rename(h, strings.ToLower) }, http.StatusOK},
		{"upper-case names", func(h []header) []header { return rename(h, strings.ToUpper) }, http.StatusOK},
		{"two X-Timestamp, one stale", func(h []header) []header {
			return append(h, header{"X-Timestamp", strconv.FormatInt(e.clock.Now().Unix()-3600, 10)})
		}, http.StatusBadRequest},
		{"two X-Machine-Id", func(h []header) []header {
			return append(h, header{"x-machine-id", "00000000-0000-4000-8000-000000000001"})
		}, http.StatusBadRequest},
		{"two X-Nonce", func(h []header) []header { return append(h, header{"X-NONCE", newNonce()}) }, http.StatusBadRequest},
		{"two X-Signature", func(h []header) []header { return append(h, h[3]) }, http.StatusBadRequest},
		{"two X-Content-Sha256", func(h []header) []header {
			d := hexSHA256(nil)
			return append(h, header{"X-Content-Sha256", d}, header{"X-Content-Sha256", d})
		}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.mutate(vector{method: "GET", target: read}.headersFor(m, e.clock.Now()))
			resp := e.mustSend(t, src, "GET", read, h, nil)
			if resp.status != tc.want {
				t.Fatalf("status %d, want %d; body %s", resp.status, tc.want, resp.body)
			}
			if tc.want != http.StatusOK {
				machineError(t, resp)
			}
		})
	}
}

func TestBodyHash_EmptyBodiesAndDigestHeader(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	const src = "127.0.0.15"
	read := "/v1/secret/" + f.secret

	t.Run("empty body forms", func(t *testing.T) {
		cases := []struct {
			name  string
			extra []header
			body  []byte
		}{
			{"no body", nil, nil},
			{"Content-Length: 0", []header{{"Content-Length", "0"}}, nil},
			{"chunked zero-length body", []header{{"Transfer-Encoding", "chunked"}}, []byte("0\r\n\r\n")},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := vector{method: "GET", target: read}.headersFor(m, e.clock.Now())
				expectStatus(t, e.mustSend(t, src, "GET", read, append(h, tc.extra...), tc.body), http.StatusOK)
			})
		}
	})

	listBody := []byte(`{"projectId":"` + f.project + `"}`)
	swapped := []byte(`{"projectId":"proj_0000000000"}`)
	cases := []struct {
		name   string
		digest string
		sent   []byte
		want   int
		reason string
	}{
		{"matching digest", hexSHA256(listBody), listBody, http.StatusOK, ""},
		{"matching digest in upper case", strings.ToUpper(hexSHA256(listBody)), listBody, http.StatusOK, ""},
		{"body swapped, digest of the signed body", hexSHA256(listBody), swapped, http.StatusUnauthorized, "content_hash_mismatch"},
		{"body swapped, digest of the sent body", hexSHA256(swapped), swapped, http.StatusUnauthorized, "invalid_signature"},
		{"body swapped, no digest", "", swapped, http.StatusUnauthorized, "invalid_signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := vector{method: "POST", target: "/v1/secrets/list", body: listBody}.headersFor(m, e.clock.Now())
			if tc.digest != "" {
				h = append(h, header{"X-Content-Sha256", tc.digest})
			}
			before := e.sm.AppliedIndex()
			resp := e.mustSend(t, src, "POST", "/v1/secrets/list", h, tc.sent)
			if resp.status != tc.want {
				t.Fatalf("status %d, want %d; body %s", resp.status, tc.want, resp.body)
			}
			if tc.reason == "" {
				return
			}
			ev := e.audit.byRequest(t, resp.header.Get("X-Request-Id"), ActionAuthFailure)
			if ev.Fields["reason"] != tc.reason || ev.BodySHA256 != hexSHA256(tc.sent) {
				t.Errorf("auth_failure = %+v, want reason %s and the hash of the body received", ev, tc.reason)
			}
			if after := e.sm.AppliedIndex(); after != before {
				t.Errorf("applied index moved from %d to %d on a rejected request", before, after)
			}
		})
	}
}
