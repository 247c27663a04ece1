package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// warnCounter is a slog handler that counts warnings whose message
// contains a substring.
type warnCounter struct {
	substring string

	mu    sync.Mutex
	count int
}

func (h *warnCounter) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}

func (h *warnCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substring) {
		h.mu.Lock()
		h.count++
		h.mu.Unlock()
	}
	return nil
}

func (h *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *warnCounter) WithGroup(string) slog.Handler      { return h }

func (h *warnCounter) value() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func TestClientIP_UntrustedForwardedLoggedOnce(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	counter := &warnCounter{substring: "X-Forwarded-For"}
	cfg := DefaultConfig()
	cfg.Now = e.clock.Now
	srv, err := New(cfg, e.node, e.sm, e.keyring, nil, slog.New(counter))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &fasthttp.Server{Handler: srv.Handler(), ErrorHandler: srv.TransportErrorHandler()}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Shutdown() })
	own := &testEnv{addr: ln.Addr().String(), clock: e.clock}

	for range 3 {
		h := m.signedHeaders("GET", "/v1/secret/"+f.secret, nil, e.clock.Now().Unix())
		h = append(h, header{"X-Forwarded-For", "203.0.113.7"})
		expectStatus(t, own.mustSend(t, defaultSource, "GET", "/v1/secret/"+f.secret, h, nil), http.StatusOK)
	}
	if got := counter.value(); got != 1 {
		t.Errorf("untrusted X-Forwarded-For warning logged %d times, want once", got)
	}
}
