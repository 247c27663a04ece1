package bench

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds. Latencies are recorded in microseconds with three
// significant digits, so every reported value is within 0.1% of the value
// recorded, from 1 µs up to one hour.
const (
	histogramMinMicros = 1
	histogramMaxMicros = int64(time.Hour / time.Microsecond)
	histogramDigits    = 3
)

// latencyHistogram is an HDR histogram of durations. It is not safe for
// concurrent use: each load worker records into its own and the results
// are merged after the run.
type latencyHistogram struct {
	h *hdrhistogram.Histogram
}

func newLatencyHistogram() *latencyHistogram {
	return &latencyHistogram{h: hdrhistogram.New(histogramMinMicros, histogramMaxMicros, histogramDigits)}
}

// record adds d, clamped to the histogram's range, so that a timer glitch
// (a negative or absurd duration) is counted rather than lost.
func (l *latencyHistogram) record(d time.Duration) {
	us := d.Microseconds()
	if us < histogramMinMicros {
		us = histogramMinMicros
	}
	if us > histogramMaxMicros {
		us = histogramMaxMicros
	}
	// RecordValue (hdrhistogram-go v1.1.2) fails only for a value outside
	// the range, and the clamps above exclude those.
	_ = l.h.RecordValue(us)
}

// merge adds every value of other into l.
func (l *latencyHistogram) merge(other *latencyHistogram) {
	l.h.Merge(other.h)
}

func (l *latencyHistogram) count() int64 { return l.h.TotalCount() }

// quantile returns the value at percentile p (0 to 100).
func (l *latencyHistogram) quantile(p float64) time.Duration {
	return time.Duration(l.h.ValueAtQuantile(p)) * time.Microsecond
}

// Latency summarises a latency distribution. Values are in milliseconds,
// each the HDR histogram's value at that percentile, within 0.1%.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// summary returns the percentiles of l, all zero when l is empty.
func (l *latencyHistogram) summary() Latency {
	if l.count() == 0 {
		return Latency{}
	}
	return Latency{
		Count: l.count(),
		Mean:  l.h.Mean() / 1000,
		P50:   millis(l.quantile(50)),
		P90:   millis(l.quantile(90)),
		P99:   millis(l.quantile(99)),
		P999:  millis(l.quantile(99.9)),
		Max:   float64(l.h.Max()) / 1000,
	}
}

// millis converts d to fractional milliseconds.
func millis(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
