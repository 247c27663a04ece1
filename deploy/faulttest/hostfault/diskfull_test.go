package hostfault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// volumeSize is the size of each node's tmpfs data volume: room for a
// fresh node (a few MiB) and the default 32 MiB disk reserve.
const volumeSize = "96m"

// mountVolume mounts a size-limited tmpfs and returns the data directory
// inside it. The mount is detached when the test ends, after the processes.
func mountVolume(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+volumeSize+",mode=0700"); err != nil {
		t.Fatalf("mount a %s tmpfs on %s: %v", volumeSize, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return filepath.Join(dir, "data")
}

// fillVolume allocates a file next to dataDir that takes every free byte
// of the volume and returns its path. It uses a few fallocate calls of
// halving size, so that the fill takes microseconds and the node cannot
// release its reserve file in the middle of it.
func fillVolume(t *testing.T, dataDir string) string {
	t.Helper()
	path := filepath.Join(filepath.Dir(dataDir), "filler")
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	defer f.Close()

	// The node may free a few blocks meanwhile (an expired journal
	// segment), so the fill repeats until nothing is left.
	offset := int64(0)
	for round := 0; st.Bavail > 0; round++ {
		if round == 10 {
			t.Fatalf("the volume of %s still has %d blocks free after %d rounds of filling", dataDir, st.Bavail, round)
		}
		for size := int64(st.Bavail) * st.Bsize; size >= st.Bsize; {
			err := syscall.Fallocate(int(f.Fd()), 0, offset, size)
			switch {
			case err == nil:
				offset += size
			case errors.Is(err, syscall.ENOSPC):
				size /= 2
			default:
				t.Fatalf("fill %s: %v", path, err)
			}
		}

		if err := syscall.Statfs(path, &st); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// checkNoPanic fails the test when n's output shows a panic.
func checkNoPanic(t *testing.T, n *node) {
	t.Helper()
	if out := n.logs.String(); strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Errorf("%s panicked:\n%s", n.id, tail(out, 40))
	}
}

func TestDiskFull_SingleNodeRejectsWritesAndRecovers(t *testing.T) {
	dataDir := mountVolume(t)
	c := newCluster(t, []string{dataDir})
	n := c.nodes[0]
	c.startAll()
	c.waitLeader()
	f := c.setup(n)
	reader := c.registerTemp(n, f, "reader", nil)
	blocked := c.registerTemp(n, f, "blocked", blockLoopback)
	c.waitServes(reader, f)

	filler := fillVolume(t, dataDir)
	start := time.Now()
	status, body, err := c.extend(context.Background(), n, f, reader, "while-full")
	took := time.Since(start)
	t.Logf("extension on a full volume: %d %s after %s", status, body, took.Round(time.Millisecond))
	if err != nil || status != http.StatusInsufficientStorage {
		t.Fatalf("extension on a full volume: status %d %s %v, want 507", status, body, err)
	}
	if !strings.Contains(string(body), dataDir) {
		t.Errorf("the 507 body %s does not name the data dir %s", body, dataDir)
	}

	// Decisions need no disk: reads are served and blocks enforced, each
	// within a second, while the audit entries for them cannot be written.
	// An append that raced the fill steps the leader down, so the node may
	// first need an election.
	eventually(t, 10*time.Second, "reads on the full volume", func() string {
		if status, body, _ := readSecret(context.Background(), n, reader, f); status != http.StatusOK {
			return fmt.Sprintf("read: %d %s", status, body)
		}
		return ""
	})
	for i := range 20 {
		start := time.Now()
		if status, body, _ := readSecret(context.Background(), n, reader, f); status != http.StatusOK {
			t.Errorf("read %d on a full volume: %d %s, want 200", i, status, body)
		}
		if status, body, _ := readSecret(context.Background(), n, blocked, f); status != http.StatusForbidden {
			t.Errorf("blocked request %d on a full volume: %d %s, want 403", i, status, body)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("two checks on a full volume took %s", took)
		}
	}
	// The audit entries of those checks cannot be written. The recorder
	// logs that on standard error, which does not need the full volume.
	eventually(t, 10*time.Second, "the audit recorder to report the failed write", func() string {
		if !strings.Contains(n.logs.String(), "audit batch not written, retrying") {
			return "no log line yet"
		}
		return ""
	})
	h, err := c.health(n)
	if err != nil {
		t.Fatal(err)
	}
	if !h.DiskLow || h.Healthy {
		t.Errorf("health on a full volume = %+v, want diskLow and not healthy", h)
	}
	if v, err := c.metric(n, "keyward_data_disk_low"); err != nil || v != 1 {
		t.Errorf("keyward_data_disk_low = %v (%v), want 1", v, err)
	}

	// A crash while the volume is full: the new process starts in the space
	// of the reserve file that the running node deleted, serves reads and
	// still rejects writes.
	c.kill(n)
	c.start(n)
	c.waitLeader()
	eventually(t, 20*time.Second, "the restarted node to serve on a full volume", func() string {
		status, body, err := readSecret(context.Background(), n, reader, f)
		if err != nil || status != http.StatusOK {
			return fmt.Sprintf("read: %d %s %v", status, body, err)
		}
		return ""
	})
	if status, body, _ := readSecret(context.Background(), n, blocked, f); status != http.StatusForbidden {
		t.Errorf("blocked request after the restart on a full volume: %d %s, want 403", status, body)
	}
	if status, body, _ := c.extend(context.Background(), n, f, reader, "after-restart-while-full"); status != http.StatusInsufficientStorage {
		t.Errorf("extension after the restart on a full volume: %d %s, want 507", status, body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.waitLeader()
	eventually(t, 30*time.Second, "the extension to succeed once space is free", func() string {
		status, body, err := c.extend(context.Background(), n, f, reader, "after-free")
		if err != nil || status != http.StatusOK {
			return fmt.Sprintf("status %d %s %v", status, body, err)
		}
		return ""
	})
	reasons := c.extensionReasons(n, f, reader)
	if reasons["while-full"] || reasons["after-restart-while-full"] || !reasons["after-free"] {
		t.Errorf("extensions recorded: %v, want after-free only", reasons)
	}
	checkNoPanic(t, n)
}

func TestDiskFull_LeaderVolumeFillsUnderLoad(t *testing.T) {
	var dirs []string
	for range 3 {
		dirs = append(dirs, mountVolume(t))
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
	time.Sleep(2 * time.Second) // a baseline under load before the fault

	full := c.waitLeader()
	fillAt := time.Now()
	filler := fillVolume(t, full.dataDir)
	t.Logf("filled the volume of %s, the leader, in %s", full.id, time.Since(fillAt).Round(time.Millisecond))

	// Through the full node a write is rejected with 507 naming its disk,
	// or, once leadership moved, forwarded to the new leader. A node that
	// has stepped down and rejects log entries is not ready, so the admin
	// API returns 503 before it looks at the write.
	status, body, err := c.extend(context.Background(), full, f, reader, "through-full-node")
	t.Logf("extension through the full node: %d %s %v", status, clip(body), err)
	switch status {
	case http.StatusInsufficientStorage:
		if !strings.Contains(string(body), full.dataDir) {
			t.Errorf("the 507 body %s does not name the data dir %s", body, full.dataDir)
		}
	case http.StatusOK:
	case http.StatusServiceUnavailable:
		if !strings.Contains(string(body), "catching up") {
			t.Errorf("the 503 body %s does not say the node is catching up", body)
		}
	default:
		t.Errorf("extension through the full node: status %d %s %v, want 507, 200 or 503", status, body, err)
	}

	var moved time.Duration
	eventually(t, 30*time.Second, "leadership to leave the full node", func() string {
		for _, n := range otherNodes(c.nodes, full) {
			h, err := c.health(n)
			if err != nil || h.LeaderID == "" || h.LeaderID == full.id {
				return fmt.Sprintf("%s names leader %q (%v)", n.id, h.LeaderID, err)
			}
		}
		moved = time.Since(fillAt)
		return ""
	})
	newLeader := c.waitLeader(otherNodes(c.nodes, full)...)
	t.Logf("leadership moved from %s to %s %s after its volume filled", full.id, newLeader.id, moved.Round(time.Millisecond))

	// The full node rejects the entries it cannot store, so it stops
	// serving machine requests rather than serve an old state.
	eventually(t, 20*time.Second, "the full node to report a low disk and stop serving", func() string {
		h, err := c.health(full)
		if err != nil || !h.DiskLow || h.Healthy || h.Ready {
			return fmt.Sprintf("health %+v %v", h, err)
		}
		return ""
	})
	time.Sleep(5 * time.Second) // more load with the volume still full
	faultEnd := time.Now()
	w.halt()
	t.Logf("workload: %s", w.summary())
	if v, err := c.metric(full, "keyward_raft_log_appends_rejected_total"); err != nil || v == 0 {
		t.Errorf("keyward_raft_log_appends_rejected_total on the full node = %v (%v), want above 0", v, err)
	}
	for _, n := range otherNodes(c.nodes, full) {
		gap := w.maxGap(n.id, fillAt, faultEnd)
		t.Logf("longest time without a served read on %s while the volume was full: %s", n.id, gap.Round(time.Millisecond))
		if gap > maxStaleness {
			t.Errorf("%s served no read for %s while %s was full, above the staleness bound %s", n.id, gap, full.id, maxStaleness)
		}
	}
	for _, leak := range w.leaks {
		t.Error(leak)
	}

	freedAt := time.Now()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.waitConverged()
	t.Logf("the full node caught up %s after space was freed", time.Since(freedAt).Round(time.Millisecond))
	reasons := c.extensionReasons(full, f, reader)
	for _, n := range c.nodes {
		have := c.extensionReasons(n, f, reader)
		for _, reason := range w.acked {
			if !have[reason] {
				t.Errorf("%s lost the acknowledged %s", n.id, reason)
			}
		}
	}
	if got := reasons["through-full-node"]; got != (status == http.StatusOK) {
		t.Errorf("the extension through the full node returned %d but applied = %v", status, got)
	}
	if full.exited() || full.starts != 1 {
		t.Errorf("the full node's process exited (runs: %d)", full.starts)
	}
	for _, n := range c.nodes {
		checkNoPanic(t, n)
	}
}
