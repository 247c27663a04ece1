package bench

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// The end-to-end tests run the scenarios against a real keyward node,
// started from a binary built once per test run, as the bench command
// starts it.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary built for the end-to-end tests. With
// affinityHelperEnv set, the test binary is a child process of the CPU
// affinity tests instead.
func TestMain(m *testing.M) {
	if os.Getenv(affinityHelperEnv) != "" {
		runAffinityHelper()
		os.Exit(0)
	}
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func keywardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyward-bench-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "keyward")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/keyward/keyward/cmd/keyward").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build ./cmd/keyward: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// shortConfig returns a configuration that runs a scenario in a few
// seconds against a local node.
func shortConfig(t *testing.T, scenario string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Scenario = scenario
	cfg.Binary = keywardBinary(t)
	cfg.Duration = 300 * time.Millisecond
	cfg.SweepDuration = 200 * time.Millisecond
	cfg.Machines = 3
	cfg.Connections = 4
	cfg.Writers = []int{1, 4}
	cfg.FloorTime = 40 * time.Millisecond
	cfg.WorkDir = t.TempDir()
	cfg.OutDir = t.TempDir()
	return cfg
}

// requireStopped fails unless nothing accepts connections at url any
// more.
func requireStopped(t *testing.T, url string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url + "/v1/sys/health")
	if err == nil {
		resp.Body.Close()
		t.Errorf("local node at %s still answers after the run", url)
	}
}

func TestEndToEnd_ReadsAgainstLocalNode(t *testing.T) {
	cfg := shortConfig(t, ScenarioReads)
	cfg.Duration = time.Second
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	if rep.ReadsPerSecond <= 0 {
		t.Errorf("readsPerSecond = %v, want positive", rep.ReadsPerSecond)
	}
	if rep.VerifyFloorPerSecond <= 0 {
		t.Errorf("verifyFloorPerSecond = %v, want positive", rep.VerifyFloorPerSecond)
	}
	if want := rep.ReadsPerSecond / rep.VerifyFloorPerSecond; rep.RatioToVerifyFloor != want {
		t.Errorf("ratioToVerifyFloor = %v, want readsPerSecond / verifyFloorPerSecond = %v", rep.RatioToVerifyFloor, want)
	}
	if len(rep.Runs) != 2 {
		t.Fatalf("%d runs, want the one-node run and one sweep run", len(rep.Runs))
	}
	for _, run := range rep.Runs {
		if len(run.Errors) != 0 {
			t.Errorf("run %q failed requests: %v", run.Name, run.Errors)
		}
		if run.Presigned == 0 {
			t.Errorf("run %q sent no presigned request", run.Name)
		}
	}
	if len(rep.Plots) != 2 {
		t.Errorf("plots = %v, want reads-latency.svg and reads-nodes.svg", rep.Plots)
	}
	for _, path := range rep.Plots {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		parseSVG(t, data)
	}

	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"readsPerSecond", "verifyFloorPerSecond", "ratioToVerifyFloor"} {
		if v, ok := doc[field].(float64); !ok || v <= 0 {
			t.Errorf("JSON field %s = %v, want a positive number", field, doc[field])
		}
	}
	requirePlacement(t, rep)
	requireStopped(t, rep.Target.Nodes[0])
}

// requirePlacement checks the default placement on Linux: on two or more
// CPUs the node and the load generator get disjoint CPUs, and the floor
// counts the node's.
func requirePlacement(t *testing.T, rep *Report) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	p := rep.Placement
	if p == nil {
		t.Fatal("report has no placement for a local node on Linux")
	}
	if len(p.NodeCPUs) == 0 || len(p.LoadCPUs) == 0 {
		t.Fatalf("placement %+v has an empty side", p)
	}
	if rep.Floor.Cores != len(p.NodeCPUs) {
		t.Errorf("floor cores = %d, want the node's %d CPUs", rep.Floor.Cores, len(p.NodeCPUs))
	}
	if runtime.NumCPU() < 2 {
		return
	}
	for _, cpu := range p.NodeCPUs {
		if slices.Contains(p.LoadCPUs, cpu) {
			t.Errorf("CPU %d is in both the node's %v and the load generator's %v", cpu, p.NodeCPUs, p.LoadCPUs)
		}
	}
	if !slices.Equal(rep.Floor.CPUs, p.NodeCPUs) {
		t.Errorf("floor measured on CPUs %v, want the node's %v", rep.Floor.CPUs, p.NodeCPUs)
	}
}

func TestEndToEnd_OtherScenarios(t *testing.T) {
	cases := []struct {
		scenario string
		check    func(t *testing.T, rep *Report)
	}{
		{ScenarioWrites, func(t *testing.T, rep *Report) {
			if len(rep.Writes.Levels) != 2 || rep.Writes.Levels[0].WritesPerSecond <= 0 {
				t.Errorf("write levels = %+v, want two with a positive rate", rep.Writes.Levels)
			}
			if rep.Writes.RatioToFsync <= 0 || rep.Writes.RatioMaxWritersToOne <= 0 {
				t.Errorf("ratios to fsync %v and to one writer %v, want positive", rep.Writes.RatioToFsync, rep.Writes.RatioMaxWritersToOne)
			}
		}},
		{ScenarioMixed, func(t *testing.T, rep *Report) {
			if rep.Mixed.ReadsPerSecond <= 0 || rep.Mixed.WritesPerSecond <= 0 {
				t.Errorf("mixed rates %+v, want reads and writes", rep.Mixed)
			}
		}},
		{ScenarioFlood, func(t *testing.T, rep *Report) {
			if rep.Flood.BlockedPerSecond <= 0 {
				t.Errorf("blocked requests per second = %v, want positive: the guardrail did not block", rep.Flood.BlockedPerSecond)
			}
			if rep.Flood.Baseline.Count == 0 || rep.Flood.UnderFlood.Count == 0 {
				t.Errorf("normal reads: %d alone and %d under flood, want both", rep.Flood.Baseline.Count, rep.Flood.UnderFlood.Count)
			}
			if len(rep.Flood.NormalErrorsFlood) != 0 {
				t.Errorf("normal reads failed under the flood: %v", rep.Flood.NormalErrorsFlood)
			}
		}},
		{ScenarioRegister, func(t *testing.T, rep *Report) {
			if rep.Register.Machines != 3 || rep.Register.Latency.Count != 3 {
				t.Errorf("register result %+v, want 3 timed registrations", rep.Register)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			rep, err := Run(context.Background(), shortConfig(t, c.scenario))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, rep)
			for _, run := range rep.Runs {
				if run.Succeeded == 0 {
					t.Errorf("run %q had no success: %v", run.Name, run.Errors)
				}
			}
			requireStopped(t, rep.Target.Nodes[0])
		})
	}
}

func TestNode_ChildEnvDropsKeywardVariables(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "KEYWARD_TOKEN=kwt_secret", "HOME=/root", "KEYWARD_DATA_DIR=/x"})
	want := []string{"PATH=/bin", "HOME=/root"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("childEnv = %v, want %v", got, want)
	}
}
