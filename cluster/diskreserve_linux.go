package cluster

import (
	"errors"
	"os"
	"syscall"
)

// preallocate gives f size bytes of blocks with fallocate, or by writing
// zeros where the file system does not support it.
func preallocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return writeZeros(f, size)
	}
	return err
}
