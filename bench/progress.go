package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress redraw intervals: in place on a terminal, and as whole lines
// otherwise, so that a log file gets a line every few seconds.
const (
	progressTTYInterval  = 250 * time.Millisecond
	progressLineInterval = 2 * time.Second
	progressBarWidth     = 24
)

// progress prints one phase's progress on a writer while the phase runs.
// The workers update the counters with atomic adds. A nil *progress is
// valid and prints nothing.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	// Exactly one of total and items is set: a timed load run, or a
	// phase of a known number of items. A negative items marks a phase
	// of unknown length, shown by its elapsed time only.
	total time.Duration
	items int64
	start time.Time

	done   atomic.Int64
	failed atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// startProgress starts printing a phase. It returns nil when w is nil.
func startProgress(w io.Writer, tty bool, label string, total time.Duration, items int64) *progress {
	if w == nil {
		return nil
	}
	p := &progress{w: w, tty: tty, label: label, total: total, items: items, start: time.Now(), stop: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progress) add(ok bool) {
	if p == nil {
		return
	}
	p.done.Add(1)
	if !ok {
		p.failed.Add(1)
	}
}

func (p *progress) loop() {
	defer p.wg.Done()
	interval := progressLineInterval
	if p.tty {
		interval = progressTTYInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-ticker.C:
			p.print(false)
		}
	}
}

// finish stops the printer and writes the final state of the phase.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.print(true)
}

func (p *progress) print(final bool) {
	line := p.line(time.Since(p.start))
	switch {
	case p.tty && final:
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	case p.tty:
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	default:
		fmt.Fprintln(p.w, line)
	}
}

// line formats the progress at elapsed time.
func (p *progress) line(elapsed time.Duration) string {
	done, failed := p.done.Load(), p.failed.Load()
	if p.items < 0 {
		return fmt.Sprintf("%-22s %.1fs", p.label, elapsed.Seconds())
	}
	var fraction float64
	var position string
	if p.items > 0 {
		fraction = float64(done) / float64(p.items)
		position = fmt.Sprintf("%d/%d", done, p.items)
	} else {
		fraction = float64(elapsed) / float64(p.total)
		position = fmt.Sprintf("%.1fs/%ss", elapsed.Seconds(), formatSeconds(p.total))
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	return fmt.Sprintf("%-22s %s %s  %d done  %.0f/s  %d failed",
		p.label, progressBar(fraction), position, done, rate, failed)
}

// formatSeconds writes d in seconds, rounded to a tenth and without
// trailing zeros: 10s is "10" and 1.666666666s is "1.7".
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', -1, 64)
}

// progressBar draws fraction (clamped to 0..1) as a fixed-width bar.
func progressBar(fraction float64) string {
	fraction = min(max(fraction, 0), 1)
	filled := int(fraction * progressBarWidth)
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", progressBarWidth-filled) + "]"
}
