package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestScale_BuildsAndMeasuresStates(t *testing.T) {
	testScaleSetup(t, ScaleSetupStandard, func(machines int) int {
		// Three base entries, then five per machine.
		return 3 + 5*machines
	})
}

func TestScale_EnrollmentSetup(t *testing.T) {
	testScaleSetup(t, ScaleSetupEnrollment, func(machines int) int {
		// Three base entries, one per enrollment token, one per machine.
		tokens := (machines + scaleEnrollmentUses - 1) / scaleEnrollmentUses
		return 3 + tokens + machines
	})
}

// testScaleSetup runs the scale scenario with setup on 50 and 600 machines
// and checks every figure. wantEntries returns the log entries a state of
// n machines takes.
func testScaleSetup(t *testing.T, setup string, wantEntries func(n int) int) {
	cfg := DefaultConfig()
	cfg.Scenario = ScenarioScale
	cfg.ScaleMachines = []int{50, 600}
	cfg.ScaleSetup = setup
	cfg.WorkDir = t.TempDir()
	r := &runner{cfg: cfg, report: newReport(cfg, time.Now())}

	if err := r.runScale(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := r.report.Scale
	if res.Setup != setup {
		t.Errorf("setup = %q, want %q", res.Setup, setup)
	}
	if len(res.Sizes) != 2 {
		t.Fatalf("%d sizes measured, want 2", len(res.Sizes))
	}
	for _, p := range res.Sizes {
		t.Run("machines "+strconv.Itoa(p.Machines), func(t *testing.T) {
			if want := wantEntries(p.Machines); p.Entries != want {
				t.Errorf("entries = %d, want %d", p.Entries, want)
			}
			positive := map[string]float64{
				"applyEntriesPerSecond": p.ApplyEntriesPerSecond,
				"heapInUseBytes":        float64(p.HeapInUseBytes),
				"snapshotBytes":         float64(p.SnapshotBytes),
				"snapshotSeconds":       p.SnapshotSeconds,
				"restoreSeconds":        p.RestoreSeconds,
				"reopenSeconds":         p.ReopenSeconds,
			}
			for name, v := range positive {
				if v <= 0 {
					t.Errorf("%s = %v, want positive", name, v)
				}
			}
		})
	}
	if res.Sizes[1].SnapshotBytes <= res.Sizes[0].SnapshotBytes {
		t.Errorf("snapshot of 600 machines (%d bytes) is not larger than of 50 (%d bytes)", res.Sizes[1].SnapshotBytes, res.Sizes[0].SnapshotBytes)
	}
	if res.RatioReopenLargestToSmallest <= 0 {
		t.Errorf("ratioReopenLargestToSmallest = %v, want positive", res.RatioReopenLargestToSmallest)
	}
	entries, err := os.ReadDir(cfg.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("scale left %d entries in the work folder", len(entries))
	}
}
