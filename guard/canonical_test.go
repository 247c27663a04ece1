package guard

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// emptyBodyHash is the SHA-256 of the empty string in hex.
const emptyBodyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestCanonical_Vectors(t *testing.T) {
	tests := []struct {
		name                           string
		method, path, timestamp, nonce string
		body                           string
		want                           string
	}{
		{
			name:   "empty body",
			method: "GET", path: "/v1/secret/sk_0123456789", timestamp: "1767225600", nonce: "3f9a1c2e7b4d4e10",
			want: "GET:/v1/secret/sk_0123456789:1767225600:3f9a1c2e7b4d4e10:" + emptyBodyHash,
		},
		{
			name:   "json body",
			method: "POST", path: "/v1/secrets/list", timestamp: "1767225600", nonce: "3f9a1c2e7b4d4e10",
			body: `{"projectId":"proj_0123456789"}`,
			want: "POST:/v1/secrets/list:1767225600:3f9a1c2e7b4d4e10:" +
				"86a9d89f5f0b1a29bd0402b05ccb772de5d84d2d9a91fd40b682c690849e30c9",
		},
		{
			name:   "path with percent escape kept raw",
			method: "GET", path: "/v1/secret/app%2Fdb-password", timestamp: "0", nonce: "nonce-01",
			want: "GET:/v1/secret/app%2Fdb-password:0:nonce-01:" + emptyBodyHash,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendCanonical(nil, []byte(tt.method), []byte(tt.path),
				[]byte(tt.timestamp), []byte(tt.nonce), []byte(tt.body))
			if string(got) != tt.want {
				t.Errorf("AppendCanonical = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCanonical_NilAndEmptyBodyHashAlike(t *testing.T) {
	withNil := AppendCanonical(nil, []byte("GET"), []byte("/"), []byte("1"), []byte("nonce-01"), nil)
	withEmpty := AppendCanonical(nil, []byte("GET"), []byte("/"), []byte("1"), []byte("nonce-01"), []byte{})
	if string(withNil) != string(withEmpty) {
		t.Errorf("nil body %q differs from empty body %q", withNil, withEmpty)
	}
	if !strings.HasSuffix(string(withNil), ":"+emptyBodyHash) {
		t.Errorf("empty body hash missing: %q", withNil)
	}
}

func TestCanonical_AppendsToDst(t *testing.T) {
	dst := []byte("prefix|")
	got := AppendCanonical(dst, []byte("GET"), []byte("/"), []byte("1"), []byte("nonce-01"), nil)
	if !strings.HasPrefix(string(got), "prefix|GET:/:1:nonce-01:") {
		t.Errorf("AppendCanonical did not append to dst: %q", got)
	}
}

func TestCanonical_NoAllocationWithReusedBuffer(t *testing.T) {
	dst := make([]byte, 0, 512)
	method, path := []byte("GET"), []byte("/v1/secret/sk_0123456789")
	timestamp, nonce := []byte("1767225600"), []byte("3f9a1c2e7b4d4e10")
	body := []byte(`{"projectId":"proj_0123456789"}`)

	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendCanonical(dst[:0], method, path, timestamp, nonce, body)
	})
	if allocs != 0 {
		t.Errorf("AppendCanonical allocated %.1f times per call, want 0", allocs)
	}
}

func TestCheckPath_Table(t *testing.T) {
	tests := []struct {
		name string
		path string
		ok   bool
	}{
		{"root", "/", true},
		{"secret", "/v1/secret/sk_0123456789", true},
		{"encoded slash upper hex", "/v1/secrets/app%2Fdb-password", true},
		{"encoded slash lower hex", "/v1/secrets/app%2fdb-password", true},
		{"double encoded stays raw", "/v1/secrets/app%252Fdb-password", true},
		{"trailing slash", "/v1/secrets/", true},
		{"dot inside segment", "/v1/secret/a.b", true},
		{"three dots", "/v1/secret/...", true},
		{"dotfile name", "/v1/secret/.env", true},
		{"colon in path", "/v1/secret/a:b", true},

		{"empty", "", false},
		{"relative", "v1/secrets", false},
		{"absolute URI", "http://example.test/v1/secrets", false},
		{"query", "/v1/secrets?q=x", false},
		{"empty query", "/v1/secrets?", false},
		{"fragment", "/v1/secrets#x", false},
		{"double slash", "/v1/secrets//app", false},
		{"leading double slash", "//v1/secrets", false},
		{"only double slash", "//", false},
		{"dot segment", "/v1/secrets/./app", false},
		{"dot dot segment", "/v1/secrets/../app", false},
		{"trailing dot", "/v1/secrets/.", false},
		{"trailing dot dot", "/v1/secrets/..", false},
		{"only dot", "/.", false},
		{"encoded dot segment", "/v1/secrets/%2e/app", false},
		{"encoded dot dot upper", "/v1/%2E%2E/admin", false},
		{"mixed encoded dot dot", "/v1/.%2e/admin", false},
		{"bad percent escape", "/v1/secret/a%zz", false},
		{"truncated percent escape", "/v1/secret/a%2", false},
		{"space", "/v1/secret/a b", false},
		{"tab", "/v1/secret/a\tb", false},
		{"NUL", "/v1/secret/a\x00b", false},
		{"DEL", "/v1/secret/a\x7fb", false},
		{"non-ASCII", "/v1/secret/\xc3\xa6", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPath([]byte(tt.path))
			if tt.ok && err != nil {
				t.Errorf("CheckPath(%q) = %v, want nil", tt.path, err)
			}
			if !tt.ok && !errors.Is(err, ErrBadPath) {
				t.Errorf("CheckPath(%q) = %v, want ErrBadPath", tt.path, err)
			}
		})
	}
}

func TestCheckPath_ErrorNamesPath(t *testing.T) {
	err := CheckPath([]byte("/v1/secrets?q=x"))
	if err == nil || !strings.Contains(err.Error(), "/v1/secrets?q=x") {
		t.Errorf("error %v does not name the path", err)
	}
}

func FuzzCheckPath(f *testing.F) {
	for _, seed := range []string{
		"/", "/v1/secret/sk_0123456789", "/v1/secrets?q=x", "//", "/./", "/a/../b",
		"/%2e%2E/", "/a%2", "/a%zz", "", "a", "/a/", "/\x00", "/\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, path []byte) {
		err := CheckPath(path)
		if err != nil && !errors.Is(err, ErrBadPath) {
			t.Fatalf("CheckPath(%q) returned %v, not ErrBadPath", path, err)
		}
		if err != nil {
			return
		}
		// An accepted path starts with '/', has no query, no empty interior
		// segment and no dot segment.
		s := string(path)
		if s[0] != '/' || strings.ContainsAny(s, "?# ") || strings.Contains(s, "//") {
			t.Fatalf("CheckPath accepted %q", path)
		}
		for _, segment := range strings.Split(s, "/") {
			decoded := strings.ReplaceAll(strings.ToLower(segment), "%2e", ".")
			if decoded == "." || decoded == ".." {
				t.Fatalf("CheckPath accepted dot segment in %q", path)
			}
		}
	})
}

func BenchmarkAppendCanonical(b *testing.B) {
	dst := make([]byte, 0, 512)
	method, path := []byte("GET"), []byte("/v1/secret/sk_0123456789")
	timestamp, nonce := []byte("1767225600"), []byte("3f9a1c2e7b4d4e10")
	body := []byte(`{"projectId":"proj_0123456789"}`)

	b.ReportAllocs()
	for b.Loop() {
		dst = AppendCanonical(dst[:0], method, path, timestamp, nonce, body)
	}
}

func TestCanonicalDigest_MatchesAppendCanonical(t *testing.T) {
	for _, body := range [][]byte{nil, []byte(`{"projectId":"proj_0123456789"}`)} {
		sum := sha256.Sum256(body)
		want := AppendCanonical(nil, []byte("POST"), []byte("/v1/secrets/list"), []byte("1767225600"), []byte("3f9a1c2e7b4d4e10"), body)
		got := AppendCanonicalDigest(nil, []byte("POST"), "/v1/secrets/list", "1767225600", "3f9a1c2e7b4d4e10", sum[:])
		if string(got) != string(want) {
			t.Errorf("AppendCanonicalDigest = %q, want %q", got, want)
		}
	}
}

func TestCanonicalDigest_NoAllocationWithReusedBuffer(t *testing.T) {
	dst := make([]byte, 0, 512)
	sum := sha256.Sum256(nil)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendCanonicalDigest(dst[:0], []byte("GET"), "/v1/secret/sk_0123456789", "1767225600", "3f9a1c2e7b4d4e10", sum[:])
	})
	if allocs != 0 {
		t.Errorf("AppendCanonicalDigest allocated %.1f times, want 0", allocs)
	}
}
