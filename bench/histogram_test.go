package bench

import (
	"math"
	"testing"
	"time"
)

// within reports whether got is within rel (a fraction) of want.
func within(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*want
}

func TestHistogram_PercentilesOfUniformValues(t *testing.T) {
	h := newLatencyHistogram()
	for us := 1; us <= 10_000; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	got := h.summary()

	cases := []struct {
		name      string
		got, want float64
	}{
		{"p50", got.P50, 5.0},
		{"p90", got.P90, 9.0},
		{"p99", got.P99, 9.9},
		{"p99.9", got.P999, 9.99},
		{"max", got.Max, 10.0},
		{"mean", got.Mean, 5.0005},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Three significant digits: each value within 0.1%.
			if !within(c.got, c.want, 0.001) {
				t.Errorf("%s = %v ms, want %v ms within 0.1%%", c.name, c.got, c.want)
			}
		})
	}
	if got.Count != 10_000 {
		t.Errorf("count = %d, want 10000", got.Count)
	}
}

func TestHistogram_ClampsOutOfRange(t *testing.T) {
	cases := []struct {
		name string
		in   time.Duration
		want time.Duration
	}{
		{"negative", -5 * time.Millisecond, time.Microsecond},
		{"zero", 0, time.Microsecond},
		{"sub-microsecond", 300 * time.Nanosecond, time.Microsecond},
		{"over an hour", 3 * time.Hour, time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newLatencyHistogram()
			h.record(c.in)
			if h.count() != 1 {
				t.Fatalf("count = %d, want 1", h.count())
			}
			if got := h.quantile(100); !within(float64(got), float64(c.want), 0.001) {
				t.Errorf("recorded %v as %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestHistogram_MergeAddsCounts(t *testing.T) {
	fast, slow := newLatencyHistogram(), newLatencyHistogram()
	for range 900 {
		fast.record(time.Millisecond)
	}
	for range 100 {
		slow.record(100 * time.Millisecond)
	}
	fast.merge(slow)
	got := fast.summary()

	if got.Count != 1000 {
		t.Errorf("count = %d, want 1000", got.Count)
	}
	if !within(got.P50, 1, 0.001) {
		t.Errorf("p50 = %v ms, want 1", got.P50)
	}
	if !within(got.P99, 100, 0.001) {
		t.Errorf("p99 = %v ms, want 100", got.P99)
	}
}

func TestHistogram_EmptySummaryIsZero(t *testing.T) {
	if got := newLatencyHistogram().summary(); got != (Latency{}) {
		t.Errorf("summary of an empty histogram = %+v, want zero", got)
	}
}
