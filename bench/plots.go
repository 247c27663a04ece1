package bench

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// writePlots writes the scenario's charts to OutDir as SVG files and lists
// them in the report. It does nothing without OutDir.
func (r *runner) writePlots() error {
	if r.cfg.OutDir == "" {
		return nil
	}
	if err := os.MkdirAll(r.cfg.OutDir, 0o755); err != nil {
		return fmt.Errorf("create --out-dir %s: %w", r.cfg.OutDir, err)
	}
	for name, chart := range r.report.charts() {
		path := filepath.Join(r.cfg.OutDir, name)
		if err := os.WriteFile(path, chart.svg(), 0o644); err != nil {
			return fmt.Errorf("write plot %s: %w", path, err)
		}
		r.report.Plots = append(r.report.Plots, path)
	}
	slices.Sort(r.report.Plots)
	return nil
}

// charts returns the charts of the report by file name.
func (rep *Report) charts() map[string]lineChart {
	out := map[string]lineChart{}
	if rep.Reads != nil {
		out["reads-latency.svg"] = readsLatencyChart(rep)
		out["reads-nodes.svg"] = readsNodesChart(rep.Reads)
	}
	if rep.Writes != nil {
		out["writes-latency.svg"] = writesLatencyChart(rep.Writes)
		out["writes-throughput.svg"] = writesThroughputChart(rep.Writes)
	}
	if rep.Flood != nil {
		out["flood-latency.svg"] = floodChart(rep.Flood)
	}
	if rep.Scale != nil && len(rep.Scale.Sizes) > 0 {
		out["scale-memory.svg"] = scaleMemoryChart(rep.Scale)
		out["scale-times.svg"] = scaleTimesChart(rep.Scale)
	}
	return out
}

// percentileSeries returns one series per percentile of the latencies,
// placed at the x values given.
func percentileSeries(xs []float64, lats []Latency) []chartSeries {
	pick := []struct {
		name string
		get  func(Latency) float64
	}{
		{"p50", func(l Latency) float64 { return l.P50 }},
		{"p90", func(l Latency) float64 { return l.P90 }},
		{"p99", func(l Latency) float64 { return l.P99 }},
		{"p99.9", func(l Latency) float64 { return l.P999 }},
	}
	var out []chartSeries
	for _, p := range pick {
		s := chartSeries{name: p.name}
		for i, l := range lats {
			s.points = append(s.points, chartPoint{xs[i], p.get(l)})
		}
		out = append(out, s)
	}
	return out
}

// readsLatencyChart plots latency against achieved rate: the open-loop
// sweep points and the closed-loop maximum on one node.
func readsLatencyChart(rep *Report) lineChart {
	type sample struct {
		rate float64
		lat  Latency
	}
	var samples []sample
	for _, p := range rep.Reads.Sweep {
		samples = append(samples, sample{p.ReadsPerSecond, p.Latency})
	}
	for _, run := range rep.Runs {
		if run.Nodes == 1 && run.Mode == modeClosed {
			samples = append(samples, sample{run.PerSecond, run.Latency})
		}
	}
	slices.SortFunc(samples, func(a, b sample) int { return cmp.Compare(a.rate, b.rate) })
	var xs []float64
	var lats []Latency
	for _, s := range samples {
		xs = append(xs, s.rate)
		lats = append(lats, s.lat)
	}
	return lineChart{
		title: "Signed reads on one node: latency against load", xLabel: "reads per second",
		yLabel: "latency (ms)", series: percentileSeries(xs, lats),
	}
}

func readsNodesChart(res *ReadsResult) lineChart {
	measured, linear := chartSeries{name: "measured"}, chartSeries{name: "N × one node"}
	for _, n := range res.Nodes {
		measured.points = append(measured.points, chartPoint{float64(n.Nodes), n.ReadsPerSecond})
		linear.points = append(linear.points, chartPoint{float64(n.Nodes), float64(n.Nodes) * res.Nodes[0].ReadsPerSecond})
	}
	var ticks []axisTick
	for _, n := range res.Nodes {
		ticks = append(ticks, axisTick{float64(n.Nodes), fmt.Sprint(n.Nodes)})
	}
	return lineChart{
		title: "Signed reads against node count", xLabel: "nodes", yLabel: "reads per second",
		series: []chartSeries{measured, linear}, xTicks: ticks,
	}
}

func writesLatencyChart(res *WritesResult) lineChart {
	levels := slices.Clone(res.Levels)
	slices.SortFunc(levels, func(a, b WriteLevel) int { return cmp.Compare(a.WritesPerSecond, b.WritesPerSecond) })
	var xs []float64
	var lats []Latency
	for _, l := range levels {
		xs = append(xs, l.WritesPerSecond)
		lats = append(lats, l.Latency)
	}
	return lineChart{
		title: "Admin writes: latency against load", xLabel: "writes per second",
		yLabel: "latency (ms)", series: percentileSeries(xs, lats),
	}
}

func writesThroughputChart(res *WritesResult) lineChart {
	s := chartSeries{name: "writes/s"}
	var ticks []axisTick
	for _, l := range res.Levels {
		s.points = append(s.points, chartPoint{float64(l.Writers), l.WritesPerSecond})
		ticks = append(ticks, axisTick{float64(l.Writers), fmt.Sprint(l.Writers)})
	}
	return lineChart{
		title: "Admin writes against concurrent writers", xLabel: "concurrent writers",
		yLabel: "writes per second", series: []chartSeries{s}, xTicks: ticks,
	}
}

func floodChart(res *FloodResult) lineChart {
	ticks := []axisTick{{1, "p50"}, {2, "p90"}, {3, "p99"}, {4, "p99.9"}, {5, "max"}}
	series := func(name string, l Latency) chartSeries {
		return chartSeries{name: name, points: []chartPoint{{1, l.P50}, {2, l.P90}, {3, l.P99}, {4, l.P999}, {5, l.Max}}}
	}
	return lineChart{
		title:  fmt.Sprintf("Normal reads at %.0f/s with and without a blocked flood", res.NormalRate),
		xLabel: "percentile", yLabel: "latency (ms)", xTicks: ticks,
		series: []chartSeries{series("alone", res.Baseline), series("under flood", res.UnderFlood)},
	}
}

func scaleMemoryChart(res *ScaleResult) lineChart {
	built, reopened := chartSeries{name: "after build"}, chartSeries{name: "after re-open"}
	for _, p := range res.Sizes {
		built.points = append(built.points, chartPoint{float64(p.Machines), p.BytesPerMachine})
		reopened.points = append(reopened.points, chartPoint{float64(p.Machines), p.ReopenBytesPerMachine})
	}
	return lineChart{
		title: "Heap in use per machine", xLabel: "machines", yLabel: "bytes per machine",
		series: []chartSeries{built, reopened}, logX: true,
	}
}

func scaleTimesChart(res *ScaleResult) lineChart {
	snap, restore, reopen := chartSeries{name: "snapshot"}, chartSeries{name: "restore"}, chartSeries{name: "re-open"}
	for _, p := range res.Sizes {
		x := float64(p.Machines)
		snap.points = append(snap.points, chartPoint{x, p.SnapshotSeconds})
		restore.points = append(restore.points, chartPoint{x, p.RestoreSeconds})
		reopen.points = append(reopen.points, chartPoint{x, p.ReopenSeconds})
	}
	return lineChart{
		title: "Snapshot, restore and re-open time", xLabel: "machines", yLabel: "seconds",
		series: []chartSeries{snap, restore, reopen}, logX: true,
	}
}
