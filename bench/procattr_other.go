//go:build !linux

package bench

import "syscall"

// childProcAttr returns nil: only Linux can tie a child's life to its
// parent's, so elsewhere an interrupted run may leave a node running.
func childProcAttr() *syscall.SysProcAttr {
	return nil
}
