//go:build !linux

package bench

import (
	"errors"
	"time"
)

// processCPUTime is not available outside Linux; the CPU figures of the
// reads scenario are then left out.
func processCPUTime(int) (time.Duration, error) {
	return 0, errors.New("process CPU time is read from /proc, which only Linux has")
}

// threadCPUTime returns 0 outside Linux, which leaves the CPU figures out.
func threadCPUTime() time.Duration { return 0 }
