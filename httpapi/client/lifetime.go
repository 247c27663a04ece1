package client

import (
	"fmt"
	"strconv"
	"strings"
)

// Lifetime is a temporary machine's lifetime in calendar units. The server
// adds it to the registration time in UTC, months first (clamped to the
// end of a shorter month), and accepts 1 hour up to 12 calendar months.
type Lifetime struct {
	Months int `json:"months"`
	Days   int `json:"days"`
	Hours  int `json:"hours"`
}

// maxLifetimeDigits bounds each number in a lifetime text so that parsing
// cannot overflow. Any value this long is far beyond the 12-month limit
// that the server enforces.
const maxLifetimeDigits = 6

// lifetimeUnits lists the units in the order a lifetime text must use them.
var lifetimeUnits = []string{"mo", "d", "h"}

// ParseLifetime parses a lifetime such as "12h", "30d", "2mo" or "1mo2d3h":
// numbers followed by the units mo (calendar months), d (days) and h
// (hours), each unit at most once and in that order. Zero and negative
// lifetimes are rejected. The 1-hour to 12-month range is checked by the
// server, because the length of a month depends on the registration date.
func ParseLifetime(text string) (Lifetime, error) {
	var l Lifetime
	if text == "" {
		return l, lifetimeErr(text, "the value is empty")
	}
	if strings.HasPrefix(text, "-") {
		return l, lifetimeErr(text, "a lifetime cannot be negative")
	}

	rest := text
	next := 0 // index in lifetimeUnits of the first unit still allowed
	for rest != "" {
		digits := leadingDigits(rest)
		if digits == 0 {
			return l, lifetimeErr(text, fmt.Sprintf("expected a number at %q", rest))
		}
		if digits > maxLifetimeDigits {
			return l, lifetimeErr(text, fmt.Sprintf("number %s is too large", rest[:digits]))
		}
		n, _ := strconv.Atoi(rest[:digits]) // digits only, bounded: cannot fail
		rest = rest[digits:]

		unit, err := matchUnit(text, rest, next)
		if err != nil {
			return l, err
		}
		rest = rest[len(lifetimeUnits[unit]):]
		next = unit + 1

		switch lifetimeUnits[unit] {
		case "mo":
			l.Months = n
		case "d":
			l.Days = n
		case "h":
			l.Hours = n
		}
	}

	if l.Months == 0 && l.Days == 0 && l.Hours == 0 {
		return l, lifetimeErr(text, "a lifetime must be longer than zero")
	}
	return l, nil
}

// matchUnit finds the unit at the start of rest among the units still
// allowed (index from next on) and returns its index.
func matchUnit(text, rest string, next int) (int, error) {
	for i, unit := range lifetimeUnits {
		if !strings.HasPrefix(rest, unit) {
			continue
		}
		if i < next {
			return 0, lifetimeErr(text, fmt.Sprintf("unit %q is repeated or out of order; write months, then days, then hours", unit))
		}
		return i, nil
	}

	if strings.HasPrefix(rest, "m") {
		return 0, lifetimeErr(text, `unit "m" is ambiguous; write "mo" for months (lifetimes have no minutes)`)
	}
	if rest == "" {
		return 0, lifetimeErr(text, "the last number has no unit")
	}
	return 0, lifetimeErr(text, fmt.Sprintf("unknown unit at %q", rest))
}

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

func lifetimeErr(text, problem string) error {
	return fmt.Errorf("%w %q: %s; use months (mo), days (d) and hours (h), for example 30d or 1mo2d3h",
		ErrInvalidLifetime, text, problem)
}

// String formats l in the form ParseLifetime reads, omitting zero parts;
// the zero Lifetime formats as "0h".
func (l Lifetime) String() string {
	var b strings.Builder
	if l.Months != 0 {
		fmt.Fprintf(&b, "%dmo", l.Months)
	}
	if l.Days != 0 {
		fmt.Fprintf(&b, "%dd", l.Days)
	}
	if l.Hours != 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%dh", l.Hours)
	}
	return b.String()
}
