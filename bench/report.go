package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Report is the result of one bench run. Fields of the other scenarios
// are omitted, and the floor is measured in every run.
type Report struct {
	Scenario  string    `json:"scenario"`
	Command   string    `json:"command,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	Seconds   float64   `json:"seconds"`
	Host      Host      `json:"host"`
	Target    Target    `json:"target"`
	// Placement is the CPUs of the local nodes and the load generator,
	// omitted with --target and where the bench cannot pin processes.
	Placement *Placement `json:"placement,omitempty"`
	Floor     Floor      `json:"floor"`
	Setup     *Setup     `json:"setup,omitempty"`

	// ReadsPerSecond is the successful signed reads per second on one node
	// (reads), or during writes (mixed).
	ReadsPerSecond float64 `json:"readsPerSecond,omitempty"`
	// VerifyFloorPerSecond repeats Floor.VerifyFloorPerSecond: cores
	// divided by the expanded-key verify time, measured in this run.
	VerifyFloorPerSecond float64 `json:"verifyFloorPerSecond"`
	// RatioToVerifyFloor is ReadsPerSecond / VerifyFloorPerSecond.
	RatioToVerifyFloor float64 `json:"ratioToVerifyFloor,omitempty"`

	Reads    *ReadsResult    `json:"reads,omitempty"`
	Writes   *WritesResult   `json:"writes,omitempty"`
	Mixed    *MixedResult    `json:"mixed,omitempty"`
	Flood    *FloodResult    `json:"flood,omitempty"`
	Register *RegisterResult `json:"register,omitempty"`
	Scale    *ScaleResult    `json:"scale,omitempty"`

	// Runs are every load run in the order they ran.
	Runs []LoadRun `json:"runs,omitempty"`
	// Plots are the SVG files written to the output folder.
	Plots []string `json:"plots,omitempty"`
	// Notes explain figures that need context, such as a local cluster
	// sharing the bench's cores.
	Notes []string `json:"notes,omitempty"`
}

// Host describes the machine the bench ran on.
type Host struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpuModel,omitempty"`
	MemoryMiB  int64  `json:"memoryMiB,omitempty"`
	GoVersion  string `json:"goVersion"`
}

// Target describes the cluster under test.
type Target struct {
	// Local is true when the bench started the nodes itself. They then
	// share this host's cores with the load generator.
	Local bool     `json:"local"`
	Nodes []string `json:"nodes,omitempty"`
}

// ReadsResult is the reads scenario's result.
type ReadsResult struct {
	Machines int `json:"machines"`
	// Presigned is true when requests were signed before each run.
	Presigned bool `json:"presigned"`
	// Pipeline is the number of requests in flight on each connection:
	// above 1, the reads were sent with HTTP/1.1 pipelining.
	Pipeline int `json:"pipeline"`
	// Nodes is the read rate against the first k target nodes, for k = 1
	// to the number of targets, spread evenly.
	Nodes []NodeScaling `json:"nodes"`
	// RatioAcrossNodes is the rate on every target divided by the number
	// of targets times the one-node rate, omitted with one target.
	RatioAcrossNodes float64 `json:"ratioAcrossNodes,omitempty"`
	// Sweep is open-loop latency at fractions of the one-node rate.
	Sweep []SweepPoint `json:"sweep,omitempty"`
	// CPU is the CPU time behind the one-node run, for a local node.
	CPU *ReadsCPU `json:"cpu,omitempty"`
}

// NodeScaling is the read rate against a number of nodes.
type NodeScaling struct {
	Nodes          int     `json:"nodes"`
	ReadsPerSecond float64 `json:"readsPerSecond"`
	// RatioToLinear is ReadsPerSecond / (Nodes × the one-node rate).
	RatioToLinear float64 `json:"ratioToLinear"`
}

// SweepPoint is one open-loop run at a fraction of the maximum read rate.
type SweepPoint struct {
	Fraction       float64 `json:"fraction"`
	TargetRate     float64 `json:"targetRate"`
	ReadsPerSecond float64 `json:"readsPerSecond"`
	Latency        Latency `json:"latencyMs"`
	P99OverP50     float64 `json:"p99OverP50"`
	P999OverP50    float64 `json:"p999OverP50"`
}

// WritesResult is the writes scenario's result.
type WritesResult struct {
	Levels []WriteLevel `json:"levels"`
	// RatioMaxWritersToOne is the rate of the largest writer count divided
	// by the rate of one writer, omitted unless both ran.
	RatioMaxWritersToOne float64 `json:"ratioMaxWritersToOne,omitempty"`
	// LoneWriteP50Ms is the median latency with one writer.
	LoneWriteP50Ms float64 `json:"loneWriteP50Ms,omitempty"`
	// RoundTripP50Ms is the median of GET /v1/sys/health, an HTTP round
	// trip that writes nothing.
	RoundTripP50Ms float64 `json:"roundTripP50Ms"`
	// RatioToFsync is LoneWriteP50Ms / Floor.FsyncMedianMs.
	RatioToFsync float64 `json:"ratioToFsync,omitempty"`
}

// WriteLevel is the write rate and latency at one writer count.
type WriteLevel struct {
	Writers         int     `json:"writers"`
	WritesPerSecond float64 `json:"writesPerSecond"`
	Latency         Latency `json:"latencyMs"`
	// ServerCPUMicrosPerWrite is the CPU time that the local nodes used
	// during the run divided by the successful writes, and ServerCores
	// that CPU time divided by the run's length: how many cores the nodes
	// got. Both are omitted with --target.
	ServerCPUMicrosPerWrite float64 `json:"serverCpuMicrosPerWrite,omitempty"`
	ServerCores             float64 `json:"serverCores,omitempty"`
}

// MixedResult is the mixed scenario's result: reads while writers run.
type MixedResult struct {
	Writers         int     `json:"writers"`
	ReadsPerSecond  float64 `json:"readsPerSecond"`
	WritesPerSecond float64 `json:"writesPerSecond"`
	ReadLatency     Latency `json:"readLatencyMs"`
	WriteLatency    Latency `json:"writeLatencyMs"`
}

// FloodResult compares normal reads with and without a flood of blocked
// requests from another machine.
type FloodResult struct {
	NormalRate float64 `json:"normalRate"`
	// FloodMode is "closed" (FloodConnections connections, each sending
	// its next request when the last one completes) or "open" (at
	// FloodTargetRate per second).
	FloodMode        string  `json:"floodMode"`
	FloodConnections int     `json:"floodConnections"`
	FloodTargetRate  float64 `json:"floodTargetRate,omitempty"`
	Baseline         Latency `json:"baselineLatencyMs"`
	UnderFlood       Latency `json:"underFloodLatencyMs"`
	// P50Ratio, P99Ratio and P999Ratio divide each percentile of the
	// normal reads under the flood by the same percentile alone.
	P50Ratio  float64 `json:"p50Ratio"`
	P99Ratio  float64 `json:"p99Ratio"`
	P999Ratio float64 `json:"p999Ratio"`
	// BlockedPerSecond counts the flood's 403 responses per second.
	BlockedPerSecond float64 `json:"blockedPerSecond"`
	// ThrottledPerSecond counts the blocked requests that the node
	// rejected before signature verification, from the rise of its
	// keyward_guardrail_throttled_total during the flood. It is omitted
	// when the node does not export that metric.
	ThrottledPerSecond *float64 `json:"throttledPerSecond,omitempty"`
	// ThrottledShare is ThrottledPerSecond / BlockedPerSecond.
	ThrottledShare    *float64         `json:"throttledShare,omitempty"`
	BlockedStatuses   map[string]int64 `json:"blockedOtherStatuses"`
	NormalErrorsFlood map[string]int64 `json:"normalErrorsUnderFlood"`
}

// RegisterResult is the register scenario's result.
type RegisterResult struct {
	Machines               int     `json:"machines"`
	RegistrationsPerSecond float64 `json:"registrationsPerSecond"`
	Latency                Latency `json:"latencyMs"`
}

// newReport starts a report for cfg.
func newReport(cfg Config, started time.Time) *Report {
	return &Report{Scenario: cfg.Scenario, Command: cfg.Command, StartedAt: started.UTC(), Host: describeHost()}
}

// describeHost reads the CPU model and memory size from /proc on Linux.
// Elsewhere those fields stay empty.
func describeHost() Host {
	h := Host{
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
	}
	h.CPUModel = procField("/proc/cpuinfo", "model name")
	h.MemoryMiB = procKiB("/proc/meminfo", "MemTotal") / 1024
	return h
}

// procKiB returns a "name: N kB" field of path in KiB, or zero.
func procKiB(path, name string) int64 {
	var kib int64
	if _, err := fmt.Sscanf(procField(path, name), "%d kB", &kib); err != nil {
		return 0
	}
	return kib
}

// procField returns the value of the first "name : value" line of path.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == name {
			return strings.TrimSpace(value)
		}
	}
	return ""
}
