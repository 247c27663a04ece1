package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// sampleReport returns a report with every scenario section filled, as a
// run of each would produce.
func sampleReport() *Report {
	lat := func(p50 float64) Latency {
		return Latency{Count: 100, Mean: p50, P50: p50, P90: 2 * p50, P99: 3 * p50, P999: 4 * p50, Max: 5 * p50}
	}
	rep := newReport(Config{Scenario: ScenarioReads, Command: "keyward bench reads --duration 1s"}, time.Unix(1_800_000_000, 0))
	rep.Placement = &Placement{NodeCPUs: []int{1}, LoadCPUs: []int{0}}
	rep.Floor = Floor{Cores: 1, CPUs: []int{1}, StdlibVerifyMicros: 50, VoiVerifyMicros: 35, VoiExpandedVerifyMicros: 25, VoiBatchVerifyMicros: 15, VerifyFloorPerSecond: 80_000, FsyncMedianMs: 0.3, FsyncDir: "/tmp"}
	rep.VerifyFloorPerSecond = 80_000
	rep.ReadsPerSecond = 20_000
	rep.RatioToVerifyFloor = 0.25
	rep.Runs = []LoadRun{
		{Name: "reads 1 node", Mode: modeClosed, Nodes: 1, Connections: 64, Seconds: 1, Requests: 20_000, Succeeded: 20_000, PerSecond: 20_000, Latency: lat(1), Errors: map[string]int64{}},
		{Name: "reads at 50% of max", Mode: modeOpen, Nodes: 1, Connections: 64, TargetRate: 10_000, Seconds: 1, Requests: 10_000, Succeeded: 9_990, PerSecond: 9_990, Latency: lat(0.5), Errors: map[string]int64{"503": 10}},
	}
	rep.Reads = &ReadsResult{
		Machines: 10, Presigned: true,
		Nodes: []NodeScaling{{Nodes: 1, ReadsPerSecond: 20_000, RatioToLinear: 1}, {Nodes: 2, ReadsPerSecond: 36_000, RatioToLinear: 0.9}},
		Sweep: []SweepPoint{newSweepPoint(0.5, 10_000, rep.Runs[1])},
	}
	rep.Writes = &WritesResult{Levels: []WriteLevel{{Writers: 1, WritesPerSecond: 300, Latency: lat(3)}, {Writers: 64, WritesPerSecond: 6000, Latency: lat(10)}}, RatioMaxWritersToOne: 20, LoneWriteP50Ms: 3, RoundTripP50Ms: 0.2, RatioToFsync: 10}
	rep.Flood = &FloodResult{NormalRate: 1000, Baseline: lat(1), UnderFlood: lat(2), P99Ratio: 2, BlockedPerSecond: 5000}
	rep.Scale = &ScaleResult{Sizes: []ScalePoint{
		{Machines: 1000, BytesPerMachine: 3000, ReopenBytesPerMachine: 2500, SnapshotSeconds: 0.01, RestoreSeconds: 0.02, ReopenSeconds: 0.05},
		{Machines: 100_000, BytesPerMachine: 1500, ReopenBytesPerMachine: 1200, SnapshotSeconds: 0.5, RestoreSeconds: 1, ReopenSeconds: 0.8},
	}, RatioReopenLargestToSmallest: 16}
	return rep
}

func TestReport_JSONFields(t *testing.T) {
	data, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}

	for _, field := range []string{"scenario", "command", "startedAt", "host", "placement", "floor", "readsPerSecond", "verifyFloorPerSecond", "ratioToVerifyFloor", "reads", "writes", "flood", "scale", "runs"} {
		t.Run(field, func(t *testing.T) {
			if _, ok := doc[field]; !ok {
				t.Errorf("report JSON has no field %q: %s", field, data)
			}
		})
	}

	run := doc["runs"].([]any)[1].(map[string]any)
	for _, field := range []string{"name", "mode", "connections", "targetRate", "seconds", "requests", "succeeded", "perSecond", "latencyMs", "errors"} {
		if _, ok := run[field]; !ok {
			t.Errorf("run JSON has no field %q: %v", field, run)
		}
	}
	latency := run["latencyMs"].(map[string]any)
	for _, field := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := latency[field]; !ok {
			t.Errorf("latency JSON has no field %q: %v", field, latency)
		}
	}
	placement := doc["placement"].(map[string]any)
	for _, field := range []string{"nodeCpus", "loadCpus"} {
		if _, ok := placement[field]; !ok {
			t.Errorf("placement JSON has no field %q: %v", field, placement)
		}
	}
	floor := doc["floor"].(map[string]any)
	for _, field := range []string{"cores", "cpus", "stdlibVerifyMicros", "voiVerifyMicros", "voiExpandedVerifyMicros", "verifyFloorPerSecond", "fsyncMedianMs"} {
		if _, ok := floor[field]; !ok {
			t.Errorf("floor JSON has no field %q: %v", field, floor)
		}
	}
}

func TestReport_OmitsOtherScenarios(t *testing.T) {
	rep := newReport(Config{Scenario: ScenarioWrites}, time.Now())
	rep.Writes = &WritesResult{}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"reads"`, `"flood"`, `"scale"`, `"readsPerSecond"`, `"ratioToVerifyFloor"`} {
		if bytes.Contains(data, []byte(field)) {
			t.Errorf("writes report contains %s: %s", field, data)
		}
	}
	if !bytes.Contains(data, []byte(`"verifyFloorPerSecond"`)) {
		t.Errorf("report lacks verifyFloorPerSecond, which every scenario measures: %s", data)
	}
}

func TestReport_TextTable(t *testing.T) {
	var out bytes.Buffer
	if err := sampleReport().WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"keyward bench reads", "reads 1 node", "reads at 50% of max", "readsPerSecond", "20,000",
		"verifyFloorPerSecond", "80,000", "ratioToVerifyFloor", "0.25", "503×10", "reads on 2 nodes",
		"p99/p50 3.00", "ratioToFsync", "under flood", "ratioReopenLargestToSmallest",
		"nodes on CPUs 1 (GOMAXPROCS 1), load generator on CPUs 0 (GOMAXPROCS 1)",
		"one core of the nodes' CPUs 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}

func TestReport_TextSharedPlacement(t *testing.T) {
	rep := sampleReport()
	rep.Placement = &Placement{NodeCPUs: []int{0, 1}, LoadCPUs: []int{0, 1}}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if want := "nodes and load generator share CPUs 0-1"; !strings.Contains(out.String(), want) {
		t.Errorf("text report lacks %q:\n%s", want, out.String())
	}
}

func TestReport_Count(t *testing.T) {
	cases := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {71383.4, "71,383"}, {1_234_567, "1,234,567"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if got := count(c.in); got != c.want {
				t.Errorf("count(%v) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
