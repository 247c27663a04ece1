package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// threadCPULists returns the Cpus_allowed_list of every thread of process
// pid ("self" for this one), by thread id.
func threadCPULists(t *testing.T, pid string) map[string]string {
	t.Helper()
	dir := filepath.Join("/proc", pid, "task")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	lists := map[string]string{}
	for _, e := range entries {
		if list, ok := statusCPUList(t, filepath.Join(dir, e.Name(), "status")); ok {
			lists[e.Name()] = list
		}
	}
	return lists
}

// statusCPUList returns the Cpus_allowed_list field of a /proc status
// file. ok is false when the thread exited before it was read.
func statusCPUList(t *testing.T, path string) (list string, ok bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if value, found := strings.CutPrefix(line, "Cpus_allowed_list:"); found {
			return strings.TrimSpace(value), true
		}
	}
	t.Fatalf("%s has no Cpus_allowed_list line", path)
	return "", false
}

// requireAllThreads fails unless every thread of pid may run on want
// alone.
func requireAllThreads(t *testing.T, pid, want string) {
	t.Helper()
	for tid, list := range threadCPULists(t, pid) {
		if list != want {
			t.Errorf("thread %s of process %s has Cpus_allowed_list %s, want %s", tid, pid, list, want)
		}
	}
}

func TestAffinity_ChildStartsPinned(t *testing.T) {
	allowed, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	cpu := allowed[len(allowed)-1]
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), affinityHelperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	if err := startProcess(cmd, []int{cpu}, exited); err != nil {
		t.Fatalf("startProcess on CPU %d: %v", cpu, err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
		close(exited)
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper process wrote %q (%v), want ready", line, err)
	}

	pid := fmt.Sprint(cmd.Process.Pid)
	status, ok := statusCPUList(t, filepath.Join("/proc", pid, "status"))
	if !ok {
		t.Fatalf("helper process %s exited early", pid)
	}
	if want := fmt.Sprint(cpu); status != want {
		t.Errorf("/proc/%s/status Cpus_allowed_list = %s, want %s", pid, status, want)
	}
	threads := threadCPULists(t, pid)
	if len(threads) <= affinityHelperThreads {
		t.Errorf("helper process has %d threads, want more than %d", len(threads), affinityHelperThreads)
	}
	requireAllThreads(t, pid, fmt.Sprint(cpu))
	// The thread that forked the child is back on the CPUs it had.
	requireAllThreads(t, "self", formatCPUList(allowed))
}

func TestAffinity_PinProcessAndRestore(t *testing.T) {
	allowed, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	cpu := allowed[0]
	before := runtime.GOMAXPROCS(0)
	restore, err := pinProcess([]int{cpu})
	if err != nil {
		t.Fatalf("pinProcess on CPU %d: %v", cpu, err)
	}
	requireAllThreads(t, "self", fmt.Sprint(cpu))
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS after pinning to one CPU = %d, want 1", got)
	}

	if err := restore(); err != nil {
		t.Fatalf("restore: %v", err)
	}
	requireAllThreads(t, "self", formatCPUList(allowed))
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS after restore = %d, want %d", got, before)
	}
}

func TestAffinity_RunOnCPUs(t *testing.T) {
	allowed, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	cpu := allowed[len(allowed)-1]
	var during []int
	var duringErr error
	if err := runOnCPUs([]int{cpu}, func() { during, duringErr = allowedCPUs() }); err != nil {
		t.Fatalf("runOnCPUs on CPU %d: %v", cpu, err)
	}
	if duringErr != nil {
		t.Fatal(duringErr)
	}
	if !slices.Equal(during, []int{cpu}) {
		t.Errorf("CPUs of the thread running fn = %v, want [%d]", during, cpu)
	}
	requireAllThreads(t, "self", formatCPUList(allowed))
}
