//go:build linux || darwin || freebsd

package cluster

import "syscall"

// freeDiskBytes returns the bytes that an unprivileged process may still
// write on the file system that holds dir.
func freeDiskBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
