package guard

import (
	"errors"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func utc(text string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestAddMonths_Table(t *testing.T) {
	tests := []struct {
		from   string
		months int
		want   string
	}{
		{"2026-01-31T09:00:00Z", 1, "2026-02-28T09:00:00Z"},
		{"2028-01-31T09:00:00Z", 1, "2028-02-29T09:00:00Z"},
		{"2028-02-29T10:00:00Z", 12, "2029-02-28T10:00:00Z"},
		{"2028-02-29T10:00:00Z", 48, "2032-02-29T10:00:00Z"},
		{"2026-03-31T00:00:00Z", 1, "2026-04-30T00:00:00Z"},
		{"2026-08-31T23:59:59.999Z", 1, "2026-09-30T23:59:59.999Z"},
		{"2026-01-10T00:00:00Z", 12, "2027-01-10T00:00:00Z"},
		{"2026-12-15T12:00:00Z", 1, "2027-01-15T12:00:00Z"},
		{"2026-01-15T12:00:00Z", 0, "2026-01-15T12:00:00Z"},
		{"2026-03-31T08:00:00Z", -1, "2026-02-28T08:00:00Z"},
		{"2026-01-31T08:00:00Z", -2, "2025-11-30T08:00:00Z"},
		{"2026-01-15T08:00:00Z", -13, "2024-12-15T08:00:00Z"},
		// Months are counted in UTC: this instant is 1 February in UTC.
		{"2026-01-31T23:30:00-05:00", 1, "2026-03-01T04:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			from, err := time.Parse(time.RFC3339Nano, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			got := AddMonths(from, tt.months)
			if want := utc(tt.want); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("AddMonths(%s, %d) = %s, want %s", tt.from, tt.months, got, want)
			}
		})
	}
}

func TestAddMonths_Properties(t *testing.T) {
	drawTime := func(t *rapid.T, label string) time.Time {
		sec := rapid.Int64Range(0, 4102444800).Draw(t, label) // 1970 to 2100
		return time.Unix(sec, 0).UTC()
	}

	t.Run("monotonic in time", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			a, b := drawTime(t, "a"), drawTime(t, "b")
			if b.Before(a) {
				a, b = b, a
			}
			m := rapid.IntRange(-24, 24).Draw(t, "months")
			if AddMonths(b, m).Before(AddMonths(a, m)) {
				t.Fatalf("AddMonths(%s, %d) before AddMonths(%s, %d)", b, m, a, m)
			}
		})
	})

	t.Run("monotonic in months", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			from := drawTime(t, "from")
			m := rapid.IntRange(-24, 24).Draw(t, "months")
			if !AddMonths(from, m+1).After(AddMonths(from, m)) {
				t.Fatalf("AddMonths(%s, %d) not after AddMonths(%s, %d)", from, m+1, from, m)
			}
		})
	})

	t.Run("clamps to the last day", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			from := drawTime(t, "from")
			m := rapid.IntRange(-24, 24).Draw(t, "months")
			got := AddMonths(from, m)

			monthsApart := (got.Year()*12 + int(got.Month())) - (from.Year()*12 + int(from.Month()))
			if monthsApart != m {
				t.Fatalf("AddMonths(%s, %d) = %s is %d months on", from, m, got, monthsApart)
			}
			wantDay := min(from.Day(), daysIn(got.Year(), got.Month()))
			if got.Day() != wantDay {
				t.Fatalf("AddMonths(%s, %d) = %s, want day %d", from, m, got, wantDay)
			}
			h1, m1, s1 := from.Clock()
			h2, m2, s2 := got.Clock()
			if h1 != h2 || m1 != m2 || s1 != s2 {
				t.Fatalf("AddMonths(%s, %d) = %s changed the time of day", from, m, got)
			}
		})
	})

	t.Run("round trip never overshoots", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			from := drawTime(t, "from")
			m := rapid.IntRange(-24, 24).Draw(t, "months")
			back := AddMonths(AddMonths(from, m), -m)
			if back.After(from) {
				t.Fatalf("AddMonths(AddMonths(%s, %d), %d) = %s is after the start", from, m, -m, back)
			}
			if from.Day() <= 28 && !back.Equal(from) {
				t.Fatalf("AddMonths(AddMonths(%s, %d), %d) = %s, want the start", from, m, -m, back)
			}
		})
	})

	t.Run("eleven months stay under the cap", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			now := drawTime(t, "now")
			if AddMonths(now, 11).After(ExtensionCap(now)) {
				t.Fatalf("now + 11 months is past the cap at %s", now)
			}
		})
	})
}

func TestExtensionCap_Boundaries(t *testing.T) {
	tests := []struct {
		name, now, expiry string
		withinCap         bool
	}{
		{"far past the cap", "2026-01-10T00:00:00Z", "2027-06-01T00:00:00Z", false},
		{"exactly the cap", "2026-01-10T00:00:00Z", "2027-01-10T00:00:00Z", true},
		{"one nanosecond past the cap", "2026-01-10T00:00:00Z", "2027-01-10T00:00:00.000000001Z", false},
		{"leap day to 28 February", "2028-02-29T10:00:00Z", "2029-02-28T10:00:00Z", true},
		{"leap day to 1 March", "2028-02-29T10:00:00Z", "2029-03-01T10:00:00Z", false},
		{"leap day to 1 March plus a second", "2028-02-29T10:00:00Z", "2029-03-01T10:00:01Z", false},
		{"31 January", "2026-01-31T09:00:00Z", "2027-01-31T09:00:00Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := ExtensionCap(utc(tt.now))
			if got := !utc(tt.expiry).After(limit); got != tt.withinCap {
				t.Errorf("expiry %s within cap %s = %v, want %v", tt.expiry, limit, got, tt.withinCap)
			}
		})
	}
}

func TestExtensionCap_DailyElevenMonthExtensions(t *testing.T) {
	now := utc("2026-01-10T00:00:00Z")
	expiry := utc("2026-02-01T00:00:00Z")
	for day := range 60 {
		clock := now.AddDate(0, 0, day)
		next := AddMonths(clock, 11)
		if next.After(expiry) {
			expiry = next
		}
		if expiry.After(ExtensionCap(clock)) {
			t.Fatalf("day %d: expiry %s past the cap %s", day, expiry, ExtensionCap(clock))
		}
	}
}

func TestAddLifetime_Table(t *testing.T) {
	from := utc("2026-01-31T09:00:00Z")
	tests := []struct {
		months, days, hours int
		want                string
	}{
		{0, 0, 1, "2026-01-31T10:00:00Z"},
		{1, 0, 0, "2026-02-28T09:00:00Z"},
		{1, 1, 0, "2026-03-01T09:00:00Z"},
		{0, 0, 48, "2026-02-02T09:00:00Z"},
		{11, 31, 0, "2027-01-31T09:00:00Z"},
		{0, 1, 25, "2026-02-02T10:00:00Z"},
	}
	for _, tt := range tests {
		got := AddLifetime(from, tt.months, tt.days, tt.hours)
		if want := utc(tt.want); !got.Equal(want) {
			t.Errorf("AddLifetime(%d, %d, %d) = %s, want %s", tt.months, tt.days, tt.hours, got, want)
		}
	}
}

func TestValidateLifetime_Table(t *testing.T) {
	tests := []struct {
		name                string
		months, days, hours int
		from                string
		ok                  bool
	}{
		{"one hour", 0, 0, 1, "2026-01-01T00:00:00Z", true},
		{"twelve months", 12, 0, 0, "2026-01-31T00:00:00Z", true},
		{"twelve months from leap day", 12, 0, 0, "2028-02-29T10:00:00Z", true},
		{"365 days in a common year", 0, 365, 0, "2026-01-01T00:00:00Z", true},
		{"366 days across a leap day", 0, 366, 0, "2028-01-01T00:00:00Z", true},
		{"eleven months and 31 days from 31 January", 11, 31, 0, "2026-01-31T00:00:00Z", true},
		{"zero", 0, 0, 0, "2026-01-01T00:00:00Z", false},
		{"negative hours", 0, 0, -1, "2026-01-01T00:00:00Z", false},
		{"negative days", 1, -1, 0, "2026-01-01T00:00:00Z", false},
		{"negative months", -1, 40, 0, "2026-01-01T00:00:00Z", false},
		{"thirteen months", 13, 0, 0, "2026-01-01T00:00:00Z", false},
		{"twelve months and an hour", 12, 0, 1, "2026-01-01T00:00:00Z", false},
		{"366 days in a common year", 0, 366, 0, "2026-01-01T00:00:00Z", false},
		{"366 days of hours from leap day", 0, 0, 366 * 24, "2028-02-29T10:00:00Z", false},
		{"huge hours", 0, 0, math.MaxInt, "2026-01-01T00:00:00Z", false},
		{"huge days", 0, math.MaxInt, 0, "2026-01-01T00:00:00Z", false},
		{"huge months", math.MaxInt, 0, 0, "2026-01-01T00:00:00Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateLifetime(tt.months, tt.days, tt.hours, utc(tt.from))
			if tt.ok && err != nil {
				t.Errorf("ValidateLifetime = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidLifetime) {
				t.Errorf("ValidateLifetime = %v, want ErrInvalidLifetime", err)
			}
		})
	}
}

func TestExpired_ExactInstant(t *testing.T) {
	expiry := utc("2026-06-30T12:00:00Z").UnixMilli()
	offsetForm, err := time.Parse(time.RFC3339, "2026-06-30T14:00:00+02:00")
	if err != nil {
		t.Fatal(err)
	}
	if offsetForm.UnixMilli() != expiry {
		t.Fatalf("offset form %d differs from UTC form %d", offsetForm.UnixMilli(), expiry)
	}
	halfSecond := utc("2026-06-30T12:00:00.5Z").UnixMilli()

	tests := []struct {
		name     string
		expiryMs int64
		now      string
		want     bool
	}{
		{"one millisecond before", expiry, "2026-06-30T11:59:59.999Z", false},
		{"sub-millisecond before", expiry, "2026-06-30T11:59:59.9999999Z", false},
		{"at the instant", expiry, "2026-06-30T12:00:00Z", true},
		{"one millisecond after", expiry, "2026-06-30T12:00:00.001Z", true},
		{"at the instant in another zone", offsetForm.UnixMilli(), "2026-06-30T12:00:00Z", true},
		{"half-second expiry, before", halfSecond, "2026-06-30T12:00:00.499Z", false},
		{"half-second expiry, at", halfSecond, "2026-06-30T12:00:00.5Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expired(tt.expiryMs, utc(tt.now)); got != tt.want {
				t.Errorf("Expired(%d, %s) = %v, want %v", tt.expiryMs, tt.now, got, tt.want)
			}
		})
	}
}
