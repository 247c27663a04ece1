package bench

import (
	"os"
	"testing"
	"time"
)

func TestFloor_MeasuresEveryVerifierAndFsync(t *testing.T) {
	dir := t.TempDir()
	f, err := measureFloor(3, nil, 100*time.Millisecond, dir)
	if err != nil {
		t.Fatal(err)
	}

	positive := []struct {
		name string
		v    float64
	}{
		{"stdlib verify", f.StdlibVerifyMicros},
		{"voi verify", f.VoiVerifyMicros},
		{"voi expanded verify", f.VoiExpandedVerifyMicros},
		{"voi batch verify", f.VoiBatchVerifyMicros},
		{"fsync", f.FsyncMedianMs},
	}
	for _, p := range positive {
		t.Run(p.name, func(t *testing.T) {
			if p.v <= 0 {
				t.Errorf("%s = %v, want a positive time", p.name, p.v)
			}
		})
	}
	if want := 3 * 1e6 / f.VoiExpandedVerifyMicros; f.VerifyFloorPerSecond != want {
		t.Errorf("verifyFloorPerSecond = %v, want cores / expanded verify time = %v", f.VerifyFloorPerSecond, want)
	}
	if f.FsyncDir != dir {
		t.Errorf("fsync dir = %q, want %q", f.FsyncDir, dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("fsync probe left %d files in %s", len(entries), dir)
	}
}

func TestFloor_FsyncInMissingFolderFails(t *testing.T) {
	missing := t.TempDir() + "/does-not-exist"
	if _, err := measureFsync(missing); err == nil {
		t.Errorf("fsync probe in %s succeeded, want an error naming the folder", missing)
	}
}

func TestFloor_RejectingVerifierIsAnError(t *testing.T) {
	if _, err := timePerCall(func() bool { return false }, 10*time.Millisecond); err == nil {
		t.Error("timing a verifier that rejects the valid signature succeeded")
	}
}

func TestFloor_Median(t *testing.T) {
	cases := []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"one", []time.Duration{5}, 5},
		{"odd unsorted", []time.Duration{9, 1, 5}, 5},
		{"even takes upper middle", []time.Duration{4, 1, 3, 2}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := median(c.in); got != c.want {
				t.Errorf("median = %v, want %v", got, c.want)
			}
		})
	}
}
