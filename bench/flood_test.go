package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCounterValue_ReadsTheTextFormat(t *testing.T) {
	text := []byte(`# HELP keyward_guardrail_throttled_total Guardrail-blocked requests answered before signature verification.
# TYPE keyward_guardrail_throttled_total counter
keyward_guardrail_throttled_total 41873
keyward_guardrail_throttled_total_other 5
keyward_http_requests_total{code="403",plane="machine"} 9
keyward_http_requests_total{code="200",plane="machine"} 1e+03
`)
	cases := []struct {
		name  string
		want  float64
		found bool
	}{
		{"keyward_guardrail_throttled_total", 41873, true},
		{"keyward_http_requests_total", 1009, true},
		{"keyward_guardrail_throttled", 0, false},
		{"keyward_missing_total", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, found, err := counterValue(text, c.name)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want || found != c.found {
				t.Errorf("counterValue(%s) = %v, %v; want %v, %v", c.name, got, found, c.want, c.found)
			}
		})
	}
}

func TestCounterValue_RejectsABadSample(t *testing.T) {
	if _, _, err := counterValue([]byte("keyward_x_total abc\n"), "keyward_x_total"); err == nil {
		t.Fatal("a sample without a number was accepted")
	}
}

func TestFloodResult_RatiosAndShare(t *testing.T) {
	alone := LoadRun{Latency: Latency{P50: 1, P99: 2, P999: 4}}
	under := LoadRun{Latency: Latency{P50: 1.5, P99: 5, P999: 20}}
	flood := LoadRun{Mode: modeOpen, Connections: 64, PerSecond: 5000}
	cfg := DefaultConfig()
	cfg.FloodRate = 5000

	res := newFloodResult(1000, cfg, alone, under, flood)
	if res.P50Ratio != 1.5 || res.P99Ratio != 2.5 || res.P999Ratio != 5 {
		t.Errorf("ratios p50 %v p99 %v p99.9 %v, want 1.5, 2.5, 5", res.P50Ratio, res.P99Ratio, res.P999Ratio)
	}
	if res.FloodMode != modeOpen || res.FloodTargetRate != 5000 {
		t.Errorf("flood mode %q at %v, want open at 5000", res.FloodMode, res.FloodTargetRate)
	}

	throttled, share := 4900.0, 0.98
	res.ThrottledPerSecond, res.ThrottledShare = &throttled, &share
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"p999Ratio":5`, `"floodMode":"open"`, `"throttledPerSecond":4900`, `"throttledShare":0.98`} {
		if !bytes.Contains(data, []byte(field)) {
			t.Errorf("JSON %s lacks %s", data, field)
		}
	}

	rep := &Report{Flood: res}
	var out bytes.Buffer
	rep.writeFlood(&out)
	for _, want := range []string{"open loop at 5,000/s", "p99.9 20.0 ms", "p99 2.50", "4,900/s (98% of blocked)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFloodResult_NoBaselineNoRatio(t *testing.T) {
	res := newFloodResult(1000, DefaultConfig(), LoadRun{}, LoadRun{Latency: Latency{P99: 3}}, LoadRun{Mode: modeClosed})
	if res.P99Ratio != 0 {
		t.Fatalf("p99 ratio %v without a baseline, want 0", res.P99Ratio)
	}
}

func TestConfig_RejectsNegativeFloodRate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Scenario = ScenarioFlood
	cfg.Binary = "keyward"
	cfg.FloodRate = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--flood-rate") {
		t.Fatalf("Validate() = %v, want an error naming --flood-rate", err)
	}
}

// TestEndToEnd_OpenLoopFloodIsThrottled runs the flood scenario open-loop
// against a local node, whose block throttle is on by default. Most of the
// flood is rejected before verification, and the report shows that share.
func TestEndToEnd_OpenLoopFloodIsThrottled(t *testing.T) {
	cfg := shortConfig(t, ScenarioFlood)
	cfg.Duration = time.Second
	cfg.FloodRate = 2000
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := rep.Flood
	if res.FloodMode != modeOpen || res.FloodTargetRate != 2000 {
		t.Errorf("flood mode %q at %v, want open at 2000", res.FloodMode, res.FloodTargetRate)
	}
	if res.BlockedPerSecond <= 0 {
		t.Fatalf("blocked requests per second = %v, want positive", res.BlockedPerSecond)
	}
	if res.ThrottledPerSecond == nil || res.ThrottledShare == nil {
		t.Fatal("the report has no throttled rate; the node's metric was not read")
	}
	if *res.ThrottledShare < 0.5 {
		t.Errorf("%.0f%% of the flood was rejected before verification, want most of it", 100**res.ThrottledShare)
	}
	if len(res.NormalErrorsFlood) != 0 {
		t.Errorf("normal reads failed under the flood: %v", res.NormalErrorsFlood)
	}
	requireStopped(t, rep.Target.Nodes[0])
}
