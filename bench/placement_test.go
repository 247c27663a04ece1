package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestCPUList_Parse(t *testing.T) {
	cases := []struct {
		in   string
		want []int
	}{
		{"1", []int{1}},
		{"0-1", []int{0, 1}},
		{"0-2,5", []int{0, 1, 2, 5}},
		{" 3 , 1 ", []int{1, 3}},
		{"1,1,0-1", []int{0, 1}},
		{"4-4", []int{4}},
		{"1023", []int{1023}},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseCPUList(c.in)
			if err != nil {
				t.Fatalf("parseCPUList(%q): %v", c.in, err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("parseCPUList(%q) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestCPUList_ParseErrorsNameTheValue(t *testing.T) {
	cases := []struct {
		in string
		// want is a part of the message beyond the list itself.
		want string
	}{
		{"", "empty"},
		{" ", "empty"},
		{"a", `"a" is not a CPU number`},
		{"-1", `"" is not a CPU number`},
		{"+1", `"+1" is not a CPU number`},
		{"2-1", "ends below its start"},
		{"0-", `"" is not a CPU number`},
		{"1,,2", `"" is not a CPU number`},
		{"0-1-2", `"1-2" is not a CPU number`},
		{"1.5", `"1.5" is not a CPU number`},
		{"1024", "above the maximum of 1023"},
		{"0-99999", "above the maximum"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := parseCPUList(c.in)
			if err == nil {
				t.Fatalf("parseCPUList(%q) succeeded, want an error", c.in)
			}
			if strings.TrimSpace(c.in) != "" && !strings.Contains(err.Error(), `"`+c.in+`"`) {
				t.Errorf("error %q does not name the value %q", err, c.in)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
}

func TestCPUList_Format(t *testing.T) {
	cases := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{1}, "1"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 1, 2, 5}, "0-2,5"},
		{[]int{0, 2, 4, 5, 6}, "0,2,4-6"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if got := formatCPUList(c.in); got != c.want {
				t.Errorf("formatCPUList(%v) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestPlacement_Resolve(t *testing.T) {
	cases := []struct {
		name       string
		node, load string
		allowed    []int
		wantNode   []int
		wantLoad   []int
	}{
		{"default on two CPUs", "", "", []int{0, 1}, []int{1}, []int{0}},
		{"default on one CPU", "", "", []int{0}, []int{0}, []int{0}},
		{"default on three CPUs", "", "", []int{0, 1, 2}, []int{1, 2}, []int{0}},
		{"default on four CPUs", "", "", []int{0, 1, 2, 3}, []int{2, 3}, []int{0, 1}},
		{"default on sparse CPUs", "", "", []int{0, 2, 4, 6}, []int{4, 6}, []int{0, 2}},
		{"nodes share all", "all", "", []int{0, 1}, []int{0, 1}, []int{0, 1}},
		{"both all", "all", "all", []int{0, 1}, []int{0, 1}, []int{0, 1}},
		{"nodes given", "0", "", []int{0, 1}, []int{0}, []int{1}},
		{"load given", "", "1", []int{0, 1}, []int{0}, []int{1}},
		{"both given", "1", "0", []int{0, 1, 2}, []int{1}, []int{0}},
		{"overlapping lists", "0-1", "1", []int{0, 1}, []int{0, 1}, []int{1}},
		{"load all", "", "all", []int{0, 1}, []int{0, 1}, []int{0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := resolvePlacement(c.node, c.load, c.allowed)
			if err != nil {
				t.Fatalf("resolvePlacement(%q, %q, %v): %v", c.node, c.load, c.allowed, err)
			}
			if !slices.Equal(p.node, c.wantNode) {
				t.Errorf("node CPUs = %v, want %v", p.node, c.wantNode)
			}
			if !slices.Equal(p.load, c.wantLoad) {
				t.Errorf("load CPUs = %v, want %v", p.load, c.wantLoad)
			}
		})
	}
}

func TestPlacement_ResolveRejectsUnavailableCPU(t *testing.T) {
	_, err := resolvePlacement("5", "", []int{0, 1})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("resolvePlacement with CPU 5 of 0-1 = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"--node-cpus", "CPU 5", "0-1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestPlacement_ResolveRejectsInvalidList(t *testing.T) {
	_, err := resolvePlacement("", "0-x", []int{0, 1})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("resolvePlacement with load list 0-x = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"--load-cpus", `"0-x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestPlacement_Pinned(t *testing.T) {
	split := &cpuPlacement{allowed: []int{0, 1}, node: []int{1}, load: []int{0}}
	if !split.nodePinned() || !split.loadPinned() {
		t.Errorf("split placement: node pinned %v, load pinned %v, want both", split.nodePinned(), split.loadPinned())
	}
	if got := split.pinnedNodeCPUs(); !slices.Equal(got, []int{1}) {
		t.Errorf("pinnedNodeCPUs = %v, want [1]", got)
	}
	shared := &cpuPlacement{allowed: []int{0, 1}, node: []int{0, 1}, load: []int{0, 1}}
	if shared.nodePinned() || shared.loadPinned() {
		t.Errorf("shared placement: node pinned %v, load pinned %v, want neither", shared.nodePinned(), shared.loadPinned())
	}
	var none *cpuPlacement
	if none.pinnedNodeCPUs() != nil {
		t.Errorf("nil placement pins the nodes to %v", none.pinnedNodeCPUs())
	}
}

func TestNode_WithGOMAXPROCSReplacesValue(t *testing.T) {
	got := withGOMAXPROCS([]string{"PATH=/bin", "GOMAXPROCS=8", "HOME=/root"}, 1)
	want := []string{"PATH=/bin", "HOME=/root", "GOMAXPROCS=1"}
	if !slices.Equal(got, want) {
		t.Errorf("withGOMAXPROCS = %v, want %v", got, want)
	}
}

// affinityHelperEnv makes the test binary run runAffinityHelper.
const affinityHelperEnv = "BENCH_AFFINITY_HELPER"

// affinityHelperThreads is how many extra threads the helper holds, so
// that the test checks threads that the child created after it started.
const affinityHelperThreads = 4

// runAffinityHelper creates threads, writes "ready" to stdout and waits
// for stdin to close.
func runAffinityHelper() {
	var started sync.WaitGroup
	for range affinityHelperThreads {
		started.Add(1)
		go func() {
			// A goroutine locked to its thread keeps that thread for
			// itself, so the runtime creates one thread per goroutine.
			runtime.LockOSThread()
			started.Done()
			select {}
		}()
	}
	started.Wait()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}
