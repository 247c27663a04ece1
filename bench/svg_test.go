package bench

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// parseSVG decodes the whole document and returns the root element's name
// and the count of each element name.
func parseSVG(t *testing.T, doc []byte) (xml.Name, map[string]int) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(string(doc)))
	var root xml.Name
	counts := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return root, counts
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
		}
		if start, ok := tok.(xml.StartElement); ok {
			if root.Local == "" {
				root = start.Name
			}
			counts[start.Name.Local]++
			for _, a := range start.Attr {
				checkNumber(t, a)
			}
		}
	}
}

// checkNumber fails on a coordinate attribute that is not a finite number.
func checkNumber(t *testing.T, a xml.Attr) {
	t.Helper()
	switch a.Name.Local {
	case "x", "y", "x1", "y1", "x2", "y2", "cx", "cy":
		v, err := strconv.ParseFloat(a.Value, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("attribute %s=%q is not a finite number", a.Name.Local, a.Value)
		}
	case "points":
		if strings.Contains(a.Value, "NaN") || strings.Contains(a.Value, "Inf") {
			t.Errorf("points %q contain a non-finite number", a.Value)
		}
	}
}

func TestChart_WellFormedSVG(t *testing.T) {
	lat := Latency{P50: 1, P90: 2, P99: 4, P999: 8, Max: 9}
	cases := []struct {
		name  string
		chart lineChart
	}{
		{"two series", lineChart{title: "t", xLabel: "x", yLabel: "y", series: []chartSeries{
			{name: "a", points: []chartPoint{{1, 2}, {3, 4}}},
			{name: "b", points: []chartPoint{{1, 1}, {3, 8}}},
		}}},
		{"single point", lineChart{title: "t", series: []chartSeries{{name: "a", points: []chartPoint{{5, 5}}}}}},
		{"all zero", lineChart{title: "t", series: []chartSeries{{name: "a", points: []chartPoint{{0, 0}, {0, 0}}}}}},
		{"no series", lineChart{title: "empty"}},
		{"log x", lineChart{title: "t", logX: true, series: []chartSeries{{name: "a", points: []chartPoint{{1000, 3}, {100_000, 2}, {1_000_000, 1}}}}}},
		{"category ticks", lineChart{title: "t", xTicks: []axisTick{{1, "p50"}, {2, "p99"}}, series: []chartSeries{{name: "a", points: []chartPoint{{1, 1}, {2, 5}}}}}},
		{"escaped text", lineChart{title: `reads <1 & "2">`, series: []chartSeries{{name: "a<b", points: []chartPoint{{1, 1}}}}}},
		{"flood chart", floodChart(&FloodResult{NormalRate: 1000, Baseline: lat, UnderFlood: lat})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, counts := parseSVG(t, c.chart.svg())
			if root.Local != "svg" || root.Space != "http://www.w3.org/2000/svg" {
				t.Errorf("root element = %+v, want svg in the SVG namespace", root)
			}
			if counts["polyline"] != len(c.chart.series) {
				t.Errorf("%d polylines, want one per series (%d)", counts["polyline"], len(c.chart.series))
			}
		})
	}
}

func TestChart_ReportChartsParse(t *testing.T) {
	rep := sampleReport()
	charts := rep.charts()
	for _, name := range []string{"reads-latency.svg", "reads-nodes.svg", "writes-latency.svg", "writes-throughput.svg", "flood-latency.svg", "scale-memory.svg", "scale-times.svg"} {
		t.Run(name, func(t *testing.T) {
			chart, ok := charts[name]
			if !ok {
				t.Fatalf("report has no chart %s", name)
			}
			if _, counts := parseSVG(t, chart.svg()); counts["circle"] == 0 {
				t.Errorf("chart %s has no data points", name)
			}
		})
	}
}

func TestChart_NiceStep(t *testing.T) {
	cases := []struct {
		raw, want float64
	}{
		{0.7, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {12_000, 20_000}, {0, 1}, {math.NaN(), 1},
	}
	for _, c := range cases {
		t.Run(strconv.FormatFloat(c.raw, 'g', -1, 64), func(t *testing.T) {
			if got := niceStep(c.raw); got != c.want {
				t.Errorf("niceStep(%v) = %v, want %v", c.raw, got, c.want)
			}
		})
	}
}
