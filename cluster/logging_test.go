package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestLogging_MemberlistLevels(t *testing.T) {
	cases := []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:1", slog.LevelDebug, "memberlist: Stream connection from=127.0.0.1:1"},
		{"[INFO] memberlist: Marking n2 as failed", slog.LevelInfo, "memberlist: Marking n2 as failed"},
		{"[WARN] memberlist: Refuting a suspect message", slog.LevelWarn, "memberlist: Refuting a suspect message"},
		{"[ERR] memberlist: Failed fallback TCP ping", slog.LevelError, "memberlist: Failed fallback TCP ping"},
		{"no level here", slog.LevelInfo, "no level here"},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			level, msg := parseLevelLine(tc.line)
			if level != tc.level || msg != tc.msg {
				t.Errorf("parseLevelLine = %v %q, want %v %q", level, msg, tc.level, tc.msg)
			}
		})
	}
}

func TestLogging_BridgesReachOneHandler(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))

	raftLog := newHCLogAdapter(logger, "raft")
	raftLog.Debug("hidden detail")
	raftLog.Warn("heartbeat failed", "peer", "n2", "backoff", hclog.Fmt("%dms", 10))
	newMemberlistLogger(logger).Printf("[ERR] memberlist: Failed to send ping")

	out := buf.String()
	if strings.Contains(out, "hidden detail") {
		t.Errorf("debug line passed an info handler:\n%s", out)
	}
	for _, want := range []string{
		`level=WARN msg="heartbeat failed" component=raft peer=n2 backoff=10ms`,
		`level=ERROR msg="Failed to send ping" component=memberlist`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	if raftLog.IsDebug() || !raftLog.IsInfo() {
		t.Errorf("IsDebug/IsInfo = %v/%v, want false/true", raftLog.IsDebug(), raftLog.IsInfo())
	}
}
