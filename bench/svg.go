package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth  = 760
	chartHeight = 440
	plotLeft    = 80
	plotRight   = 580
	plotTop     = 50
	plotBottom  = 370
	axisTicks   = 5
)

// seriesColors are distinguishable on white and in grey scale print.
var seriesColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"}

// chartPoint is one data point.
type chartPoint struct{ x, y float64 }

// chartSeries is one line of a chart.
type chartSeries struct {
	name   string
	points []chartPoint
}

// axisTick is a labelled position on an axis.
type axisTick struct {
	value float64
	label string
}

// lineChart is a line chart with markers, written as standalone SVG.
type lineChart struct {
	title, xLabel, yLabel string
	series                []chartSeries
	// logX places x on a base-10 logarithmic scale, so every x must be
	// positive.
	logX bool
	// xTicks, when set, replaces the computed x ticks (for categories).
	xTicks []axisTick
}

// axis maps data values to pixel positions along one axis.
type axis struct {
	lo, hi   float64
	from, to float64 // pixel positions of lo and hi
	log      bool
	ticks    []axisTick
}

func (a axis) pos(v float64) float64 {
	lo, hi := a.lo, a.hi
	if a.log {
		v, lo, hi = math.Log10(v), math.Log10(lo), math.Log10(hi)
	}
	if hi == lo {
		return (a.from + a.to) / 2
	}
	return a.from + (v-lo)/(hi-lo)*(a.to-a.from)
}

// svg renders the chart.
func (c lineChart) svg() []byte {
	xs, ys := c.values()
	xa := c.xAxis(xs)
	ya := linearAxis(0, slices.Max(append(ys, 0)), plotBottom, plotTop)

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	text(&b, chartWidth/2, 28, "middle", 16, c.title)
	c.drawAxes(&b, xa, ya)
	c.drawSeries(&b, xa, ya)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func (c lineChart) values() (xs, ys []float64) {
	for _, s := range c.series {
		for _, p := range s.points {
			xs = append(xs, p.x)
			ys = append(ys, p.y)
		}
	}
	if len(xs) == 0 {
		xs = []float64{1}
	}
	return xs, ys
}

func (c lineChart) xAxis(xs []float64) axis {
	lo, hi := slices.Min(xs), slices.Max(xs)
	var a axis
	switch {
	case c.xTicks != nil:
		a = axis{lo: c.xTicks[0].value, hi: c.xTicks[len(c.xTicks)-1].value, ticks: c.xTicks}
		a.lo, a.hi = min(a.lo, lo), max(a.hi, hi)
	case c.logX:
		a = logAxis(lo, hi)
	default:
		return linearAxis(0, hi, plotLeft, plotRight)
	}
	a.from, a.to = plotLeft, plotRight
	return a
}

// linearAxis runs from lo to a rounded value at or above hi, with ticks
// at a step of 1, 2 or 5 times a power of ten.
func linearAxis(lo, hi, from, to float64) axis {
	step := niceStep((hi - lo) / axisTicks)
	top := math.Ceil(hi/step) * step
	if top <= lo {
		top = lo + step
	}
	a := axis{lo: lo, hi: top, from: from, to: to}
	for v := lo; v <= top+step/2; v += step {
		a.ticks = append(a.ticks, axisTick{value: v, label: formatTick(v)})
	}
	return a
}

// logAxis spans the powers of ten around lo and hi.
func logAxis(lo, hi float64) axis {
	first, last := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if last == first {
		last++
	}
	a := axis{lo: math.Pow(10, first), hi: math.Pow(10, last), log: true}
	for e := first; e <= last; e++ {
		v := math.Pow(10, e)
		a.ticks = append(a.ticks, axisTick{value: v, label: formatTick(v)})
	}
	return a
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	power := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*power {
			return m * power
		}
	}
	return 10 * power
}

// formatTick writes large values with a k or M suffix.
func formatTick(v float64) string {
	switch {
	case v >= 1e6 && math.Mod(v, 1e5) == 0:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3 && math.Mod(v, 100) == 0:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func (c lineChart) drawAxes(b *bytes.Buffer, xa, ya axis) {
	fmt.Fprintf(b, `<g stroke="#999" stroke-width="1">`+"\n")
	for _, t := range ya.ticks {
		y := ya.pos(t.value)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", plotLeft, y, plotRight, y)
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d"/>`+"\n", plotLeft, plotBottom, plotRight, plotBottom)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d"/>`+"\n", plotLeft, plotTop, plotLeft, plotBottom)
	b.WriteString("</g>\n")
	for _, t := range ya.ticks {
		text(b, plotLeft-8, ya.pos(t.value)+4, "end", 11, t.label)
	}
	for _, t := range xa.ticks {
		text(b, xa.pos(t.value), plotBottom+18, "middle", 11, t.label)
	}
	text(b, (plotLeft+plotRight)/2, plotBottom+44, "middle", 13, c.xLabel)
	fmt.Fprintf(b, `<text x="20" y="%d" text-anchor="middle" font-size="13" transform="rotate(-90 20 %d)">%s</text>`+"\n",
		(plotTop+plotBottom)/2, (plotTop+plotBottom)/2, html.EscapeString(c.yLabel))
}

func (c lineChart) drawSeries(b *bytes.Buffer, xa, ya axis) {
	for i, s := range c.series {
		color := seriesColors[i%len(seriesColors)]
		var coords []string
		for _, p := range s.points {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", xa.pos(p.x), ya.pos(p.y)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(coords, " "))
		for _, p := range s.points {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", xa.pos(p.x), ya.pos(p.y), color)
		}
		legendY := float64(plotTop + 10 + 22*i)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n",
			plotRight+20, legendY, plotRight+44, legendY, color)
		text(b, plotRight+52, legendY+4, "start", 12, s.name)
	}
}

func text(b *bytes.Buffer, x, y float64, anchor string, size int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d">%s</text>`+"\n", x, y, anchor, size, html.EscapeString(s))
}
