package guard

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// fataler is the part of testing.TB that rapid.T also has.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func compileWindowPolicy(t fataler, start, end, zone string, days ...string) *Policy {
	t.Helper()
	g := &Guardrails{TimeWindow: &WindowAxis{Start: start, End: end, Timezone: zone, Days: days}}
	p, err := g.Compile()
	if err != nil {
		t.Fatalf("Compile window %s-%s %s %v: %v", start, end, zone, days, err)
	}
	return p
}

func insideWindow(p *Policy, now time.Time) bool {
	return len(p.Evaluate(netipZero, now, nil).Failures) == 0
}

func TestGuard_WindowWrapsMidnight(t *testing.T) {
	// 22:00-06:00 in Oslo, opening on Fridays only. 2026-06-05 is a Friday;
	// Oslo is at UTC+2 in June.
	p := compileWindowPolicy(t, "22:00", "06:00", "Europe/Oslo", "fri")
	tests := []struct {
		name string
		utc  string
		want bool
	}{
		{"Friday 23:00", "2026-06-05T21:00:00Z", true},
		{"Friday 22:00 opening minute", "2026-06-05T20:00:00Z", true},
		{"Friday 21:59", "2026-06-05T19:59:00Z", false},
		{"Saturday 02:00, opened Friday", "2026-06-06T00:00:00Z", true},
		{"Saturday 06:00 closing minute, opened Friday", "2026-06-06T04:00:59Z", true},
		{"Saturday 06:01", "2026-06-06T04:01:00Z", false},
		{"Saturday 23:00, opens Saturday", "2026-06-06T21:00:00Z", false},
		{"Friday 02:00, opened Thursday", "2026-06-05T00:00:00Z", false},
		{"Thursday 23:00", "2026-06-04T21:00:00Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := insideWindow(p, utc(tt.utc)); got != tt.want {
				t.Errorf("inside at %s = %v, want %v", tt.utc, got, tt.want)
			}
		})
	}
}

func TestGuard_WindowDaysWithoutWrap(t *testing.T) {
	// 09:00-17:00 UTC on weekdays. 2026-06-06 is a Saturday.
	p := compileWindowPolicy(t, "09:00", "17:00", "UTC", "mon", "tue", "wed", "thu", "fri")
	if !insideWindow(p, utc("2026-06-05T09:00:00Z")) {
		t.Error("Friday 09:00:00 outside the window")
	}
	if insideWindow(p, utc("2026-06-05T08:59:59Z")) {
		t.Error("Friday 08:59:59 inside the window")
	}
	if !insideWindow(p, utc("2026-06-05T17:00:59Z")) {
		t.Error("Friday 17:00:59 outside the window; the end minute is included")
	}
	if insideWindow(p, utc("2026-06-05T17:01:00Z")) {
		t.Error("Friday 17:01 inside the window")
	}
	if insideWindow(p, utc("2026-06-06T12:00:00Z")) {
		t.Error("Saturday 12:00 inside a weekday window")
	}
}

func TestGuard_WindowDaylightSaving(t *testing.T) {
	tests := []struct {
		name, start, end, zone, utc string
		want                        bool
	}{
		// Oslo, spring forward on 2026-03-29: 02:00 CET becomes 03:00 CEST.
		{"Oslo 01:45 CET before the gap", "01:30", "02:30", "Europe/Oslo", "2026-03-29T00:45:00Z", true},
		{"Oslo 03:10 CEST after the gap", "01:30", "02:30", "Europe/Oslo", "2026-03-29T01:10:00Z", false},
		// Oslo, fall back on 2026-10-25: 03:00 CEST becomes 02:00 CET.
		{"Oslo 02:30 CEST first pass", "01:30", "02:30", "Europe/Oslo", "2026-10-25T00:30:00Z", true},
		{"Oslo 02:30 CET second pass", "01:30", "02:30", "Europe/Oslo", "2026-10-25T01:30:00Z", true},
		{"Oslo 02:31 CEST first pass", "01:30", "02:30", "Europe/Oslo", "2026-10-25T00:31:00Z", false},
		{"Oslo 02:31 CET second pass", "01:30", "02:30", "Europe/Oslo", "2026-10-25T01:31:00Z", false},
		{"Oslo 02:30 CEST inside 02:00-03:00", "02:00", "03:00", "Europe/Oslo", "2026-10-25T00:30:00Z", true},
		{"Oslo 02:30 CET inside 02:00-03:00", "02:00", "03:00", "Europe/Oslo", "2026-10-25T01:30:00Z", true},
		// New York: spring forward 2026-03-08, fall back 2026-11-01.
		{"New York 01:30 EST before the gap", "01:00", "02:00", "America/New_York", "2026-03-08T06:30:00Z", true},
		{"New York 03:30 EDT after the gap", "02:00", "03:00", "America/New_York", "2026-03-08T07:30:00Z", false},
		{"New York 03:00 EDT end of the gap", "02:00", "03:00", "America/New_York", "2026-03-08T07:00:00Z", true},
		{"New York 01:30 EDT first pass", "01:00", "02:00", "America/New_York", "2026-11-01T05:30:00Z", true},
		{"New York 01:30 EST second pass", "01:00", "02:00", "America/New_York", "2026-11-01T06:30:00Z", true},
		// Auckland: fall back 2026-04-05, spring forward 2026-09-27.
		{"Auckland 02:30 NZDT first pass", "02:00", "03:00", "Pacific/Auckland", "2026-04-04T13:30:00Z", true},
		{"Auckland 02:30 NZST second pass", "02:00", "03:00", "Pacific/Auckland", "2026-04-04T14:30:00Z", true},
		{"Auckland 03:30 NZDT after the gap", "02:00", "03:00", "Pacific/Auckland", "2026-09-26T14:30:00Z", false},
		{"Auckland 01:30 NZST before the gap", "01:00", "02:00", "Pacific/Auckland", "2026-09-26T13:30:00Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compileWindowPolicy(t, tt.start, tt.end, tt.zone)
			if got := insideWindow(p, utc(tt.utc)); got != tt.want {
				t.Errorf("window %s-%s %s at %s: inside = %v, want %v",
					tt.start, tt.end, tt.zone, tt.utc, got, tt.want)
			}
		})
	}
}

// TestGuard_WindowInsideSkippedHourAdmitsNothing scans every minute of the
// local days on which the window lies wholly in the skipped hour.
func TestGuard_WindowInsideSkippedHourAdmitsNothing(t *testing.T) {
	tests := []struct {
		start, end, zone, from string
	}{
		{"02:15", "02:45", "Europe/Oslo", "2026-03-28T23:00:00Z"},
		{"02:00", "02:59", "America/New_York", "2026-03-08T05:00:00Z"},
		{"02:00", "02:59", "Pacific/Auckland", "2026-09-26T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			p := compileWindowPolicy(t, tt.start, tt.end, tt.zone)
			from := utc(tt.from)
			for minute := range 24 * 60 {
				at := from.Add(time.Duration(minute) * time.Minute)
				if insideWindow(p, at) {
					t.Fatalf("window %s-%s admitted %s (%s local)", tt.start, tt.end, at,
						at.In(p.window.location).Format("15:04 MST"))
				}
			}
		})
	}
}

func TestGuard_WindowObservedText(t *testing.T) {
	p := compileWindowPolicy(t, "09:00", "16:00", "Europe/Oslo")
	// 2026-06-01 is a Monday; 14:30 UTC is 16:30 in Oslo.
	d := p.Evaluate(netipZero, utc("2026-06-01T14:30:00Z"), nil)
	if len(d.Failures) != 1 {
		t.Fatalf("Failures = %+v, want one", d.Failures)
	}
	want := AxisResult{Axis: AxisTimeWindow, Observed: "Mon 16:30 Europe/Oslo", Reason: ReasonOutsideWindow}
	if d.Failures[0] != want {
		t.Errorf("failure = %+v, want %+v", d.Failures[0], want)
	}
}

// TestGuard_WindowMatchesMinuteScan compares the window test with an
// enumeration of every (weekday, minute) pair the window covers.
func TestGuard_WindowMatchesMinuteScan(t *testing.T) {
	zones := []string{"UTC", "Europe/Oslo", "America/New_York", "Pacific/Auckland", "Asia/Kolkata", "Australia/Lord_Howe"}
	rapid.Check(t, func(t *rapid.T) {
		start := rapid.IntRange(0, minutesPerDay-1).Draw(t, "start")
		end := rapid.IntRange(0, minutesPerDay-1).Filter(func(e int) bool { return e != start }).Draw(t, "end")
		zone := rapid.SampledFrom(zones).Draw(t, "zone")
		var days []string
		for d, name := range dayNames {
			if rapid.Bool().Draw(t, "day-"+dayNames[d]) {
				days = append(days, name)
			}
		}
		p := compileWindowPolicy(t, clockText(start), clockText(end), zone, days...)

		// Enumerate the covered (weekday, minute) pairs by walking each
		// opening minute by minute up to and including the closing minute.
		var covered [7][minutesPerDay]bool
		for d := range 7 {
			if len(days) > 0 && !containsString(days, dayNames[d]) {
				continue
			}
			day, minute := d, start
			for {
				covered[day][minute] = true
				if minute == end {
					break
				}
				minute++
				if minute == minutesPerDay {
					minute, day = 0, (day+1)%7
				}
			}
		}

		sec := rapid.Int64Range(1735689600, 1893456000).Draw(t, "instant") // 2025 to 2030
		now := time.Unix(sec, 0)
		local := now.In(p.window.location)
		want := covered[local.Weekday()][local.Hour()*60+local.Minute()]
		if got := insideWindow(p, now); got != want {
			t.Fatalf("window %s-%s %s %v at %s (%s): inside = %v, want %v", clockText(start), clockText(end),
				zone, days, now.UTC(), local.Format("Mon 15:04"), got, want)
		}
	})
}

func clockText(minutes int) string {
	return time.Date(2000, 1, 1, minutes/60, minutes%60, 0, 0, time.UTC).Format("15:04")
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestGuard_WindowValidation(t *testing.T) {
	tests := []struct {
		name       string
		axis       WindowAxis
		wantInText string
	}{
		{"start equals end", WindowAxis{Start: "09:00", End: "09:00", Timezone: "UTC"}, "09:00"},
		{"hour 24", WindowAxis{Start: "24:00", End: "09:00", Timezone: "UTC"}, "24:00"},
		{"minute 60", WindowAxis{Start: "08:60", End: "09:00", Timezone: "UTC"}, "08:60"},
		{"one-digit hour", WindowAxis{Start: "8:00", End: "09:00", Timezone: "UTC"}, "8:00"},
		{"seconds", WindowAxis{Start: "08:00:00", End: "09:00", Timezone: "UTC"}, "08:00:00"},
		{"empty end", WindowAxis{Start: "08:00", End: "", Timezone: "UTC"}, "timeWindow.end"},
		{"twelve-hour clock", WindowAxis{Start: "08:00", End: "5pm", Timezone: "UTC"}, "5pm"},
		{"full-width digits", WindowAxis{Start: "０８:００", End: "09:00", Timezone: "UTC"}, "timeWindow.start"},
		{"capitalised day", WindowAxis{Start: "08:00", End: "09:00", Timezone: "UTC", Days: []string{"Mon"}}, "Mon"},
		{"long day name", WindowAxis{Start: "08:00", End: "09:00", Timezone: "UTC", Days: []string{"monday"}}, "monday"},
		{"repeated day", WindowAxis{Start: "08:00", End: "09:00", Timezone: "UTC", Days: []string{"mon", "mon"}}, "twice"},
		{"eight days", WindowAxis{Start: "08:00", End: "09:00", Timezone: "UTC",
			Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun", "mon"}}, "8 days"},
		{"empty zone", WindowAxis{Start: "08:00", End: "09:00"}, "timezone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			axis := tt.axis
			_, err := (&Guardrails{TimeWindow: &axis}).Compile()
			if !errors.Is(err, ErrInvalidGuardrails) {
				t.Fatalf("Compile = %v, want ErrInvalidGuardrails", err)
			}
			if !strings.Contains(err.Error(), tt.wantInText) {
				t.Errorf("error %q does not mention %q", err, tt.wantInText)
			}
		})
	}
}

func TestGuard_WindowZones(t *testing.T) {
	tests := []struct {
		zone string
		ok   bool
	}{
		{"Europe/Oslo", true},
		{"America/New_York", true},
		{"Pacific/Auckland", true},
		{"America/Argentina/Buenos_Aires", true},
		{"UTC", true},
		{"Etc/UTC", true},
		{"US/Eastern", true},
		{"", false},
		{"Local", false},
		{"CEST", false},
		{"CET", false},
		{"EST", false},
		{"MST", false},
		{"GMT", false},
		{"EST5EDT", false},
		{"Japan", false},
		{"utc", false},
		{"Etc/GMT+1", false},
		{"Etc/GMT-14", false},
		{"europe/oslo", false},
		{"EUROPE/OSLO", false},
		{"Europe/oslo", false},
		{"Europe/Oslo ", false},
		{" Europe/Oslo", false},
		{"Europe/ Oslo", false},
		{"Europe/Oslo\n", false},
		{"Europe/Osl", false},
		{"Europe//Oslo", false},
		{"/Europe/Oslo", false},
		{"Europe/Oslo/", false},
		{"../../etc/passwd", false},
		{"Europe/Oslo\x00", false},
		{"Mars/Olympus_Mons", false},
		{"posix/Europe/Oslo", false},
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			axis := WindowAxis{Start: "09:00", End: "17:00", Timezone: tt.zone}
			_, err := (&Guardrails{TimeWindow: &axis}).Compile()
			if tt.ok && err != nil {
				t.Errorf("Compile with zone %q = %v, want nil", tt.zone, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidGuardrails) {
				t.Errorf("Compile with zone %q = %v, want ErrInvalidGuardrails", tt.zone, err)
			}
		})
	}
}

func TestGuard_WindowZoneWrongCaseHint(t *testing.T) {
	err := CheckZoneName("europe/oslo")
	if err == nil || !strings.Contains(err.Error(), `"Europe/Oslo"`) {
		t.Errorf("CheckZoneName(europe/oslo) = %v, want a hint naming Europe/Oslo", err)
	}
}

func TestGuard_WindowZoneFromEmbeddedData(t *testing.T) {
	// The embedded data must give Oslo's rules whatever the host has.
	t.Setenv("ZONEINFO", t.TempDir())
	loc, err := LoadZone("Europe/Oslo")
	if err != nil {
		t.Fatalf("LoadZone: %v", err)
	}
	if loc.String() != "Europe/Oslo" {
		t.Errorf("location name = %q", loc.String())
	}
	summer := utc("2026-07-01T12:00:00Z").In(loc)
	if name, offset := summer.Zone(); name != "CEST" || offset != 2*3600 {
		t.Errorf("Oslo in July = %s %d, want CEST 7200", name, offset)
	}
	winter := utc("2026-01-01T12:00:00Z").In(loc)
	if name, offset := winter.Zone(); name != "CET" || offset != 3600 {
		t.Errorf("Oslo in January = %s %d, want CET 3600", name, offset)
	}
}

func TestGuard_WindowFailureReasons(t *testing.T) {
	// 09:00-17:00 UTC on Mondays and Tuesdays. 2026-06-01 is a Monday and
	// 2026-06-05 a Friday.
	p := compileWindowPolicy(t, "09:00", "17:00", "UTC", "mon", "tue")
	cases := []struct {
		name string
		now  string
		want string
	}{
		{"right hours on a closed day", "2026-06-05T10:00:00Z", ReasonDayNotAllowed},
		{"outside the hours on an open day", "2026-06-01T18:00:00Z", ReasonOutsideWindow},
		{"outside the hours on a closed day", "2026-06-05T18:00:00Z", ReasonOutsideWindow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Evaluate(netipZero, utc(tc.now), nil)
			if len(d.Failures) != 1 {
				t.Fatalf("Failures = %+v, want one", d.Failures)
			}
			if got := d.Failures[0].Reason; got != tc.want {
				t.Errorf("reason = %q, want %q", got, tc.want)
			}
		})
	}
}
