package slowfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// ErrUnavailable means FUSE cannot be used on this machine: the process is
// not root or /dev/fuse is missing. The wrapped text names the reason.
var ErrUnavailable = errors.New("slowfs: FUSE unavailable")

// Available returns nil when this process can mount a FUSE file system
// itself, else an ErrUnavailable error that names what is missing.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the process runs as uid %d, not root", ErrUnavailable, os.Geteuid())
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("%w: /dev/fuse: %v", ErrUnavailable, err)
	}
	return nil
}

// FS is one mounted passthrough file system.
type FS struct {
	mountpoint string
	server     *fuse.Server
	// delay is the pause added before each fsync, in nanoseconds.
	delay atomic.Int64
	// fsyncs counts fsync and fdatasync calls on files; slow counts those
	// that were delayed.
	fsyncs atomic.Uint64
	slow   atomic.Uint64
}

// Mount serves backing at mountpoint (both must be existing directories)
// until Unmount. fsync is not delayed until SetFsyncDelay is called.
func Mount(backing, mountpoint string) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	rootOps, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, fmt.Errorf("slowfs: loopback root %s: %w", backing, err)
	}

	f := &FS{mountpoint: mountpoint}
	root := &delayNode{LoopbackNode: rootOps.(*fs.LoopbackNode), fs: f}
	// The loopback code finds the root Inode through RootNode; the wrapper
	// embeds the same Inode, so children resolve paths as before.
	root.RootData.RootNode = root

	timeout := time.Second
	opts := &fs.Options{
		AttrTimeout:  &timeout,
		EntryTimeout: &timeout,
		MountOptions: fuse.MountOptions{
			FsName:      "slowfs:" + backing,
			Name:        "slowfs",
			DirectMount: true,
			// Lets processes of other users, such as a node run under a
			// service account, use the mount.
			AllowOther: true,
		},
	}
	server, err := fs.Mount(mountpoint, root, opts)
	if err != nil {
		return nil, fmt.Errorf("slowfs: mount %s on %s: %w", backing, mountpoint, err)
	}
	f.server = server
	return f, nil
}

// SetFsyncDelay sets the pause added before every later fsync on a file.
// Zero removes it. Calls already waiting keep their pause.
func (f *FS) SetFsyncDelay(d time.Duration) { f.delay.Store(int64(d)) }

// Fsyncs returns the number of fsync calls on files so far, and how many of
// them were delayed.
func (f *FS) Fsyncs() (total, delayed uint64) { return f.fsyncs.Load(), f.slow.Load() }

// Mountpoint returns the directory where the file system is mounted.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Unmount removes the mount. Processes with open files must have exited,
// otherwise the kernel reports the mount busy; Unmount then detaches it
// lazily (MNT_DETACH) so a failed test cannot leave it behind.
func (f *FS) Unmount() error {
	f.SetFsyncDelay(0)
	if err := f.server.Unmount(); err != nil {
		if derr := syscall.Unmount(f.mountpoint, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("slowfs: unmount %s: %w (lazy unmount: %v)", f.mountpoint, err, derr)
		}
	}
	f.server.Wait()
	return nil
}

// delayNode is a loopback node whose fsync waits for the configured delay
// before it flushes the backing file.
type delayNode struct {
	*fs.LoopbackNode
	fs *FS
}

var (
	_ fs.NodeFsyncer     = (*delayNode)(nil)
	_ fs.NodeWrapChilder = (*delayNode)(nil)
)

// WrapChild gives every node below the root the same fsync behaviour.
func (n *delayNode) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if lb, ok := ops.(*fs.LoopbackNode); ok {
		return &delayNode{LoopbackNode: lb, fs: n.fs}
	}
	return ops
}

// Fsync waits for the delay, or until the kernel cancels the request, and
// then flushes the backing file through the open handle.
func (n *delayNode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	f := n.fs
	f.fsyncs.Add(1)
	if d := time.Duration(f.delay.Load()); d > 0 {
		f.slow.Add(1)
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return syscall.EINTR
		}
	}
	if syncer, ok := fh.(fs.FileFsyncer); ok {
		return syncer.Fsync(ctx, flags)
	}
	// Without a file handle the backing file is opened by path and flushed.
	path := filepath.Join(n.RootData.Path, n.Path(n.Root()))
	file, err := os.Open(path)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer file.Close()
	return fs.ToErrno(file.Sync())
}
