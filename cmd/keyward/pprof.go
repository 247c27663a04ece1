package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// checkPprofAddr accepts an empty --pprof-addr (profiling off) or a
// loopback host and port. Profiles show request paths, timings and memory
// contents such as ids, so they are never served beyond the host.
func (o *serverOptions) checkPprofAddr() error {
	if o.pprofAddr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(o.pprofAddr)
	if err != nil {
		return fmt.Errorf("invalid --pprof-addr %q: %v; use a loopback address and port such as 127.0.0.1:6060", o.pprofAddr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("invalid --pprof-addr %q: the port must be a number from 1 to 65535, such as 127.0.0.1:6060", o.pprofAddr)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("invalid --pprof-addr %q: the host must be a loopback IP address such as 127.0.0.1 or ::1, because profiles expose request data; reach a remote node's profiles through an SSH tunnel", o.pprofAddr)
	}
	return nil
}

// startPprof serves Go's runtime profiles on addr until the returned
// function is called. It binds before returning, so a taken port fails
// the start.
func startPprof(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --pprof-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("profiling server stopped", "addr", addr, "error", err)
		}
	}()
	logger.Info("serving runtime profiles", "pprof_addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
