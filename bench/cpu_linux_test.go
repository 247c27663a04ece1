package bench

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestProcessCPUTime_GrowsWithWork(t *testing.T) {
	before, err := processCPUTime(os.Getpid())
	if err != nil {
		t.Fatalf("processCPUTime: %v", err)
	}
	// Spin for 100 ms of wall time, which is at least 10 clock ticks of
	// CPU unless the host takes the core away for most of it.
	deadline := time.Now().Add(100 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	runtime.KeepAlive(x)
	after, err := processCPUTime(os.Getpid())
	if err != nil {
		t.Fatalf("processCPUTime: %v", err)
	}
	if after <= before {
		t.Errorf("CPU time went from %v to %v across 100 ms of spinning", before, after)
	}
}

func TestProcessCPUTime_UnknownProcess(t *testing.T) {
	if _, err := processCPUTime(-1); err == nil {
		t.Error("processCPUTime(-1) returned no error")
	}
}

func TestThreadCPUTime_Advances(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPUTime()
	if start == 0 {
		t.Fatal("thread CPU clock read zero")
	}
	deadline := time.Now().Add(5 * time.Second)
	for threadCPUTime()-start < time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("thread CPU clock did not advance by 1 ms in 5 s of spinning")
		}
	}
}
