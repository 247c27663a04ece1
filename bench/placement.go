package bench

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// cpuListAll is the value of --node-cpus and --load-cpus that means
// every CPU this process may run on.
const cpuListAll = "all"

// maxCPUs bounds the CPU numbers of a CPU list. It is the size of the
// kernel's default cpu_set_t (CPU_SETSIZE), which golang.org/x/sys/unix's
// CPUSet also has.
const maxCPUs = 1024

// errNoPlacement is returned by allowedCPUs where the bench cannot pin
// processes to CPUs.
var errNoPlacement = errors.New("CPU placement needs Linux's sched_setaffinity")

// Placement is the CPUs that the local nodes and the load generator (the
// bench process) ran on. Lists that overlap mean the nodes shared those
// CPUs with the load generator.
type Placement struct {
	NodeCPUs []int `json:"nodeCpus"`
	LoadCPUs []int `json:"loadCpus"`
}

// cpuPlacement is a resolved placement with the CPUs the process could
// use before it, which tell which side needs pinning.
type cpuPlacement struct {
	allowed []int
	node    []int
	load    []int
}

// nodePinned reports whether the nodes run on fewer CPUs than the bench
// could use, so they must be pinned.
func (p *cpuPlacement) nodePinned() bool {
	return p != nil && !slices.Equal(p.node, p.allowed)
}

func (p *cpuPlacement) loadPinned() bool {
	return p != nil && !slices.Equal(p.load, p.allowed)
}

// pinnedNodeCPUs returns the CPUs to pin the nodes to, or nil when they
// are not pinned.
func (p *cpuPlacement) pinnedNodeCPUs() []int {
	if !p.nodePinned() {
		return nil
	}
	return p.node
}

// resolvePlacement turns the --node-cpus and --load-cpus values into CPU
// sets within allowed. An empty value is the default: with both empty and
// at least two CPUs allowed, the nodes get the upper half of the allowed
// CPUs (the larger half for an odd count) and the load generator the rest.
// With one side given, the other gets the allowed CPUs that it leaves, or
// every allowed CPU when it leaves none.
func resolvePlacement(nodeSpec, loadSpec string, allowed []int) (cpuPlacement, error) {
	p := cpuPlacement{allowed: slices.Clone(allowed)}
	var err error
	if p.node, err = resolveCPUSpec("--node-cpus", nodeSpec, allowed); err != nil {
		return p, err
	}
	if p.load, err = resolveCPUSpec("--load-cpus", loadSpec, allowed); err != nil {
		return p, err
	}
	switch {
	case p.node == nil && p.load == nil:
		p.node, p.load = splitCPUs(p.allowed)
	case p.node == nil:
		p.node = cpusOutside(p.allowed, p.load)
	case p.load == nil:
		p.load = cpusOutside(p.allowed, p.node)
	}
	return p, nil
}

// resolveCPUSpec returns the CPUs of one flag's value, nil for an empty
// value. Every CPU must be in allowed.
func resolveCPUSpec(flag, spec string, allowed []int) ([]int, error) {
	switch strings.TrimSpace(spec) {
	case "":
		return nil, nil
	case cpuListAll:
		return slices.Clone(allowed), nil
	}
	cpus, err := parseCPUList(spec)
	if err != nil {
		return nil, invalidf("%s: %v", flag, err)
	}
	for _, cpu := range cpus {
		if !slices.Contains(allowed, cpu) {
			return nil, invalidf("%s %s: CPU %d is not available to this process, which may run on CPUs %s",
				flag, spec, cpu, formatCPUList(allowed))
		}
	}
	return cpus, nil
}

// splitCPUs gives the upper half of allowed to the nodes and the rest to
// the load generator, or allowed to both when it has fewer than two CPUs.
func splitCPUs(allowed []int) (node, load []int) {
	if len(allowed) < 2 {
		return slices.Clone(allowed), slices.Clone(allowed)
	}
	half := len(allowed) / 2
	return slices.Clone(allowed[half:]), slices.Clone(allowed[:half])
}

// cpusOutside returns the CPUs of allowed that are not in used, or all of
// allowed when used covers it.
func cpusOutside(allowed, used []int) []int {
	rest := slices.DeleteFunc(slices.Clone(allowed), func(cpu int) bool { return slices.Contains(used, cpu) })
	if len(rest) == 0 {
		return slices.Clone(allowed)
	}
	return rest
}

// parseCPUList parses a list of CPU numbers and ranges in the kernel's
// cpulist format, such as "1" or "0-3,8" (without the ":stride" form). It
// returns the CPUs sorted and without duplicates.
func parseCPUList(list string) ([]int, error) {
	if strings.TrimSpace(list) == "" {
		return nil, fmt.Errorf("CPU list is empty; give CPU numbers such as 1 or 0-1")
	}
	seen := map[int]bool{}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parseCPU(lo, list)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = parseCPU(hi, list); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("invalid CPU list %q: range %q ends below its start", list, strings.TrimSpace(part))
			}
		}
		for cpu := first; cpu <= last; cpu++ {
			seen[cpu] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

func parseCPU(s, list string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid CPU list %q: %q is not a CPU number", list, s)
	}
	if n >= maxCPUs {
		return 0, fmt.Errorf("invalid CPU list %q: CPU %d is above the maximum of %d", list, n, maxCPUs-1)
	}
	return int(n), nil
}

// formatCPUList writes sorted CPUs in the kernel's cpulist format, with
// runs of consecutive CPUs as ranges: [0 1 2 5] is "0-2,5".
func formatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// placeCPUs resolves the placement of a local cluster and pins the bench
// process to the load generator's CPUs. Where placement is unavailable,
// the nodes share the CPUs with the load generator, as an explicit "all"
// would have them.
func (r *runner) placeCPUs() error {
	allowed, err := allowedCPUs()
	if err != nil {
		flags := []struct{ name, spec string }{{"--node-cpus", r.cfg.NodeCPUs}, {"--load-cpus", r.cfg.LoadCPUs}}
		for _, f := range flags {
			if s := strings.TrimSpace(f.spec); s != "" && s != cpuListAll {
				return invalidf("%s %s: %v", f.name, f.spec, err)
			}
		}
		r.log.Info("the local nodes share the CPUs with the load generator", "reason", err)
		return nil
	}
	p, err := resolvePlacement(r.cfg.NodeCPUs, r.cfg.LoadCPUs, allowed)
	if err != nil {
		return err
	}
	if p.loadPinned() {
		restore, err := pinProcess(p.load)
		if err != nil {
			return fmt.Errorf("pin the load generator to CPUs %s: %w", formatCPUList(p.load), err)
		}
		r.restoreCPUs = restore
	}
	r.placement = &p
	r.report.Placement = &Placement{NodeCPUs: p.node, LoadCPUs: p.load}
	r.log.Info("placed the local nodes and the load generator",
		"nodeCpus", formatCPUList(p.node), "loadCpus", formatCPUList(p.load))
	return nil
}

// floorCores returns the core count of the verify floor: Config.Cores
// when set, else the local nodes' CPUs, else this host's CPUs.
func (r *runner) floorCores() int {
	switch {
	case r.cfg.Cores > 0:
		return r.cfg.Cores
	case r.placement != nil:
		return len(r.placement.node)
	}
	return runtime.NumCPU()
}

// placementNote describes for the report where the local nodes ran.
func (r *runner) placementNote() string {
	p := r.placement
	switch {
	case p == nil:
		return fmt.Sprintf("the bench started %d local node(s) on this host; they share its %d CPU(s) with the load generator",
			r.cfg.LocalNodes, r.report.Host.CPUs)
	case !p.nodePinned() && !p.loadPinned():
		return fmt.Sprintf("the bench started %d local node(s) on this host; they share CPUs %s with the load generator",
			r.cfg.LocalNodes, formatCPUList(p.allowed))
	}
	return fmt.Sprintf("the bench started %d local node(s) on CPUs %s (GOMAXPROCS %d) and ran the load generator on CPUs %s (GOMAXPROCS %d)",
		r.cfg.LocalNodes, formatCPUList(p.node), len(p.node), formatCPUList(p.load), len(p.load))
}
