package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/guard"
)

// guardrailFlags are the flags that describe a temporary machine's
// guardrails, shared by `temp issue` and `machine guardrails`. The server
// validates every value again; the checks here only give early messages.
type guardrailFlags struct {
	ips       []string
	countries []string
	window    string
	timezone  string
	days      []string
	observe   []string
}

func (gf *guardrailFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVar(&gf.ips, "ip", nil, "Allowed client addresses as CIDRs or bare IPs, comma-separated or repeated.")
	f.StringSliceVar(&gf.countries, "country", nil, "Allowed countries as ISO 3166-1 alpha-2 codes such as NO or DE; addresses without a country are refused.")
	f.StringVar(&gf.window, "window", "", "Allowed local time of day as HH:MM-HH:MM, such as 09:00-17:00 or 22:00-06:00 across midnight; needs --timezone.")
	f.StringVar(&gf.timezone, "timezone", "", "IANA time zone of --window, such as Europe/Oslo (abbreviations like CET are rejected).")
	f.StringSliceVar(&gf.days, "days", nil, "Days on which the window may open: mon,tue,wed,thu,fri,sat,sun (default every day).")
	f.StringSliceVar(&gf.observe, "observe", nil, "Axes to audit without blocking: ip, country, time-window.")
}

// set reports whether any guardrail flag was given.
func (gf *guardrailFlags) set(cmd *cobra.Command) bool {
	for _, name := range []string{"ip", "country", "window", "timezone", "days", "observe"} {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// build returns the guardrails that the flags describe, nil when none.
func (gf *guardrailFlags) build() (*guard.Guardrails, error) {
	g := &guard.Guardrails{}
	if len(gf.ips) > 0 {
		g.IPAllowlist = &guard.IPAxis{CIDRs: gf.ips}
	}
	if len(gf.countries) > 0 {
		codes := make([]string, len(gf.countries))
		for i, c := range gf.countries {
			codes[i] = strings.ToUpper(strings.TrimSpace(c))
		}
		g.Countries = &guard.CountryAxis{Codes: codes}
	}

	window, err := gf.buildWindow()
	if err != nil {
		return nil, err
	}
	g.TimeWindow = window

	if err := applyObserve(g, gf.observe); err != nil {
		return nil, err
	}
	if g.IPAllowlist == nil && g.Countries == nil && g.TimeWindow == nil {
		return nil, nil
	}
	return g, nil
}

func (gf *guardrailFlags) buildWindow() (*guard.WindowAxis, error) {
	if gf.window == "" {
		if gf.timezone != "" || len(gf.days) > 0 {
			return nil, usageErrorf("--timezone and --days need --window HH:MM-HH:MM")
		}
		return nil, nil
	}
	if gf.timezone == "" {
		return nil, usageErrorf("--window %s needs --timezone, such as Europe/Oslo; no zone is assumed", gf.window)
	}

	start, end, ok := strings.Cut(gf.window, "-")
	if !ok || !isClockTime(start) || !isClockTime(end) {
		return nil, usageErrorf("--window %q is not HH:MM-HH:MM, such as 09:00-17:00", gf.window)
	}
	days := make([]string, len(gf.days))
	for i, d := range gf.days {
		days[i] = strings.ToLower(strings.TrimSpace(d))
	}
	return &guard.WindowAxis{Start: start, End: end, Timezone: gf.timezone, Days: days}, nil
}

// isClockTime reports whether s has the HH:MM shape; the server checks
// the ranges.
func isClockTime(s string) bool {
	if len(s) != 5 || s[2] != ':' {
		return false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// applyObserve puts the named axes in observe mode; each must be configured.
func applyObserve(g *guard.Guardrails, axes []string) error {
	for _, axis := range axes {
		var configured bool
		switch strings.ToLower(strings.TrimSpace(axis)) {
		case "ip":
			if configured = g.IPAllowlist != nil; configured {
				g.IPAllowlist.Observe = true
			}
		case "country":
			if configured = g.Countries != nil; configured {
				g.Countries.Observe = true
			}
		case "time-window", "time_window", "window":
			if configured = g.TimeWindow != nil; configured {
				g.TimeWindow.Observe = true
			}
		default:
			return usageErrorf("--observe %q is not an axis; use ip, country or time-window", axis)
		}
		if !configured {
			return usageErrorf("--observe %s names an axis that these flags do not configure", axis)
		}
	}
	return nil
}

// describeGuardrails summarizes guardrails on one line for text output.
func describeGuardrails(g *guard.Guardrails) string {
	if g == nil {
		return "-"
	}
	var parts []string
	if a := g.IPAllowlist; a != nil {
		parts = append(parts, "ip "+strings.Join(a.CIDRs, ",")+observeMark(a.Observe))
	}
	if a := g.Countries; a != nil {
		parts = append(parts, "country "+strings.Join(a.Codes, ",")+observeMark(a.Observe))
	}
	if a := g.TimeWindow; a != nil {
		days := "every day"
		if len(a.Days) > 0 {
			days = strings.Join(a.Days, ",")
		}
		parts = append(parts, fmt.Sprintf("window %s-%s %s %s%s", a.Start, a.End, a.Timezone, days, observeMark(a.Observe)))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func observeMark(observe bool) string {
	if observe {
		return " (observe)"
	}
	return ""
}
