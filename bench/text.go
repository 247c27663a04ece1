package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report as aligned tables for a terminal.
func (rep *Report) WriteText(w io.Writer) error {
	sections := []func(io.Writer){rep.writeHeader, rep.writeFloor, rep.writeRuns, rep.writeResults, rep.writeScale, rep.writeFooter}
	for _, section := range sections {
		// Each section aligns its own columns.
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		section(tw)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func (rep *Report) writeFooter(w io.Writer) {
	if len(rep.Plots) > 0 {
		fmt.Fprintf(w, "\nPlots\n")
		for _, p := range rep.Plots {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}

func (rep *Report) writeHeader(w io.Writer) {
	fmt.Fprintf(w, "keyward bench %s\t%s, %.1f s\n", rep.Scenario, rep.StartedAt.Format(time.RFC3339), rep.Seconds)
	h := rep.Host
	host := fmt.Sprintf("%s/%s, %d CPUs, GOMAXPROCS %d, %s", h.OS, h.Arch, h.CPUs, h.GOMAXPROCS, h.GoVersion)
	if h.CPUModel != "" {
		host += ", " + h.CPUModel
	}
	if h.MemoryMiB > 0 {
		host += fmt.Sprintf(", %d MiB", h.MemoryMiB)
	}
	fmt.Fprintf(w, "host\t%s\n", host)
	if len(rep.Target.Nodes) > 0 {
		kind := "cluster"
		if rep.Target.Local {
			kind = "local"
		}
		fmt.Fprintf(w, "target\t%s: %s\n", kind, strings.Join(rep.Target.Nodes, ", "))
	}
	if p := rep.Placement; p != nil {
		fmt.Fprintf(w, "placement\t%s\n", describePlacement(p))
	}
	if s := rep.Setup; s != nil && s.Machines > 0 {
		fmt.Fprintf(w, "setup\tvault %s, %d machines, %.2f s\n", s.VaultID, s.Machines, s.Seconds)
	} else if s != nil {
		fmt.Fprintf(w, "setup\tvault %s, %.2f s\n", s.VaultID, s.Seconds)
	}
}

// describePlacement writes the CPUs of the nodes and of the load
// generator, each with the GOMAXPROCS it was given.
func describePlacement(p *Placement) string {
	if slices.Equal(p.NodeCPUs, p.LoadCPUs) {
		return fmt.Sprintf("nodes and load generator share CPUs %s", formatCPUList(p.NodeCPUs))
	}
	return fmt.Sprintf("nodes on CPUs %s (GOMAXPROCS %d), load generator on CPUs %s (GOMAXPROCS %d)",
		formatCPUList(p.NodeCPUs), len(p.NodeCPUs), formatCPUList(p.LoadCPUs), len(p.LoadCPUs))
}

func (rep *Report) writeFloor(w io.Writer) {
	f := rep.Floor
	where := "one core"
	if len(f.CPUs) > 0 {
		where = "one core of the nodes' CPUs " + formatCPUList(f.CPUs)
	}
	fmt.Fprintf(w, "\nFloor (measured in this run, %s)\n", where)
	fmt.Fprintf(w, "  crypto/ed25519 verify\t%.1f µs\n", f.StdlibVerifyMicros)
	fmt.Fprintf(w, "  curve25519-voi verify\t%.1f µs\n", f.VoiVerifyMicros)
	fmt.Fprintf(w, "  curve25519-voi verify, expanded key\t%.1f µs\t= %s verifies/s on %d cores\n",
		f.VoiExpandedVerifyMicros, count(f.VerifyFloorPerSecond), f.Cores)
	fmt.Fprintf(w, "  curve25519-voi batch of %d\t%.1f µs per signature\n", floorBatchSize, f.VoiBatchVerifyMicros)
	fmt.Fprintf(w, "  fsync of a 4 KiB append\t%.2f ms\tin %s\n", f.FsyncMedianMs, f.FsyncDir)
}

func (rep *Report) writeRuns(w io.Writer) {
	if len(rep.Runs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nRuns (latency in ms)\n")
	fmt.Fprintf(w, "  run\tmode\tconns\trate\tseconds\tok/s\tp50\tp90\tp99\tp99.9\tmax\tfailed\n")
	for _, r := range rep.Runs {
		rate := "-"
		if r.TargetRate > 0 {
			rate = count(r.TargetRate)
		}
		fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Name, r.Mode, r.Connections, rate, r.Seconds, count(r.PerSecond),
			ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max),
			formatErrors(r.Errors))
	}
	// Notes go after the table: a shorter line would break the columns.
	for _, r := range rep.Runs {
		if r.Unsent > 0 {
			fmt.Fprintf(w, "  %s: %d requests scheduled but never sent, so the target rate was not reached\n", r.Name, r.Unsent)
		}
	}
}

func (rep *Report) writeResults(w io.Writer) {
	fmt.Fprintf(w, "\nResult\n")
	if rep.ReadsPerSecond > 0 {
		fmt.Fprintf(w, "  readsPerSecond\t%s\n", count(rep.ReadsPerSecond))
	}
	fmt.Fprintf(w, "  verifyFloorPerSecond\t%s\n", count(rep.VerifyFloorPerSecond))
	if rep.RatioToVerifyFloor > 0 {
		fmt.Fprintf(w, "  ratioToVerifyFloor\t%.2f\n", rep.RatioToVerifyFloor)
	}
	writers := []func(io.Writer){rep.writeReads, rep.writeWrites, rep.writeMixed, rep.writeFlood, rep.writeRegister}
	for _, write := range writers {
		write(w)
	}
}

func (rep *Report) writeReads(w io.Writer) {
	res := rep.Reads
	if res == nil {
		return
	}
	if res.Pipeline > 1 {
		fmt.Fprintf(w, "  pipelining\t%d requests in flight per connection\n", res.Pipeline)
	}
	for _, n := range res.Nodes[1:] {
		fmt.Fprintf(w, "  reads on %d nodes\t%s/s\t%.2f × linear\n", n.Nodes, count(n.ReadsPerSecond), n.RatioToLinear)
	}
	for _, p := range res.Sweep {
		fmt.Fprintf(w, "  at %.0f%% of max (%s/s)\tp99/p50 %.2f\tp99.9/p50 %.2f\n",
			p.Fraction*100, count(p.TargetRate), p.P99OverP50, p.P999OverP50)
	}
}

func (rep *Report) writeWrites(w io.Writer) {
	res := rep.Writes
	if res == nil {
		return
	}
	for _, l := range res.Levels {
		fmt.Fprintf(w, "  %s\t%s writes/s\tp50 %s ms", writersName("writes", l.Writers), count(l.WritesPerSecond), ms(l.Latency.P50))
		if l.ServerCPUMicrosPerWrite > 0 {
			fmt.Fprintf(w, "\tserver %.0f µs CPU per write on %.2f cores", l.ServerCPUMicrosPerWrite, l.ServerCores)
		}
		fmt.Fprintln(w)
	}
	if res.RatioMaxWritersToOne > 0 {
		fmt.Fprintf(w, "  ratioMaxWritersToOne\t%.1f\n", res.RatioMaxWritersToOne)
	}
	fmt.Fprintf(w, "  roundTripP50Ms\t%s\n", ms(res.RoundTripP50Ms))
	if res.RatioToFsync > 0 {
		fmt.Fprintf(w, "  loneWriteP50Ms\t%s\n", ms(res.LoneWriteP50Ms))
		fmt.Fprintf(w, "  ratioToFsync\t%.1f\n", res.RatioToFsync)
	}
}

func (rep *Report) writeMixed(w io.Writer) {
	if res := rep.Mixed; res != nil {
		fmt.Fprintf(w, "  writes during the reads\t%s/s with %d writers, p50 %s ms\n",
			count(res.WritesPerSecond), res.Writers, ms(res.WriteLatency.P50))
	}
}

func (rep *Report) writeFlood(w io.Writer) {
	res := rep.Flood
	if res == nil {
		return
	}
	if res.FloodMode == modeOpen {
		fmt.Fprintf(w, "  flood\topen loop at %s/s\n", count(res.FloodTargetRate))
	} else {
		fmt.Fprintf(w, "  flood\tclosed loop, %d connections\n", res.FloodConnections)
	}
	fmt.Fprintf(w, "  normal reads alone\tp50 %s\tp99 %s\tp99.9 %s ms\n", ms(res.Baseline.P50), ms(res.Baseline.P99), ms(res.Baseline.P999))
	fmt.Fprintf(w, "  normal reads under flood\tp50 %s\tp99 %s\tp99.9 %s ms\n", ms(res.UnderFlood.P50), ms(res.UnderFlood.P99), ms(res.UnderFlood.P999))
	fmt.Fprintf(w, "  ratio under flood / alone\tp50 %.2f\tp99 %.2f\tp99.9 %.2f\n", res.P50Ratio, res.P99Ratio, res.P999Ratio)
	fmt.Fprintf(w, "  blocked requests\t%s/s\n", count(res.BlockedPerSecond))
	if res.ThrottledPerSecond != nil {
		fmt.Fprintf(w, "  rejected before verification\t%s/s", count(*res.ThrottledPerSecond))
		if res.ThrottledShare != nil {
			fmt.Fprintf(w, " (%.0f%% of blocked)", 100**res.ThrottledShare)
		}
		fmt.Fprintln(w)
	}
}

func (rep *Report) writeRegister(w io.Writer) {
	if res := rep.Register; res != nil {
		fmt.Fprintf(w, "  registrations\t%d at %s/s\tp50 %s ms\tp99 %s ms\n",
			res.Machines, count(res.RegistrationsPerSecond), ms(res.Latency.P50), ms(res.Latency.P99))
	}
}

func (rep *Report) writeScale(w io.Writer) {
	res := rep.Scale
	if res == nil {
		return
	}
	fmt.Fprintf(w, "\nScale, %s setup (bytes are Go heap in use after GC, per machine)\n", res.Setup)
	fmt.Fprintf(w, "  machines\tentries/s\tbytes/machine\tafter re-open\tRSS\tsnapshot\tsnapshot s\trestore s\tre-open s\n")
	for _, p := range res.Sizes {
		fmt.Fprintf(w, "  %s\t%s\t%.0f\t%.0f\t%s\t%s\t%.2f\t%.2f\t%.2f\n",
			count(float64(p.Machines)), count(p.ApplyEntriesPerSecond), p.BytesPerMachine, p.ReopenBytesPerMachine,
			byteSize(p.ResidentBytes), byteSize(p.SnapshotBytes), p.SnapshotSeconds, p.RestoreSeconds, p.ReopenSeconds)
	}
	if res.RatioReopenLargestToSmallest > 0 {
		fmt.Fprintf(w, "  ratioReopenLargestToSmallest\t%.2f\n", res.RatioReopenLargestToSmallest)
	}
}

// count formats a rate or count with thousands separators, no decimals.
func count(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ms formats milliseconds with about three significant digits and no
// exponent.
func ms(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// formatErrors lists the failures as "status×count" in key order, or 0.
func formatErrors(errs map[string]int64) string {
	if len(errs) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, errs[k]))
	}
	return strings.Join(parts, " ")
}
