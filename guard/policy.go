package guard

import (
	"net/netip"
	"time"
)

// Axis names, as they appear in AxisResult.Axis and in audit records.
const (
	AxisIP         = "ip"
	AxisCountry    = "country"
	AxisTimeWindow = "time_window"
)

// Reasons for an axis failure, as they appear in AxisResult.Reason.
const (
	ReasonNotInAllowlist    = "not_in_allowlist"
	ReasonClientUnknown     = "client_ip_unknown"
	ReasonCountryUnknown    = "country_unknown"
	ReasonCountryNotAllowed = "country_not_allowed"
	ReasonOutsideWindow     = "outside_window"
	ReasonDayNotAllowed     = "day_not_allowed"
	observedUnknown         = "unknown"
)

// GeoLookup maps an address to its country.
type GeoLookup interface {
	// Country returns the ISO 3166-1 alpha-2 code of ip, or ok=false when unknown
	// (private, reserved, no record).
	Country(ip netip.Addr) (code string, ok bool)
}

// AxisResult describes one failing guardrail axis.
type AxisResult struct {
	Axis     string // "ip", "country", "time_window"
	Observed string // the value that failed: client IP, country code or "unknown", local time "Mon 16:30 Europe/Oslo"
	Reason   string // e.g. "not_in_allowlist", "country_unknown", "country_not_allowed", "outside_window"
	Observe  bool   // axis is in observe mode
}

// Decision is the outcome of evaluating a Policy for one request.
type Decision struct {
	Blocked  bool         // a non-observe axis failed
	Failures []AxisResult // every failing axis, observe-mode ones included (Observe=true)
}

// Policy is a compiled, validated set of guardrails. It is immutable and
// safe for concurrent use; a nil *Policy allows every request.
type Policy struct {
	ip        *ipRule
	countries *countryRule
	window    *timeWindow
}

type ipRule struct {
	allow   *Allowlist
	observe bool
}

type countryRule struct {
	allowed countrySet
	observe bool
}

// Evaluate checks every configured axis for a request from client at now.
// It never stops at the first failure, so the audit record can name every
// failing axis. Nothing is cached between calls: each request is evaluated
// afresh. An invalid client (see ResolveClientIP) fails the ip and country
// axes; a nil geo makes every country unknown.
func (p *Policy) Evaluate(client netip.Addr, now time.Time, geo GeoLookup) Decision {
	var d Decision
	if p == nil {
		return d
	}
	client = client.Unmap()

	if p.ip != nil {
		if failure, failed := p.ip.check(client); failed {
			d.add(failure)
		}
	}
	if p.countries != nil {
		if failure, failed := p.countries.check(client, geo); failed {
			d.add(failure)
		}
	}
	if p.window != nil {
		if failure, failed := p.window.check(now); failed {
			d.add(failure)
		}
	}
	return d
}

// Axes returns the names of the configured axes, in evaluation order.
func (p *Policy) Axes() []string {
	var axes []string
	if p == nil {
		return axes
	}
	if p.ip != nil {
		axes = append(axes, AxisIP)
	}
	if p.countries != nil {
		axes = append(axes, AxisCountry)
	}
	if p.window != nil {
		axes = append(axes, AxisTimeWindow)
	}
	return axes
}

func (d *Decision) add(failure AxisResult) {
	d.Failures = append(d.Failures, failure)
	if !failure.Observe {
		d.Blocked = true
	}
}

func (r *ipRule) check(client netip.Addr) (AxisResult, bool) {
	if !client.IsValid() {
		return AxisResult{Axis: AxisIP, Observed: observedUnknown, Reason: ReasonClientUnknown, Observe: r.observe}, true
	}
	if r.allow.Contains(client) {
		return AxisResult{}, false
	}
	return AxisResult{Axis: AxisIP, Observed: client.String(), Reason: ReasonNotInAllowlist, Observe: r.observe}, true
}

func (r *countryRule) check(client netip.Addr, geo GeoLookup) (AxisResult, bool) {
	code, ok := lookupCountry(client, geo)
	if !ok {
		return AxisResult{Axis: AxisCountry, Observed: observedUnknown, Reason: ReasonCountryUnknown, Observe: r.observe}, true
	}
	if r.allowed.has(code) {
		return AxisResult{}, false
	}
	return AxisResult{Axis: AxisCountry, Observed: code, Reason: ReasonCountryNotAllowed, Observe: r.observe}, true
}

// lookupCountry looks up the country of client in geo and accepts only an
// assigned code, so a placeholder such as "--", "ZZ" or "EU" from a
// database counts as unknown rather than as a country.
func lookupCountry(client netip.Addr, geo GeoLookup) (string, bool) {
	if geo == nil || !client.IsValid() {
		return "", false
	}
	code, ok := geo.Country(client)
	if !ok {
		return "", false
	}
	code = upperASCII(code)
	if !IsCountryCode(code) {
		return "", false
	}
	return code, true
}

func (w *timeWindow) check(now time.Time) (AxisResult, bool) {
	inside, local := w.contains(now)
	if inside {
		return AxisResult{}, false
	}
	reason := ReasonOutsideWindow
	// A time of day inside the window fails only on the day rule; the
	// audit names that cause apart from a time outside the hours.
	anyDay := *w
	anyDay.days = 0
	if inHours, _ := anyDay.contains(now); inHours {
		reason = ReasonDayNotAllowed
	}
	return AxisResult{Axis: AxisTimeWindow, Observed: w.observed(local), Reason: reason, Observe: w.observe}, true
}

// upperASCII upper-cases a two-letter code without allocating when it is
// already upper case.
func upperASCII(code string) string {
	for i := 0; i < len(code); i++ {
		if 'a' <= code[i] && code[i] <= 'z' {
			b := []byte(code)
			for j := range b {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return code
}
