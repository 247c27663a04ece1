package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/bench"
)

// benchScenarioHelp is the one-line description of each scenario.
var benchScenarioHelp = map[string]string{
	bench.ScenarioReads:    "Signed reads on one node, on every target node, and open-loop at fractions of the maximum",
	bench.ScenarioWrites:   "Admin secret updates at each --writers count",
	bench.ScenarioMixed:    "Signed reads while the first --writers count of writers update secrets",
	bench.ScenarioFlood:    "Normal reads at --rate with and without a flood of guardrail-blocked reads from another machine",
	bench.ScenarioRegister: "Registration of --machines machines with single-use bootstrap tokens",
	bench.ScenarioScale:    "Build states of --scale-machines machines in-process: memory, snapshot, restore and re-open",
}

// newBenchCmd builds `keyward bench SCENARIO`. Every scenario shares the
// flags and uses the ones its help names.
func newBenchCmd(g *globalOptions) *cobra.Command {
	cfg := bench.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a Keyward cluster: reads, writes, floods, registration and scale",
		Long: "Measure a Keyward cluster as its machines and operators use it.\n\n" +
			"Without --target the bench starts a local node from this binary (`server --dev`\n" +
			"in a temporary folder on free loopback ports) and stops it at the end. On Linux\n" +
			"with at least 2 CPUs the node runs on the upper half of the CPUs and the load\n" +
			"generator on the rest (--node-cpus, --load-cpus). Each run\n" +
			"also measures this host's Ed25519 verify time and fsync time, and reports the\n" +
			"results as ratios to them. The report goes to stdout (--output text or json);\n" +
			"progress goes to stderr.",
		Args: cobra.ArbitraryArgs,
		RunE: runGroup,
	}
	addBenchFlags(cmd.PersistentFlags(), &cfg)
	for _, scenario := range bench.Scenarios {
		cmd.AddCommand(newBenchScenarioCmd(g, &cfg, scenario))
	}
	return cmd
}

func addBenchFlags(f *pflag.FlagSet, cfg *bench.Config) {
	f.StringSliceVar(&cfg.Targets, "target", nil, "Comma-separated API URLs of a running cluster's nodes; without it the bench starts a local cluster.")
	f.IntVar(&cfg.LocalNodes, "local-nodes", cfg.LocalNodes, "Number of server processes of the local cluster; more than 1 forms a Raft cluster on this host.")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "Length of each measured load run, as a Go duration such as 15s.")
	f.IntVar(&cfg.Machines, "machines", cfg.Machines, "Number of machines registered for the read scenarios, and of registrations in the register scenario.")
	f.IntVar(&cfg.Connections, "connections", cfg.Connections, "Concurrent connections of a closed-loop run, or the bound on requests in flight of an open-loop run.")
	f.IntVar(&cfg.Pipeline, "pipeline", cfg.Pipeline, "Signed reads in flight on each connection with HTTP/1.1 pipelining, over --connections divided by this many connections; 1 waits for each response, as the SDKs do.")
	f.Float64Var(&cfg.Rate, "rate", cfg.Rate, "Open-loop read rate in requests per second; 0 runs closed-loop (flood: rate of the normal reads, default 1000).")
	f.Float64Var(&cfg.FloodRate, "flood-rate", cfg.FloodRate, "Open-loop rate of the flood scenario's blocked requests in requests per second; 0 floods closed-loop with --connections connections.")
	f.BoolVar(&cfg.Presign, "presign", cfg.Presign, "Sign requests before each run so the bench's signing does not compete with a local server for CPU.")
	f.IntSliceVar(&cfg.Writers, "writers", cfg.Writers, "Comma-separated concurrent admin-writer counts of the writes scenario; mixed uses the first.")
	f.Var((*fractionList)(&cfg.Sweep), "sweep", "Comma-separated fractions of the maximum read rate at which reads also run open-loop; an empty value skips them.")
	f.DurationVar(&cfg.SweepDuration, "sweep-duration", cfg.SweepDuration, "Length of each sweep run (default a third of --duration, at least 1s).")
	f.IntSliceVar(&cfg.ScaleMachines, "scale-machines", cfg.ScaleMachines, "Comma-separated machine counts of the states the scale scenario builds, such as 1000,100000,1000000.")
	f.StringVar(&cfg.ScaleSetup, "scale-setup", cfg.ScaleSetup, "How the scale scenario registers machines: standard (a token, registration, approval, attachment and grant each: five log entries) or enrollment (one log entry each, through enrollment tokens of 10,000 uses).")
	f.IntVar(&cfg.Cores, "cores", cfg.Cores, "Cores the verify floor assumes the server has (default: the local nodes' CPUs, or this host's CPUs with --target).")
	f.StringVar(&cfg.NodeCPUs, "node-cpus", cfg.NodeCPUs, "CPUs of the local nodes on Linux, as a list such as 1 or 0-1,4, or all to share every CPU with the load generator (default: the upper half of the CPUs when there are at least 2).")
	f.StringVar(&cfg.LoadCPUs, "load-cpus", cfg.LoadCPUs, "CPUs of the load generator (this process) when it starts local nodes on Linux, as a list such as 0, or all (default: the CPUs that --node-cpus leaves).")
	f.DurationVar(&cfg.FloorTime, "floor-time", cfg.FloorTime, "Total CPU time spent timing the four Ed25519 verifiers of the floor.")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "Folder for the scale scenario's stores and, with --target, the fsync probe (default: the system temporary folder).")
	f.StringVar(&cfg.OutDir, "out-dir", "", "Folder that receives SVG plots of the results.")
}

func newBenchScenarioCmd(g *globalOptions, cfg *bench.Config, scenario string) *cobra.Command {
	return &cobra.Command{
		Use:   scenario,
		Short: benchScenarioHelp[scenario],
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			run := *cfg
			if err := g.fillBenchConfig(cmd, &run, scenario); err != nil {
				return err
			}
			report, err := bench.Run(ctx, run)
			if err != nil {
				return err
			}
			p := g.printer(cmd)
			if p.json() {
				return p.printJSON(report)
			}
			return report.WriteText(p.w)
		},
	}
}

// fillBenchConfig sets the fields of cfg that come from the global flags
// and the environment of the process.
func (g *globalOptions) fillBenchConfig(cmd *cobra.Command, cfg *bench.Config, scenario string) error {
	cfg.Scenario = scenario
	// NOTE: --client-cert-file is not passed on, so a target that requires
	// client certificates on the admin plane cannot be benchmarked yet.
	cfg.CAFile = g.caFile
	cfg.RequestTimeout = g.timeout
	cfg.Command = benchCommandLine(cmd)
	if len(cfg.Targets) > 0 {
		token, err := g.readToken()
		if err != nil {
			return err
		}
		cfg.Token = token
	}
	if len(cfg.Targets) == 0 && scenario != bench.ScenarioScale {
		exe, err := os.Executable()
		if err != nil {
			return withHints(fmt.Errorf("find this executable to start a local node: %w", err),
				"pass --target URL of a running cluster instead")
		}
		cfg.Binary = exe
	}

	stderr := cmd.ErrOrStderr()
	tty := isTerminal(stderr)
	if tty || g.output == outputText {
		cfg.Progress, cfg.ProgressTTY = stderr, tty
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// benchCommandLine rebuilds the command line from the flags that were set,
// for the report. The admin token is left out.
func benchCommandLine(cmd *cobra.Command) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name == "token" {
			return
		}
		value := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			value = strings.Join(sv.GetSlice(), ",")
		}
		if value == "" || strings.ContainsAny(value, " \t\"'") {
			value = strconv.Quote(value)
		}
		parts = append(parts, "--"+f.Name+" "+value)
	})
	return strings.Join(parts, " ")
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// fractionList is a comma-separated list of numbers where, unlike
// pflag's float slice, an empty value means an empty list.
type fractionList []float64

func (l *fractionList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (l *fractionList) Set(value string) error {
	*l = nil
	if strings.TrimSpace(value) == "" {
		return nil
	}
	for _, part := range strings.Split(value, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", part)
		}
		*l = append(*l, v)
	}
	return nil
}

func (l *fractionList) Type() string { return "fractions" }
