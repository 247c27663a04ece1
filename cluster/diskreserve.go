package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// reserveFileName is the file under DataDir that holds space back for the
// moment the volume fills up.
const reserveFileName = "disk-reserve"

// reserveFile is a file of half the disk reserve that the node allocates
// while the volume has room and deletes when the volume is nearly full, or
// when a write failed with ENOSPC. So a volume that another process filled
// to the last byte still has room for what must not fail. That is Raft's
// term and vote, the no-op of a new term, the state machine's pending
// entries, and opening Pebble at the next start. The check for commands
// still counts the deleted file's space as used, so the freed space is
// kept for those writes.
type reserveFile struct {
	path   string
	size   int64
	logger *slog.Logger

	mu sync.Mutex
	// present is true while the file holds its space.
	present bool
}

func newReserveFile(dataDir string, size int64, logger *slog.Logger) *reserveFile {
	return &reserveFile{path: filepath.Join(dataDir, reserveFileName), size: size, logger: logger}
}

// ensure allocates the file when it is missing and free, the space left on
// the volume, is at least need plus the file's size, so that allocating it
// never makes the node reject commands. It returns whether the file holds
// its space afterwards.
func (r *reserveFile) ensure(free, need uint64) bool {
	if r.size <= 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.present {
		return true
	}
	if info, err := os.Stat(r.path); err == nil {
		if info.Size() == r.size {
			r.present = true
			return true
		}
		// Left by a run with another reserve; its space counts as free.
		os.Remove(r.path)
	}
	if free < need+uint64(r.size) {
		return false
	}
	if err := allocateFile(r.path, r.size); err != nil {
		os.Remove(r.path)
		r.logger.Warn("could not allocate the disk reserve file; a volume filled by another process may stop this node",
			"path", r.path, keyErr, err)
		return false
	}
	r.present = true
	return true
}

// release deletes the file, giving its space to the node's own writes.
func (r *reserveFile) release(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.present {
		return
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.logger.Error("could not delete the disk reserve file", "path", r.path, keyErr, err)
		return
	}
	r.present = false
	r.logger.Warn("deleted the disk reserve file to keep room for raft and the state machine",
		"path", r.path, "size", formatBytes(uint64(r.size)), "reason", reason)
}

// held reports whether the file holds its space.
func (r *reserveFile) held() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.present
}

// allocateFile creates path with size bytes of allocated blocks.
func allocateFile(path string, size int64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	err = preallocate(f, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("allocate %d bytes in %s: %w", size, tmp, err)
	}
	return os.Rename(tmp, path)
}

// writeZeros writes size zero bytes to f, which allocates blocks on file
// systems without fallocate.
func writeZeros(f *os.File, size int64) error {
	chunk := make([]byte, 1<<20)
	for size > 0 {
		n := int64(len(chunk))
		if size < n {
			n = size
		}
		if _, err := f.Write(chunk[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}
