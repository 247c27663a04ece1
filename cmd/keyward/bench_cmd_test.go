package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestBench_UsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no scenario", []string{"bench"}, "needs a subcommand"},
		{"unknown scenario", []string{"bench", "reeds"}, "did you mean reads"},
		{"no connections", []string{"bench", "reads", "--connections", "0"}, "--connections"},
		{"sweep not a number", []string{"bench", "reads", "--sweep", "half"}, "not a number"},
		{"sweep above one", []string{"bench", "reads", "--sweep", "1.5"}, "--sweep"},
		{"target without token", []string{"bench", "reads", "--target", "http://127.0.0.1:1"}, "--token-file"},
		{"positional argument", []string{"bench", "reads", "extra"}, "no arguments"},
		{"node cpus invalid", []string{"bench", "reads", "--node-cpus", "0-x"}, `--node-cpus: invalid CPU list "0-x"`},
		{"load cpus reversed range", []string{"bench", "reads", "--load-cpus", "3-1"}, `"3-1"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := cliRun(t, nil, "", c.args...)
			assertCode(t, r, exitUsage)
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, c.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing on a usage error", r.stdout)
			}
		})
	}
}

// TestBench_ReadsPrintsOneJSONReport runs the real binary, which starts
// its own dev node, and checks that stdout holds exactly one JSON report.
func TestBench_ReadsPrintsOneJSONReport(t *testing.T) {
	bin := keywardBinary(t)
	cmd := exec.Command(bin, "bench", "reads", "--duration", "1s", "--output", "json",
		"--machines", "3", "--connections", "4", "--sweep", "", "--floor-time", "40ms")
	cmd.Env = withoutKeywardEnv(os.Environ())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("keyward bench reads: %v\nstderr: %s", err, stderr.String())
	}

	dec := json.NewDecoder(&stdout)
	var report map[string]any
	if err := dec.Decode(&report); err != nil {
		t.Fatalf("stdout is not a JSON document: %v", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Errorf("stdout holds more than one JSON document (next: %v, %v)", extra, err)
	}
	for _, field := range []string{"readsPerSecond", "verifyFloorPerSecond", "ratioToVerifyFloor"} {
		if v, ok := report[field].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", field, report[field])
		}
	}
	if report["scenario"] != "reads" {
		t.Errorf("scenario = %v, want reads", report["scenario"])
	}
	// stderr is not a terminal here, so JSON mode prints no progress.
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}
}

func withoutKeywardEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			out = append(out, kv)
		}
	}
	return out
}
