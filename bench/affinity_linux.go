package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// allowedCPUs returns the CPUs that the calling thread may run on, in
// increasing order. Before placement every thread of the bench has the
// same set.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cpus []int
	for cpu := range maxCPUs {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

func cpuSetOf(cpus []int) unix.CPUSet {
	var set unix.CPUSet
	for _, cpu := range cpus {
		set.Set(cpu)
	}
	return set
}

// pinProcess sets the affinity of every thread of the bench process to
// cpus and GOMAXPROCS to their count. The returned function restores both.
func pinProcess(cpus []int) (restore func() error, err error) {
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	set := cpuSetOf(cpus)
	if err := setProcessAffinity(&set); err != nil {
		return nil, errors.Join(err, setProcessAffinity(&old))
	}
	previous := runtime.GOMAXPROCS(len(cpus))
	return func() error {
		runtime.GOMAXPROCS(previous)
		return setProcessAffinity(&old)
	}, nil
}

// setProcessAffinity sets the affinity of every thread of this process.
// sched_setaffinity acts on one thread, and a new thread inherits the
// affinity of the thread that creates it, so the threads are listed again
// until a pass finds none that it has not set.
func setProcessAffinity(set *unix.CPUSet) error {
	done := map[int]bool{}
	for {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list the threads of this process: %w", err)
		}
		added := false
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			// A thread that exited since the listing has nothing to set.
			if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setaffinity on thread %d: %w", tid, err)
			}
			done[tid] = true
			added = true
		}
		if !added {
			return nil
		}
	}
}

// startProcess starts cmd on cpus, or on the bench's own CPUs when cpus is
// empty. The child is forked from a thread locked to a goroutine that
// sets that thread's affinity first, so the child and every thread it
// creates inherit cpus from its first instruction. That goroutine keeps
// the thread until exited is closed, because the kernel sends Pdeathsig
// when the thread that forked the child exits, not the process.
func startProcess(cmd *exec.Cmd, cpus []int, exited <-chan struct{}) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restore, err := pinThread(cpus)
		if err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		err = cmd.Start()
		restoreErr := restore()
		started <- err
		if err == nil {
			<-exited
		}
		// A thread whose affinity could not be restored ends with this
		// goroutine instead of running other goroutines on cpus.
		if restoreErr == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-started
}

// runOnCPUs runs fn on a thread pinned to cpus and waits for it, or runs
// it directly when cpus is empty. fn runs on another goroutine.
func runOnCPUs(cpus []int, fn func()) error {
	if len(cpus) == 0 {
		fn()
		return nil
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restore, err := pinThread(cpus)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		fn()
		err = restore()
		// As in startProcess, a thread left on cpus ends with the
		// goroutine.
		if err == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// pinThread sets the affinity of the calling thread, which the caller has
// locked, to cpus and returns a function that restores it. With empty
// cpus it changes nothing.
func pinThread(cpus []int) (restore func() error, err error) {
	if len(cpus) == 0 {
		return func() error { return nil }, nil
	}
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	set := cpuSetOf(cpus)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_setaffinity to CPUs %s: %w", formatCPUList(cpus), err)
	}
	return func() error {
		if err := unix.SchedSetaffinity(0, &old); err != nil {
			return fmt.Errorf("restore the thread's CPU affinity: %w", err)
		}
		return nil
	}, nil
}
