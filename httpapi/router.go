package httpapi

import (
	"bytes"
	mathrand "math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/cluster"
	"github.com/keyward/keyward/guard"
)

// plane is the part of the API a route belongs to. It decides the error
// body (machine clients parse exactly {"error"}) and the metric label.
type plane int

const (
	planeMachine plane = iota
	planeRegistration
	planeAdmin
)

func (p plane) String() string {
	switch p {
	case planeMachine:
		return "machine"
	case planeRegistration:
		return "registration"
	}
	return "admin"
}

// planeOfPath guesses the plane of a request that matched no route, or that
// fasthttp could not read, from its request-target.
func planeOfPath(uri []byte) plane {
	path, _, _ := bytes.Cut(uri, []byte("?"))
	switch {
	case bytes.HasPrefix(path, []byte("/v1/admin/")), bytes.HasPrefix(path, []byte("/v1/sys/")),
		bytes.Equal(path, []byte("/metrics")):
		return planeAdmin
	case bytes.Contains(path, []byte("/bootstrap/")), bytes.Contains(path, []byte("/temp-bootstrap/")):
		return planeRegistration
	}
	return planeMachine
}

// maxParams is the largest number of path parameters in one route; a test
// checks every route against it.
const maxParams = 4

// request is the state of one request while its handler runs. It must not
// be kept after the handler returns, because ctx is reused by fasthttp and
// the value itself is reused for a later request (requestPool).
type request struct {
	ctx *fasthttp.RequestCtx
	id  string
	now time.Time
	// ids generates request ids. It stays with the pooled value.
	ids *mathrand.ChaCha8

	// path is a copy of the raw request path (before '?'); hasQuery is
	// whether a query followed it.
	path     string
	hasQuery bool

	plane  plane
	route  *route
	params [maxParams]string

	// client and proxy are the resolved addresses (see clientAddress).
	client, proxy netip.Addr
	resolved      bool

	// bodyHash is the hex SHA-256 of the body, set on the machine plane.
	bodyHash string

	// signed is set once a machine-plane request reaches the signature
	// checks; result overrides the metric result derived from the status.
	signed bool
	result string

	// confirmation is set by a security-critical write, for its response.
	confirmation *cluster.Confirmation

	// signedBytes is room for the bytes a machine signed, so that building
	// them allocates nothing. A longer message grows onto the heap.
	signedBytes [512]byte
}

// routeName returns the matched route pattern, for logs.
func (rc *request) routeName() string {
	if rc.route == nil {
		return "(none)"
	}
	return rc.route.method + " " + rc.route.pattern
}

// param returns the path parameter called name, "" when the route has none.
func (rc *request) param(name string) string {
	if rc.route == nil {
		return ""
	}
	for i, p := range rc.route.params {
		if p == name {
			return rc.params[i]
		}
	}
	return ""
}

// route is one method and path pattern. A pattern segment "{name}" matches
// any one non-empty raw segment; nothing is percent-decoded.
type route struct {
	method   string
	pattern  string
	plane    plane
	segments []string
	// params names the parameters in order of appearance.
	params []string
	handle func(rc *request) error
}

func newRoute(method, pattern string, p plane, handle func(*request) error) *route {
	r := &route{method: method, pattern: pattern, plane: p, handle: handle}
	r.segments = strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	for _, seg := range r.segments {
		if strings.HasPrefix(seg, "{") {
			r.params = append(r.params, strings.Trim(seg, "{}"))
		}
	}
	return r
}

// match fills params and reports whether the path segments fit the pattern.
func (r *route) match(segments []string, params *[maxParams]string) bool {
	if len(segments) != len(r.segments) {
		return false
	}
	n := 0
	for i, want := range r.segments {
		got := segments[i]
		if strings.HasPrefix(want, "{") {
			if got == "" {
				return false
			}
			params[n] = got
			n++
			continue
		}
		if got != want {
			return false
		}
	}
	return true
}

// dispatch checks the path, finds the route and runs its handler.
//
// The path is taken from the raw request-target, exactly as the client sent
// it: the same bytes are verified on the machine plane and routed here.
// fasthttp's ctx.Path() is not used because it decodes and normalises.
func (s *Server) dispatch(rc *request) error {
	uri := rc.ctx.Request.Header.RequestURI()
	rawPath, _, hasQuery := bytes.Cut(uri, []byte("?"))
	rc.path = string(rawPath) // copy: uri is a fasthttp buffer
	rc.hasQuery = hasQuery
	rc.plane = planeOfPath(rawPath)

	if err := guard.CheckPath(rawPath); err != nil {
		return err
	}

	var buf [maxPathSegments]string
	segments, ok := splitPath(rc.path, buf[:0])
	if !ok {
		return fail(ErrNotFound, "Not found")
	}
	method := rc.ctx.Method()
	var allowed []string
	for _, r := range s.routes {
		var params [maxParams]string
		if !r.match(segments, &params) {
			continue
		}
		if r.method != string(method) {
			allowed = append(allowed, r.method)
			continue
		}
		rc.route, rc.params, rc.plane = r, params, r.plane
		return r.handle(rc)
	}

	if len(allowed) > 0 {
		sort.Strings(allowed)
		rc.ctx.Response.Header.Set("Allow", strings.Join(allowed, ", "))
		return fail(ErrMethodNotAllowed, "Method %s is not allowed here; use %s", clip(string(method)), strings.Join(allowed, " or "))
	}
	return fail(ErrNotFound, "Not found")
}

// maxPathSegments is the maximum number of segments of a routed path. A
// test checks that every route has fewer, and a longer path matches no
// route.
const maxPathSegments = 16

// splitPath splits path, which starts with '/', into its segments as
// strings.Split(path[1:], "/") would, appending substrings of path to dst
// so that nothing is allocated. It returns false when path has more than
// maxPathSegments segments.
func splitPath(path string, dst []string) ([]string, bool) {
	rest := path[1:]
	for {
		if len(dst) == maxPathSegments {
			return dst, false
		}
		segment, after, found := strings.Cut(rest, "/")
		dst = append(dst, segment)
		if !found {
			return dst, true
		}
		rest = after
	}
}

// clip shortens client-supplied text for a message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// clientAddress resolves and caches the client and proxy addresses of rc:
// the TCP peer, or the right-most untrusted X-Forwarded-For entry when the
// peer is a trusted proxy.
func (s *Server) clientAddress(rc *request) (client, proxy netip.Addr) {
	if rc.resolved {
		return rc.client, rc.proxy
	}

	peer := peerAddr(rc.ctx)
	// PeekAll returns a slice that fasthttp reuses on the next PeekAll call;
	// ResolveClientIP reads it before any other header is peeked.
	xff := rc.ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor)
	client, proxy, untrusted := guard.ResolveClientIP(peer, xff, s.cfg.TrustedProxies)
	if untrusted && s.untrustedForwardLogged.CompareAndSwap(false, true) {
		s.logger.Warn("X-Forwarded-For received from an untrusted peer and ignored; add the proxy to the trusted proxies if it is one",
			"peer", peer.String())
	}

	rc.client, rc.proxy, rc.resolved = client, proxy, true
	return client, proxy
}

// peerAddr returns the TCP peer address with IPv4-mapped IPv6 unmapped.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	addr, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return netip.Addr{}
	}
	return addr.Unmap()
}

// addrText formats an address for audit events; an invalid address is
// "unknown".
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}
