package client

import (
	"errors"
	"strings"
	"testing"
)

func TestLifetime_Parse(t *testing.T) {
	cases := []struct {
		text string
		want Lifetime
	}{
		{"12h", Lifetime{Hours: 12}},
		{"30d", Lifetime{Days: 30}},
		{"2mo", Lifetime{Months: 2}},
		{"1mo2d3h", Lifetime{Months: 1, Days: 2, Hours: 3}},
		{"1mo3h", Lifetime{Months: 1, Hours: 3}},
		{"12mo", Lifetime{Months: 12}},
		{"0mo1h", Lifetime{Hours: 1}},
		{"007d", Lifetime{Days: 7}},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			got, err := ParseLifetime(tc.text)
			if err != nil {
				t.Fatalf("ParseLifetime(%q): %v", tc.text, err)
			}
			if got != tc.want {
				t.Errorf("ParseLifetime(%q) = %+v, want %+v", tc.text, got, tc.want)
			}
		})
	}
}

func TestLifetime_ParseRejects(t *testing.T) {
	cases := []struct {
		text string
		hint string // a part of the message that explains the problem
	}{
		{"", "empty"},
		{"0h", "longer than zero"},
		{"0mo0d0h", "longer than zero"},
		{"-1h", "negative"},
		{"-30d", "negative"},
		{"1h-1d", "expected a number"},
		{"30", "no unit"},
		{"30m", `"mo" for months`},
		{"1y", "unknown unit"},
		{"1.5d", "unknown unit"},
		{"1 d", "unknown unit"},
		{"d", "expected a number"},
		{"1d1d", "repeated or out of order"},
		{"3h1d", "repeated or out of order"},
		{"1d2mo", "repeated or out of order"},
		{"9999999h", "too large"},
		{"+1h", "expected a number"},
		{"1H", "unknown unit"},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			_, err := ParseLifetime(tc.text)
			if !errors.Is(err, ErrInvalidLifetime) {
				t.Fatalf("ParseLifetime(%q) error = %v, want ErrInvalidLifetime", tc.text, err)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("message %q does not mention %q", err.Error(), tc.hint)
			}
			if !strings.Contains(err.Error(), `"`+tc.text+`"`) {
				t.Errorf("message %q does not name the value", err.Error())
			}
		})
	}
}

func TestLifetime_StringRoundTrip(t *testing.T) {
	for _, l := range []Lifetime{{Hours: 1}, {Days: 30}, {Months: 1, Days: 2, Hours: 3}, {Months: 12}} {
		t.Run(l.String(), func(t *testing.T) {
			got, err := ParseLifetime(l.String())
			if err != nil {
				t.Fatal(err)
			}
			if got != l {
				t.Errorf("round trip of %+v gave %+v", l, got)
			}
		})
	}
}
