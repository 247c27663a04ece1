//go:build !linux

package cluster

import "os"

// preallocate gives f size bytes of blocks by writing zeros.
func preallocate(f *os.File, size int64) error {
	return writeZeros(f, size)
}
