package slowfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func mountForTest(t *testing.T) *FS {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("needs root and /dev/fuse: %v", err)
	}
	backing, mountpoint := t.TempDir(), t.TempDir()
	f, err := Mount(backing, mountpoint)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return f
}

func TestSlowFS_DelaysFsyncOnly(t *testing.T) {
	f := mountForTest(t)
	dir := filepath.Join(f.Mountpoint(), "sub")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file, err := os.Create(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()

	const delay = 300 * time.Millisecond
	f.SetFsyncDelay(delay)
	start := time.Now()
	if _, err := file.Write([]byte("payload")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= delay {
		t.Errorf("a write took %v; only fsync should wait", took)
	}
	start = time.Now()
	if err := file.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("fsync took %v, want at least %v", took, delay)
	}
	total, delayed := f.Fsyncs()
	if total < 1 || delayed < 1 {
		t.Errorf("counted %d fsyncs, %d delayed; want at least 1 of each", total, delayed)
	}

	f.SetFsyncDelay(0)
	start = time.Now()
	if err := file.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if took := time.Since(start); took >= delay {
		t.Errorf("fsync without a delay took %v", took)
	}
	got, err := os.ReadFile(filepath.Join(dir, "data"))
	if err != nil || string(got) != "payload" {
		t.Errorf("read back %q, %v; want payload", got, err)
	}
}
