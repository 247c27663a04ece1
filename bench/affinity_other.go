//go:build !linux

package bench

import "os/exec"

// allowedCPUs fails outside Linux, so the local nodes share the CPUs with
// the load generator.
func allowedCPUs() ([]int, error) { return nil, errNoPlacement }

// pinProcess fails outside Linux. The bench does not call it there.
func pinProcess([]int) (func() error, error) { return nil, errNoPlacement }

// startProcess starts cmd. Outside Linux cpus is always empty, because
// allowedCPUs leaves the placement unset.
func startProcess(cmd *exec.Cmd, cpus []int, _ <-chan struct{}) error {
	if len(cpus) > 0 {
		return errNoPlacement
	}
	return cmd.Start()
}

// runOnCPUs runs fn, on any CPU: outside Linux cpus is always empty.
func runOnCPUs(cpus []int, fn func()) error {
	if len(cpus) > 0 {
		return errNoPlacement
	}
	fn()
	return nil
}
