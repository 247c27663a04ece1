package httpapi

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

func TestAppendJSONString_MatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr\bback\fform",
		"\x00\x01\x1f\x7f", "<script>&amp;</script>", "é ü 日本 😀",
		"line\u2028para\u2029end", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate",
	}
	for _, c := range cases {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, []byte(c)); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", c, got, want)
		}
	}
}

func TestAppendJSONString_MatchesEncodingJSONOnRandomBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.SliceOf(rapid.Byte()).Draw(t, "bytes")
		want, err := json.Marshal(string(s))
		if err != nil {
			t.Fatal(err)
		}
		got := appendJSONString([]byte("prefix"), s)
		if string(got) != "prefix"+string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want prefix%s", s, got, want)
		}
		if len(got)-len("prefix") > len(`""`)+maxJSONStringGrowth*len(s) {
			t.Fatalf("encoding of %d bytes took %d, above the growth bound", len(s), len(got))
		}
	})
}

func TestAppendJSONString_ValidUTF8Unchanged(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.String().Draw(t, "s")
		var back string
		if err := json.Unmarshal(appendJSONString(nil, []byte(s)), &back); err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("decoded %q, want %q", back, s)
		}
	})
}

func TestSplitPath_MatchesStringsSplit(t *testing.T) {
	paths := []string{"/", "/v1", "/v1/", "/v1/secret/sk_0123456789", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"}
	for _, p := range paths {
		var buf [maxPathSegments]string
		got, ok := splitPath(p, buf[:0])
		want := strings.Split(p[1:], "/")
		if !ok {
			t.Errorf("splitPath(%q) reported too many segments for %d", p, len(want))
			continue
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("splitPath(%q) = %q, want %q", p, got, want)
		}
	}
	var buf [maxPathSegments]string
	if _, ok := splitPath("/"+strings.Repeat("a/", maxPathSegments), buf[:0]); ok {
		t.Errorf("a path of %d segments was accepted", maxPathSegments+1)
	}
}

func TestRoutes_FitPathSegmentLimit(t *testing.T) {
	srv := sharedEnv(t).srv
	for _, r := range srv.routes {
		if len(r.segments) >= maxPathSegments {
			t.Errorf("route %s has %d segments; splitPath stops at %d", r.pattern, len(r.segments), maxPathSegments)
		}
	}
}

func TestRequestID_IsRandomUUIDv4(t *testing.T) {
	uuidV4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		rc := acquireRequest()
		if !uuidV4.MatchString(rc.id) {
			t.Fatalf("request id %q is not a lower-case UUID version 4", rc.id)
		}
		if seen[rc.id] {
			t.Fatalf("request id %q repeated", rc.id)
		}
		seen[rc.id] = true
		releaseRequest(rc)
	}
}

func TestReleaseRequest_KeepsNoRequestData(t *testing.T) {
	rc := acquireRequest()
	rc.path, rc.bodyHash, rc.result, rc.signed = "/v1/secret/sk_0123456789", "abc", resultOK, true
	ids := rc.ids
	releaseRequest(rc)
	if rc.path != "" || rc.bodyHash != "" || rc.result != "" || rc.signed || rc.ctx != nil || rc.id != "" {
		t.Errorf("released request still holds data: %+v", rc)
	}
	if rc.ids != ids {
		t.Error("released request lost its id generator")
	}
}

// TestSignedRead_ResponseBodyIsJSONOfValue reads secrets whose values need
// escaping through the server and compares the body with encoding/json.
func TestSignedRead_ResponseBodyIsJSONOfValue(t *testing.T) {
	e := sharedEnv(t)
	f := e.newFixture(t)
	value := "<tag> & \"quoted\" \\ \n\u2028 日本 " + strings.Repeat("x", 9000)
	id := e.newSecret(t, f.vault, f.project, map[string]any{"name": "escaped", "value": value})
	m := e.newMachine(t, f.vault)
	e.approve(t, m)
	e.attach(t, m, f.project)
	e.grant(t, m, id)

	for round := range 3 {
		resp := e.signed(t, defaultSource, m, "GET", "/v1/secret/"+id, nil)
		if resp.status != 200 {
			t.Fatalf("round %d: status %d: %s", round, resp.status, resp.body)
		}
		want, _ := json.Marshal(struct {
			Value string `json:"value"`
		}{value})
		if string(resp.body) != string(want) {
			t.Fatalf("round %d: body differs from encoding/json's (%d vs %d bytes)", round, len(resp.body), len(want))
		}
		if ct := resp.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("round %d: Content-Type %q", round, ct)
		}
	}
}

// TestValueBuffer_ClearedOnRelease checks that a released buffer holds no
// plaintext.
func TestValueBuffer_ClearedOnRelease(t *testing.T) {
	buf := acquireValueBuffer()
	buf.plain = append(buf.plain[:0], "secret-plaintext"...)
	buf.body = appendJSONString(buf.body[:0], buf.plain)
	plain, body := buf.plain, buf.body
	releaseValueBuffer(buf)
	for i, c := range plain {
		if c != 0 {
			t.Fatalf("plaintext byte %d not cleared", i)
		}
	}
	for i, c := range body {
		if c != 0 {
			t.Fatalf("body byte %d not cleared", i)
		}
	}
}
