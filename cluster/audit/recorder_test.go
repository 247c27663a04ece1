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

// TestRecorder_UnverifiedRepeatsAreCounted mixes verified blocks with
// blocks rejected before signature verification. They share one key, so
// they fold into one entry whose "unverified" field counts the second
// kind. A window that opens with an unverified event marks its full entry.
func TestRecorder_UnverifiedRepeatsAreCounted(t *testing.T) {
	tn := startSingle(t, nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	r, _ := newTestRecorder(t, tn, clock, nil)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }

	r.Record(blocked(machineA, "198.51.100.7", at(0)))
	for i := range 12 {
		ev := blocked(machineA, "198.51.100.7", at(10+i))
		ev.Unverified = i%2 == 1 || i > 8
		r.Record(ev)
	}
	// A new window that opens with an unverified event.
	late := blocked(machineA, "198.51.100.7", at(61_000))
	late.Unverified = true
	r.Record(late)
	clock.Advance(3 * time.Minute)
	syncRecorder(t, r, true)

	entries := vaultEntries(t, tn.sm, "temp_machine_blocked")
	if len(entries) != 3 {
		t.Fatalf("%d entries, want the first, the folded repeats and the next window's first", len(entries))
	}
	unverified := func(e fsm.AuditEntry) (any, string) {
		var f map[string]any
		if err := json.Unmarshal(e.Fields, &f); err != nil {
			t.Fatalf("fields %s: %v", e.Fields, err)
		}
		ip, _ := f["ip"].(string)
		return f["unverified"], ip
	}
	if u, _ := unverified(entries[0]); u != nil {
		t.Errorf("the verified first entry has unverified %v", u)
	}
	u, ip := unverified(entries[1])
	if entries[1].Count != 12 || u != float64(7) {
		t.Errorf("folded entry count %d unverified %v, want 12 and 7", entries[1].Count, u)
	}
	if ip != "198.51.100.7" {
		t.Errorf("folded entry lost its other fields: %s", entries[1].Fields)
	}
	if u, _ := unverified(entries[2]); entries[2].Count != 1 || u != float64(1) {
		t.Errorf("next window's first entry count %d unverified %v, want 1 and 1", entries[2].Count, u)
	}
	if got := sumCounts(entries); got != 14 {
		t.Errorf("counts add up to %d, want 14", got)
	}
}

func TestWithUnverified_KeepsTheCount(t *testing.T) {
	cases := []struct {
		name   string
		fields string
		n      int64
		want   string
	}{
		{"none", `{"ip":"x"}`, 0, `{"ip":"x"}`},
		{"added", `{"ip":"x"}`, 3, `{"ip":"x","unverified":3}`},
		{"replaced", `{"unverified":1}`, 5, `{"unverified":5}`},
		{"empty", ``, 2, `{"unverified":2}`},
		{"not an object", `[1]`, 2, `{"unverified":2}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(withUnverified(json.RawMessage(c.fields), c.n)); got != c.want {
				t.Errorf("withUnverified(%s, %d) = %s, want %s", c.fields, c.n, got, c.want)
			}
		})
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

// stalledApplier holds every proposal until release is closed, as a
// stalled disk or a lost quorum would.
type stalledApplier struct {
	node    Applier
	release chan struct{}
}

func (s *stalledApplier) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.node.Apply(ctx, cmd)
}

// TestRecorder_StalledWritesKeepTheDropCount stalls the recorder's writes
// until far more events have arrived than it may hold. Every event ends up
// either in an entry or in the count of an audit_overflow entry, and that
// count equals the dropped metric. This needs the overflow report to wait
// for room instead of being dropped itself, and a dropped folded entry to
// count all its events.
func TestRecorder_StalledWritesKeepTheDropCount(t *testing.T) {
	tn := startSingle(t, nil)
	start := time.Now()
	clock := &fakeClock{now: start}
	stalled := &stalledApplier{node: tn, release: make(chan struct{})}
	r, m := newTestRecorder(t, stalled, clock, func(c *RecorderConfig) {
		c.QueueSize = 100
		c.BatchSize = 10
		c.MaxPending = 50
	})

	const distinct, repeats = 3_000, 50
	for i := range distinct {
		r.Record(blocked(machineA, fmt.Sprintf("198.51.%d.%d", i/250, i%250), start.Add(time.Duration(i)*time.Microsecond)))
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // let the loop take events, so pending fills
		}
	}
	for i := range repeats {
		r.Record(blocked(machineA, "203.0.113.9", start.Add(time.Duration(i)*time.Millisecond)))
	}
	time.Sleep(100 * time.Millisecond) // several flush intervals with pending full
	close(stalled.release)
	clock.Advance(2 * time.Minute)
	syncRecorder(t, r, true)

	all, err := tn.sm.AuditAfter("", 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	var logged, reported int64
	for _, e := range all {
		switch e.Action {
		case ActionOverflow:
			reported += e.Count
		case "temp_machine_blocked":
			logged += e.Count
		}
	}
	dropped := int64(counterValue(t, m.Dropped))
	if dropped == 0 {
		t.Fatal("nothing was dropped; the test did not fill the recorder")
	}
	if reported != dropped {
		t.Errorf("audit_overflow entries report %d dropped events, the metric counts %d", reported, dropped)
	}
	if logged+reported != distinct+repeats {
		t.Errorf("%d events logged and %d reported dropped, want them to add up to %d", logged, reported, distinct+repeats)
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
