package hostfault

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/deploy/faulttest/slowfs"
)

// fsyncDelay is the latency added to every fsync on the leader's disk: twice
// the election timeout of 1 s.
const fsyncDelay = 2 * time.Second

// mountSlowDirs mounts one FUSE passthrough per node and returns the
// mounts. They are unmounted when the test ends, after the processes.
func mountSlowDirs(t *testing.T, count int) []*slowfs.FS {
	t.Helper()
	if err := slowfs.Available(); err != nil {
		t.Skipf("the slow-fsync test mounts a FUSE file system: %v", err)
	}
	var mounts []*slowfs.FS
	for range count {
		backing, mountpoint := t.TempDir(), t.TempDir()
		fsys, err := slowfs.Mount(backing, mountpoint)
		if err != nil {
			t.Fatalf("FUSE mount failed although root and /dev/fuse are present: %v", err)
		}
		t.Cleanup(func() {
			if err := fsys.Unmount(); err != nil {
				t.Errorf("unmount %s: %v", mountpoint, err)
			}
		})
		mounts = append(mounts, fsys)
	}
	return mounts
}

func TestSlowFsync_LeadershipLeavesStalledLeader(t *testing.T) {
	mounts := mountSlowDirs(t, 3)
	var dirs []string
	for _, m := range mounts {
		dirs = append(dirs, m.Mountpoint())
	}
	c := newCluster(t, dirs)
	c.startAll()
	first := c.waitLeader()
	f := c.setup(first)
	reader := c.registerTemp(first, f, "reader", nil)
	blocked := c.registerTemp(first, f, "blocked", blockLoopback)
	c.waitServes(reader, f)
	c.waitConverged()

	w := startWorkload(c, f, reader, blocked)
	defer w.halt()
	time.Sleep(3 * time.Second) // a baseline under load before the fault

	stalled := c.waitLeader()
	slow := mounts[indexOf(c.nodes, stalled)]
	faultAt := time.Now()
	slow.SetFsyncDelay(fsyncDelay)
	t.Logf("fsync of %s (the leader) now takes %s", stalled.id, fsyncDelay)

	var moved time.Duration
	eventually(t, 45*time.Second, "leadership to leave the stalled leader", func() string {
		for _, n := range c.nodes {
			if n == stalled {
				continue
			}
			h, err := c.health(n)
			if err != nil || h.LeaderID == "" || h.LeaderID == stalled.id {
				return fmt.Sprintf("%s names leader %q (%v)", n.id, h.LeaderID, err)
			}
		}
		moved = time.Since(faultAt)
		return ""
	})
	newLeader := c.waitLeader(otherNodes(c.nodes, stalled)...)
	t.Logf("leadership moved from %s to %s %s after fsync slowed down", stalled.id, newLeader.id, moved.Round(time.Millisecond))

	// Keep the load on for a while with the disk still slow.
	time.Sleep(10 * time.Second)
	h, err := c.health(stalled)
	if err != nil {
		t.Fatalf("health of the stalled node: %v", err)
	}
	t.Logf("health of the stalled node: %+v", h)
	if !h.DiskStalled || h.Healthy {
		t.Errorf("stalled node reports diskStalled=%v healthy=%v, want a stalled, unhealthy node", h.DiskStalled, h.Healthy)
	}
	if h.FsyncLatencyMaxMs < fsyncDelay.Milliseconds()*3/4 {
		t.Errorf("stalled node reports fsyncLatencyMaxMs %d, want about %d", h.FsyncLatencyMaxMs, fsyncDelay.Milliseconds())
	}
	if v, err := c.metric(stalled, "keyward_disk_stalled"); err != nil || v != 1 {
		t.Errorf("keyward_disk_stalled on the stalled node = %v (%v), want 1", v, err)
	}
	for _, n := range otherNodes(c.nodes, stalled) {
		if v, err := c.metric(n, "keyward_disk_stalled"); err != nil || v != 0 {
			t.Errorf("keyward_disk_stalled on %s = %v (%v), want 0", n.id, v, err)
		}
	}
	faultEnd := time.Now()
	w.halt()
	slow.SetFsyncDelay(0)
	total, delayed := slow.Fsyncs()
	t.Logf("workload: %s", w.summary())
	t.Logf("fsyncs on the stalled node's disk: %d, %d of them delayed", total, delayed)

	for _, n := range otherNodes(c.nodes, stalled) {
		gap := w.maxGap(n.id, faultAt, faultEnd)
		t.Logf("longest time without a served read on %s during the fault: %s", n.id, gap.Round(time.Millisecond))
		if gap > maxStaleness {
			t.Errorf("%s served no read for %s during the fault, above the staleness bound %s", n.id, gap, maxStaleness)
		}
	}
	for _, leak := range w.leaks {
		t.Error(leak)
	}
	c.waitConverged()
	for _, n := range c.nodes {
		have := c.extensionReasons(n, f, reader)
		for _, reason := range w.acked {
			if !have[reason] {
				t.Errorf("%s lost the acknowledged %s", n.id, reason)
			}
		}
	}
	if stalled.exited() || stalled.starts != 1 {
		t.Errorf("the stalled node's process exited (runs: %d)", stalled.starts)
	}
	if strings.Contains(stalled.logs.String(), "panic") {
		t.Errorf("the stalled node logged a panic")
	}
	if code := w.extStatus[http.StatusOK]; code == 0 {
		t.Errorf("no extension succeeded during the test")
	}
}

func indexOf(nodes []*node, n *node) int {
	for i, other := range nodes {
		if other == n {
			return i
		}
	}
	return -1
}

// otherNodes returns nodes without skip.
func otherNodes(nodes []*node, skip *node) []*node {
	var out []*node
	for _, n := range nodes {
		if n != skip {
			out = append(out, n)
		}
	}
	return out
}
