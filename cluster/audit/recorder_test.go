package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keyward/keyward/fsm"
)

const machineA = "11111111-1111-4111-8111-111111111111"

func newTestRecorder(t *testing.T, node Applier, clock *fakeClock, edit func(*RecorderConfig)) (*Recorder, *Metrics) {
	t.Helper()
	cfg := DefaultRecorderConfig()
	cfg.NodeID = "node-1"
	cfg.Now = clock.Now
	cfg.FlushInterval = 20 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	m := NewMetrics()
	r, err := NewRecorder(cfg, node, m, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeRecorder(t, r) })
	return r, m
}

func closeRecorder(t *testing.T, r *Recorder) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Errorf("close recorder: %v", err)
	}
}

func syncRecorder(t *testing.T, r *Recorder, closeWindows bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Sync(ctx, closeWindows); err != nil {
		t.Fatalf("sync recorder: %v", err)
	}
}

func sumCounts(entries []fsm.AuditEntry) int64 {
	var n int64
	for _, e := range entries {
		n += e.Count
	}
	return n
}

// TestRecorder_FloodFromOneMachineCoalesces records 10,000 blocked requests
// of one machine within one window: the log holds the first in full at
// once and one folded entry when the window ends, with counts adding up.
func TestRecorder_FloodFromOneMachineCoalesces(t *testing.T) {
	tn := startSingle(t, nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	r, _ := newTestRecorder(t, tn, clock, nil)

	for i := range 10_000 {
		r.Record(blocked(machineA, "198.51.100.7", start.Add(time.Duration(i)*time.Millisecond)))
	}
	syncRecorder(t, r, false)
	entries := vaultEntries(t, tn.sm, "temp_machine_blocked")
	if len(entries) != 1 || entries[0].Count != 1 || entries[0].Timestamp != start.UnixMilli() {
		t.Fatalf("before the window ends: %+v, want the first event in full", entries)
	}
	if entries[0].Detail == "" || len(entries[0].Fields) == 0 || entries[0].SourceIP != "198.51.100.7" {
		t.Fatalf("first entry is not complete: %+v", entries[0])
	}

	clock.Advance(61 * time.Second)
	syncRecorder(t, r, false)
	entries = vaultEntries(t, tn.sm, "temp_machine_blocked")
	if len(entries) != 2 {
		t.Fatalf("%d entries after the window, want 2", len(entries))
	}
	folded := entries[1]
	wantFirst, wantLast := start.Add(time.Millisecond).UnixMilli(), start.Add(9_999*time.Millisecond).UnixMilli()
	if folded.Count != 9_999 || folded.FirstAt != wantFirst || folded.Timestamp != wantLast {
		t.Fatalf("folded entry count %d firstAt %d timestamp %d; want 9999, %d, %d",
			folded.Count, folded.FirstAt, folded.Timestamp, wantFirst, wantLast)
	}
	if got := sumCounts(entries); got != 10_000 {
		t.Fatalf("counts add up to %d, want 10000", got)
	}
}

func TestRecorder_WindowFolding(t *testing.T) {
	tn := startSingle(t, nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	r, _ := newTestRecorder(t, tn, clock, nil)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }

	other := blocked(machineA, "198.51.100.7", at(5))
	other.Axes = "country:country_not_allowed:false"
	for _, ev := range []Event{
		blocked(machineA, "198.51.100.7", at(0)),  // first of window 1: in full
		blocked(machineA, "198.51.100.7", at(10)), // folded
		other,                                    // other axes: its own key, in full
		blocked(machineA, "203.0.113.4", at(20)), // other source: in full
		blocked(machineA, "198.51.100.7", at(30)), // folded
		blocked(machineA, "198.51.100.7", at(70)), // ends window 1, starts window 2 in full
		blocked(machineA, "198.51.100.7", at(80)), // folded into window 2
	} {
		r.Record(ev)
	}
	clock.Advance(200 * time.Second)
	syncRecorder(t, r, false)

	type row struct {
		source, axes  string
		count         int64
		first, latest int
	}
	var got []row
	for _, e := range vaultEntries(t, tn.sm, "temp_machine_blocked") {
		var f map[string]any
		json.Unmarshal(e.Fields, &f)
		got = append(got, row{e.SourceIP, f["ip"].(string), e.Count,
			int(time.UnixMilli(e.FirstAt).Sub(start) / time.Second), int(time.UnixMilli(e.Timestamp).Sub(start) / time.Second)})
	}
	want := []row{
		{"198.51.100.7", "198.51.100.7", 1, 0, 0},
		{"198.51.100.7", "198.51.100.7", 1, 5, 5},
		{"203.0.113.4", "203.0.113.4", 1, 20, 20},
		{"198.51.100.7", "198.51.100.7", 2, 10, 30},
		{"198.51.100.7", "198.51.100.7", 1, 70, 70},
		{"198.51.100.7", "198.51.100.7", 1, 80, 80},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestRecorder_OverflowIsCountedAndReported fills a tiny queue faster than
// it drains: every event is either in an entry or counted in the
// audit_overflow entry, and Record never blocks.
func TestRecorder_OverflowIsCountedAndReported(t *testing.T) {
	tn := startSingle(t, nil)
	start := time.Now()
	clock := &fakeClock{now: start}
	r, m := newTestRecorder(t, tn, clock, func(c *RecorderConfig) { c.QueueSize = 4 })

	const events = 20_000
	began := time.Now()
	for i := range events {
		// Distinct sources: each event is its own key, written in full.
		r.Record(blocked(machineA, "198.51.100."+itoa(i%250), start.Add(time.Duration(i)*time.Microsecond)))
	}
	if elapsed := time.Since(began); elapsed > 2*time.Second {
		t.Fatalf("recording %d events took %s; Record must not block", events, elapsed)
	}
	dropped := int64(counterValue(t, m.Dropped))
	if dropped == 0 {
		t.Fatal("a 4-event queue dropped nothing; the test does not reach overflow")
	}
	clock.Advance(2 * time.Minute)
	syncRecorder(t, r, true)

	blockedCount := sumCounts(vaultEntries(t, tn.sm, "temp_machine_blocked"))
	all, err := tn.sm.AuditAfter("", 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	var reported int64
	for _, e := range all {
		if e.Action == ActionOverflow {
			reported += e.Count
		}
	}
	if reported != dropped || blockedCount+reported != events {
		t.Fatalf("entries count %d, overflow reports %d, metric %d; want the two to add up to %d",
			blockedCount, reported, dropped, events)
	}
	if r.Dropped() != 0 {
		t.Fatalf("%d drops not yet reported after the queue drained", r.Dropped())
	}
}

func itoa(i int) string { return fmt.Sprint(i) }

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
