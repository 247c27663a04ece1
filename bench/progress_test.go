package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgress_Line(t *testing.T) {
	cases := []struct {
		name  string
		p     *progress
		done  int64
		at    time.Duration
		wants []string
	}{
		{"timed run", &progress{label: "reads 1 node", total: 10 * time.Second}, 5000, 5 * time.Second,
			[]string{"reads 1 node", "[############------------]", "5.0s/10s", "5000 done", "1000/s"}},
		{"counted phase", &progress{label: "setup machines", items: 200}, 50, time.Second,
			[]string{"setup machines", "[######------------------]", "50/200"}},
		{"open-ended phase", &progress{label: "floor", items: -1}, 0, 1500 * time.Millisecond,
			[]string{"floor", "1.5s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.p.done.Store(c.done)
			line := c.p.line(c.at)
			for _, want := range c.wants {
				if !strings.Contains(line, want) {
					t.Errorf("line %q lacks %q", line, want)
				}
			}
		})
	}
}

func TestProgress_BarClamps(t *testing.T) {
	cases := []struct {
		fraction float64
		want     string
	}{
		{-1, "[" + strings.Repeat("-", progressBarWidth) + "]"},
		{2, "[" + strings.Repeat("#", progressBarWidth) + "]"},
	}
	for _, c := range cases {
		if got := progressBar(c.fraction); got != c.want {
			t.Errorf("progressBar(%v) = %q, want %q", c.fraction, got, c.want)
		}
	}
}

func TestProgress_FinishWritesFinalLine(t *testing.T) {
	cases := []struct {
		name   string
		tty    bool
		prefix string
	}{
		{"terminal redraws in place", true, "\r\033[K"},
		{"log gets plain lines", false, "setup"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			p := startProgress(&out, c.tty, "setup", 0, 3)
			p.add(true)
			p.add(false)
			p.finish()
			got := out.String()
			if !strings.HasPrefix(got, c.prefix) || !strings.HasSuffix(got, "\n") {
				t.Errorf("output %q, want it to start with %q and end with a newline", got, c.prefix)
			}
			if !strings.Contains(got, "2/3") || !strings.Contains(got, "1 failed") {
				t.Errorf("output %q lacks the counts 2/3 and 1 failed", got)
			}
		})
	}
}

func TestProgress_NilIsSilent(t *testing.T) {
	p := startProgress(nil, false, "x", time.Second, 0)
	p.add(true)
	p.finish()
	if p != nil {
		t.Errorf("startProgress(nil, …) = %v, want nil", p)
	}
}
