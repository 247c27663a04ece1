package bench

import (
	"strings"
	"testing"
	"time"
)

func TestProgress_RoundsTotal(t *testing.T) {
	cases := []struct {
		total, at time.Duration
		want      string
	}{
		{1666666666 * time.Nanosecond, 1700 * time.Millisecond, " 1.7s/1.7s "},
		{90 * time.Second, 30 * time.Second, " 30.0s/90s "},
		{2*time.Minute + 30500*time.Millisecond, time.Second, " 1.0s/150.5s "},
	}
	for _, c := range cases {
		p := &progress{label: "reads", total: c.total}
		line := p.line(c.at)
		if !strings.Contains(line, c.want) {
			t.Errorf("total %s: line %q lacks %q", c.total, line, c.want)
		}
	}
}
