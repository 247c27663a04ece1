package bench

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Scenario names, as given to `keyward bench SCENARIO`.
const (
	ScenarioReads    = "reads"
	ScenarioWrites   = "writes"
	ScenarioMixed    = "mixed"
	ScenarioFlood    = "flood"
	ScenarioRegister = "register"
	ScenarioScale    = "scale"
)

// Scenarios lists every scenario name in the order the docs describe them.
var Scenarios = []string{ScenarioReads, ScenarioWrites, ScenarioMixed, ScenarioFlood, ScenarioRegister, ScenarioScale}

// maxLocalNodes bounds --local-nodes: every node is a process with its own
// Raft, Pebble and HTTP server on this host.
const maxLocalNodes = 9

// Config configures one bench run. The zero value of a field is not a
// usable default, so start from DefaultConfig.
type Config struct {
	// Scenario is one of the Scenario constants.
	Scenario string

	// Targets are the API URLs of a running cluster's nodes. Empty starts
	// LocalNodes server processes from Binary and stops them at the end.
	Targets []string
	// Token is an owner or operator admin token of the target cluster. It
	// is required with Targets and ignored for a local cluster.
	Token string
	// CAFile is a PEM file of the CAs that sign the targets' certificates,
	// for https targets.
	CAFile string
	// Binary is the keyward executable started for a local cluster.
	Binary string
	// LocalNodes is the number of server processes of a local cluster.
	// Default 1, a `server --dev` node.
	LocalNodes int

	// Duration is the length of each measured load run. Default 15s.
	Duration time.Duration
	// Machines is the number of machines registered for the read
	// scenarios, and of registrations in the register scenario. Default 200.
	Machines int
	// Connections is the number of concurrent connections (closed loop)
	// or the bound on requests in flight (open loop). Default 64.
	Connections int
	// Rate, when positive, runs reads open-loop at this many requests per
	// second instead of closed-loop. The flood scenario uses it as the
	// rate of the normal reads (default 1,000/s there).
	Rate float64
	// FloodRate, when positive, sends the flood scenario's blocked
	// requests open-loop at this many per second instead of closed-loop
	// with Connections connections.
	FloodRate float64
	// Pipeline, when above 1, sends the signed reads of the read
	// scenarios with HTTP/1.1 pipelining: up to Pipeline requests in
	// flight on each connection, over Connections ÷ Pipeline connections.
	// The node then reads several requests, and writes their responses,
	// with one system call each. So the figure shows its cost per request
	// without the two calls that a client waiting for each response adds. Default 1 (off).
	Pipeline int
	// Presign signs the requests of a run before it starts, so that the
	// bench's own signing does not compete with the server for CPU when
	// both share a host. Default true.
	Presign bool
	// Writers are the concurrent admin-writer counts of the writes
	// scenario. The mixed scenario uses the first. Default 1, 64, 256.
	Writers []int
	// Sweep lists fractions of the measured maximum read rate at which the
	// reads scenario also runs open-loop, for latency against load.
	// Default 0.5. Empty skips the sweep.
	Sweep []float64
	// SweepDuration is the length of each sweep run. Default Duration/3,
	// at least one second.
	SweepDuration time.Duration
	// ScaleMachines are the state sizes the scale scenario builds.
	// Default 1,000 and 100,000.
	ScaleMachines []int
	// ScaleSetup is the scale scenario's way of registering machines:
	// ScaleSetupStandard (default, five log entries per machine) or
	// ScaleSetupEnrollment (one per machine).
	ScaleSetup string
	// Cores is the core count the verify floor assumes the server has.
	// Zero, the default, is the local nodes' CPU count, or this host's
	// CPU count with Targets or the scale scenario.
	Cores int
	// NodeCPUs and LoadCPUs place the local nodes and the load generator
	// (this process) on CPUs, on Linux: a CPU list such as "1" or "0-1,4",
	// "all" for every CPU this process may run on, or empty for the
	// default. The default, with at least two CPUs, gives the nodes the
	// upper half of the CPUs and the load generator the rest. With one
	// list given, the other side gets the CPUs it leaves. NodeCPUs "all"
	// makes the nodes share every CPU with the load generator.
	NodeCPUs string
	LoadCPUs string
	// FloorTime is the total CPU time spent timing the four Ed25519
	// verifiers, split evenly between them. Default 1.5s.
	FloorTime time.Duration
	// RequestTimeout bounds each request. Default 10s.
	RequestTimeout time.Duration
	// WorkDir receives the scale scenario's stores and, with Targets, the
	// fsync probe file. Default os.TempDir(). With a local cluster the
	// fsync probe runs in the node's data dir.
	WorkDir string
	// OutDir, when set, receives SVG plots of the results.
	OutDir string

	// Progress, when not nil, receives a progress line while phases run.
	Progress io.Writer
	// ProgressTTY redraws the progress line in place. Otherwise a new line
	// is written every few seconds.
	ProgressTTY bool
	// Command is the command line that started the run, for the report.
	Command string
	// Logger receives diagnostics, and nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default set and Scenario empty.
func DefaultConfig() Config {
	return Config{
		LocalNodes:     1,
		Duration:       15 * time.Second,
		Machines:       200,
		Connections:    64,
		Pipeline:       1,
		Presign:        true,
		Writers:        []int{1, 64, 256},
		Sweep:          []float64{0.5},
		ScaleMachines:  []int{1_000, 100_000},
		ScaleSetup:     ScaleSetupStandard,
		FloorTime:      1500 * time.Millisecond,
		RequestTimeout: 10 * time.Second,
	}
}

// Validate checks every field and names the flag of the first invalid one.
func (c Config) Validate() error {
	checks := []func() error{
		c.validateScenario,
		c.validateTargets,
		c.validateLoad,
		c.validateLists,
		c.validatePlacement,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

func (c Config) validateScenario() error {
	for _, s := range Scenarios {
		if c.Scenario == s {
			return nil
		}
	}
	return invalidf("scenario %q is not one of %v", c.Scenario, Scenarios)
}

func (c Config) validateTargets() error {
	for _, t := range c.Targets {
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalidf("--target %q is not an http:// or https:// URL with a host", t)
		}
		if u.Path != "" && u.Path != "/" {
			return invalidf("--target %q has a path; give the node's base URL such as http://127.0.0.1:8200", t)
		}
	}
	if len(c.Targets) > 0 && c.Token == "" && c.Scenario != ScenarioScale {
		return invalidf("--target needs an owner or operator admin token; pass --token-file FILE or set KEYWARD_TOKEN")
	}
	if c.LocalNodes < 1 || c.LocalNodes > maxLocalNodes {
		return invalidf("--local-nodes %d is outside 1 to %d", c.LocalNodes, maxLocalNodes)
	}
	if len(c.Targets) > 0 && c.LocalNodes != 1 {
		return invalidf("--local-nodes %d and --target are both set; a run uses either a local cluster or the targets", c.LocalNodes)
	}
	if len(c.Targets) == 0 && c.Binary == "" && c.Scenario != ScenarioScale {
		return invalidf("no keyward binary to start a local node; pass --target or run the bench from the keyward binary")
	}
	return nil
}

func (c Config) validateLoad() error {
	switch {
	case c.Duration < 100*time.Millisecond:
		return invalidf("--duration %s is below the minimum of 100ms", c.Duration)
	case c.Machines < 1:
		return invalidf("--machines %d must be at least 1", c.Machines)
	case c.Connections < 1 || c.Connections > 10_000:
		return invalidf("--connections %d is outside 1 to 10000", c.Connections)
	case c.Pipeline < 1 || c.Pipeline > 256:
		return invalidf("--pipeline %d is outside 1 to 256; use 1 to wait for each response before the next request", c.Pipeline)
	case c.Pipeline > c.Connections:
		return invalidf("--pipeline %d is above --connections %d; each pipelined connection carries --pipeline of the --connections requests in flight", c.Pipeline, c.Connections)
	case c.Rate < 0:
		return invalidf("--rate %g is negative; use 0 for closed-loop load", c.Rate)
	case c.FloodRate < 0:
		return invalidf("--flood-rate %g is negative; use 0 for a closed-loop flood", c.FloodRate)
	case c.SweepDuration < 0:
		return invalidf("--sweep-duration %s is negative", c.SweepDuration)
	case c.Cores < 0:
		return invalidf("--cores %d is negative; omit it to use the local nodes' CPU count", c.Cores)
	case c.FloorTime < 10*time.Millisecond:
		return invalidf("--floor-time %s is below the minimum of 10ms", c.FloorTime)
	case c.RequestTimeout <= 0:
		return invalidf("--timeout %s must be positive", c.RequestTimeout)
	}
	return nil
}

func (c Config) validateLists() error {
	if len(c.Writers) == 0 && (c.Scenario == ScenarioWrites || c.Scenario == ScenarioMixed) {
		return invalidf("--writers is empty; give counts such as 1,64,256")
	}
	for _, w := range c.Writers {
		if w < 1 || w > 4096 {
			return invalidf("--writers value %d is outside 1 to 4096", w)
		}
	}
	for _, f := range c.Sweep {
		if f <= 0 || f > 1 {
			return invalidf("--sweep value %g is not a fraction in (0, 1]", f)
		}
	}
	if len(c.ScaleMachines) == 0 && c.Scenario == ScenarioScale {
		return invalidf("--scale-machines is empty; give sizes such as 1000,100000")
	}
	for _, n := range c.ScaleMachines {
		if n < 1 || n > 10_000_000 {
			return invalidf("--scale-machines value %d is outside 1 to 10000000", n)
		}
	}
	if c.ScaleSetup != ScaleSetupStandard && c.ScaleSetup != ScaleSetupEnrollment {
		return invalidf("--scale-setup %q is not %q or %q", c.ScaleSetup, ScaleSetupStandard, ScaleSetupEnrollment)
	}
	return nil
}

// validatePlacement checks the syntax of the CPU lists. Whether the CPUs
// exist is checked when the bench starts the nodes.
func (c Config) validatePlacement() error {
	flags := []struct{ name, spec string }{{"--node-cpus", c.NodeCPUs}, {"--load-cpus", c.LoadCPUs}}
	for _, f := range flags {
		spec := strings.TrimSpace(f.spec)
		if spec == "" {
			continue
		}
		if len(c.Targets) > 0 {
			return invalidf("%s splits the CPUs between the nodes that the bench starts and its load generator, so it does not apply with --target; pin the processes with taskset instead", f.name)
		}
		if c.Scenario == ScenarioScale {
			return invalidf("%s splits the CPUs between the nodes that the bench starts and its load generator, and the scale scenario starts no node", f.name)
		}
		if spec == cpuListAll {
			continue
		}
		if _, err := parseCPUList(spec); err != nil {
			return invalidf("%s: %v", f.name, err)
		}
	}
	return nil
}

// sweepDuration returns the length of one sweep run.
func (c Config) sweepDuration() time.Duration {
	if c.SweepDuration > 0 {
		return c.SweepDuration
	}
	return max(c.Duration/3, time.Second)
}
