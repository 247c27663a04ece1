package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/fsm"
)

// validServerFlags returns the defaults of keyward server.
func validServerFlags() serverOptions {
	return serverOptions{
		timestampWindow: 300 * time.Second,
		voters:          3,
		deadNodeTimeout: 10 * time.Minute,
		maxStaleness:    5 * time.Second,
		maxClockSkew:    5 * time.Second,
		machineCache:    fsm.DefaultMachineCacheEntries,
	}
}

func TestServerFlags_RejectOutOfRange(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(o *serverOptions)
		wants []string
	}{
		{"timestamp window zero", func(o *serverOptions) { o.timestampWindow = 0 }, []string{"--timestamp-window 0s", "1s to 1h0m0s"}},
		{"timestamp window below 1s", func(o *serverOptions) { o.timestampWindow = 500 * time.Millisecond }, []string{"--timestamp-window 500ms"}},
		{"timestamp window over 1h", func(o *serverOptions) { o.timestampWindow = 2 * time.Hour }, []string{"--timestamp-window 2h0m0s"}},
		{"two voters", func(o *serverOptions) { o.voters = 2 }, []string{"--voters 2", "odd number from 1 to 7", "adds no fault tolerance", "survive 0 failures, no more than 1 voter"}},
		{"four voters", func(o *serverOptions) { o.voters = 4 }, []string{"--voters 4", "need 3 for a quorum", "survive 1 failure, no more than 3 voters"}},
		{"nine voters", func(o *serverOptions) { o.voters = 9 }, []string{"--voters 9", "from 1 to 7"}},
		{"zero voters", func(o *serverOptions) { o.voters = 0 }, []string{"--voters 0", "from 1 to 7"}},
		{"dead node timeout 1ms", func(o *serverOptions) { o.deadNodeTimeout = time.Millisecond }, []string{"--dead-node-timeout 1ms", "at least 1m0s", "while it restarts"}},
		{"dead node timeout negative", func(o *serverOptions) { o.deadNodeTimeout = -time.Minute }, []string{"--dead-node-timeout -1m0s"}},
		{"max staleness zero", func(o *serverOptions) { o.maxStaleness = 0 }, []string{"--max-staleness 0s", "positive"}},
		{"negative clock skew", func(o *serverOptions) { o.maxClockSkew = -time.Second }, []string{"--max-clock-skew -1s"}},
		{"all IPv4 addresses", func(o *serverOptions) { o.trustedProxies = []string{"0.0.0.0/0"} }, []string{"--trusted-proxies 0.0.0.0/0", "/8", "--allow-broad-trusted-proxies"}},
		{"all IPv6 addresses", func(o *serverOptions) { o.trustedProxies = []string{"10.0.0.0/8", "::/0"} }, []string{"--trusted-proxies ::/0", "/32"}},
		{"IPv4 /7", func(o *serverOptions) { o.trustedProxies = []string{"10.0.0.0/7"} }, []string{"--trusted-proxies 10.0.0.0/7"}},
		{"IPv6 /31", func(o *serverOptions) { o.trustedProxies = []string{"2001:db8::/31"} }, []string{"--trusted-proxies 2001:db8::/31"}},
		{"IPv4-mapped all addresses", func(o *serverOptions) { o.trustedProxies = []string{"::ffff:0.0.0.0/96"} }, []string{"--trusted-proxies 0.0.0.0/0"}},
		{"no machine cache", func(o *serverOptions) { o.machineCache = 0 }, []string{"--machine-cache-entries 0", "1 to 100000000"}},
		{"machine cache past the bound", func(o *serverOptions) { o.machineCache = 1 << 62 }, []string{"--machine-cache-entries 4611686018427387904", "1 to 100000000"}},
		{"profiles on every address", func(o *serverOptions) { o.pprofAddr = "0.0.0.0:6060" }, []string{"--pprof-addr", "0.0.0.0:6060", "loopback"}},
		{"profiles on a host name", func(o *serverOptions) { o.pprofAddr = "localhost:6060" }, []string{"--pprof-addr", "loopback IP"}},
		{"profiles without a port", func(o *serverOptions) { o.pprofAddr = "127.0.0.1" }, []string{"--pprof-addr", "127.0.0.1:6060"}},
		{"profiles on a service name", func(o *serverOptions) { o.pprofAddr = "127.0.0.1:http" }, []string{"--pprof-addr", "number from 1 to 65535"}},
		{"profiles on port 0", func(o *serverOptions) { o.pprofAddr = "127.0.0.1:0" }, []string{"--pprof-addr", "number from 1 to 65535"}},
		{"malformed proxy", func(o *serverOptions) { o.trustedProxies = []string{"proxy"} }, []string{"--trusted-proxies", `"proxy"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := validServerFlags()
			tc.edit(&o)
			var log bytes.Buffer
			err := o.checkFlags(slog.New(slog.NewTextHandler(&log, nil)))
			if err == nil {
				t.Fatal("checkFlags accepted the value")
			}
			text := err.Error() + " " + strings.Join(hintsFor(err, &globalOptions{}, nil), " ")
			for _, want := range tc.wants {
				if !strings.Contains(text, want) {
					t.Errorf("error %q lacks %q", text, want)
				}
			}
		})
	}
}

func TestServerFlags_AcceptInRange(t *testing.T) {
	cases := []struct {
		name string
		edit func(o *serverOptions)
	}{
		{"defaults", func(o *serverOptions) {}},
		{"window bounds", func(o *serverOptions) { o.timestampWindow = time.Second }},
		{"window of an hour", func(o *serverOptions) { o.timestampWindow = time.Hour }},
		{"profiles on IPv4 loopback", func(o *serverOptions) { o.pprofAddr = "127.0.0.1:6060" }},
		{"profiles on IPv6 loopback", func(o *serverOptions) { o.pprofAddr = "[::1]:6060" }},
		{"one voter", func(o *serverOptions) { o.voters = 1 }},
		{"seven voters", func(o *serverOptions) { o.voters = 7 }},
		{"never remove nodes", func(o *serverOptions) { o.deadNodeTimeout = 0 }},
		{"dead node timeout of a minute", func(o *serverOptions) { o.deadNodeTimeout = time.Minute }},
		{"clock skew check off", func(o *serverOptions) { o.maxClockSkew = 0 }},
		{"narrow proxies", func(o *serverOptions) { o.trustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := validServerFlags()
			tc.edit(&o)
			var log bytes.Buffer
			if err := o.checkFlags(slog.New(slog.NewTextHandler(&log, nil))); err != nil {
				t.Fatalf("checkFlags: %v", err)
			}
			if log.Len() != 0 {
				t.Errorf("checkFlags logged %q for values in range", log.String())
			}
		})
	}
}

func TestServerFlags_BroadProxiesWarn(t *testing.T) {
	o := validServerFlags()
	o.trustedProxies = []string{"0.0.0.0/0", "::/0", "10.0.0.0/8"}
	o.allowBroadTrustedProxies = true
	var log bytes.Buffer
	if err := o.checkFlags(slog.New(slog.NewTextHandler(&log, nil))); err != nil {
		t.Fatalf("checkFlags with --allow-broad-trusted-proxies: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("logged %d lines, want one warning per broad prefix:\n%s", len(lines), log.String())
	}
	for i, prefix := range []string{"0.0.0.0/0", "::/0"} {
		if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], "prefix="+prefix) {
			t.Errorf("log line %q, want a WARN naming %s", lines[i], prefix)
		}
	}
}

func TestCLI_ServerRejectsFlagsBeforeStart(t *testing.T) {
	cases := map[string][]string{
		"voters":           {"--voters", "2"},
		"timestamp-window": {"--timestamp-window", "0s"},
		"dead-node":        {"--dead-node-timeout", "1ms"},
		"trusted-proxies":  {"--trusted-proxies", "0.0.0.0/0"},
	}
	for name, flags := range cases {
		t.Run(name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"server", "--dev", "--data-dir", dataDir,
				"--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}, flags...)
			// The time limit stops a server that started despite the flag.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
			if code != exitError {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitError, stderr.String())
			}
			if !strings.Contains(stderr.String(), "keyward: error: invalid "+flags[0]+" "+flags[1]) {
				t.Errorf("stderr %q does not name %s %s", stderr.String(), flags[0], flags[1])
			}
			if _, err := os.Stat(dataDir); err == nil {
				t.Errorf("the data dir was created before the flags were checked")
			}
		})
	}
}
