//go:build !(linux || darwin || freebsd)

package cluster

import "errors"

// freeDiskBytes cannot read free space on this platform, so the disk-space
// guard stays off.
func freeDiskBytes(string) (uint64, error) {
	return 0, errors.New("free disk space is not available on this platform")
}
