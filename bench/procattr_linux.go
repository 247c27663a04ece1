package bench

import "syscall"

// childProcAttr makes the kernel send SIGTERM to a node the bench started
// when the bench dies, so an interrupted run leaves no server behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
