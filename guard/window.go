package guard

import (
	"fmt"
	"time"
)

// minutesPerDay is the number of minutes in a wall-clock day.
const minutesPerDay = 24 * 60

// dayNames are the accepted day names, indexed by time.Weekday.
var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// timeWindow is a compiled WindowAxis. The window is a range of local
// wall-clock minutes of the day from start to end, both included, wrapping
// midnight when end is before start. Comparing minutes of the day, not
// instants built with time.Date, makes DST transitions behave. On a
// spring-forward day the skipped local times never occur, and on a
// fall-back day the repeated local times are inside the window both times.
type timeWindow struct {
	start, end int // minutes after local midnight
	zone       string
	location   *time.Location
	// days has bit d set when the window may open on time.Weekday d; zero
	// means every day.
	days    uint8
	observe bool
}

func compileWindow(axis *WindowAxis) (*timeWindow, error) {
	start, err := parseClock(axis.Start)
	if err != nil {
		return nil, fmt.Errorf("%w: timeWindow.start: %v", ErrInvalidGuardrails, err)
	}
	end, err := parseClock(axis.End)
	if err != nil {
		return nil, fmt.Errorf("%w: timeWindow.end: %v", ErrInvalidGuardrails, err)
	}
	if start == end {
		return nil, fmt.Errorf("%w: timeWindow start and end are both %q; "+
			"use different times (a window that wraps midnight has end before start)",
			ErrInvalidGuardrails, axis.Start)
	}

	location, err := LoadZone(axis.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%w: timeWindow.timezone: %v", ErrInvalidGuardrails, err)
	}
	days, err := parseDays(axis.Days)
	if err != nil {
		return nil, fmt.Errorf("%w: timeWindow.days: %v", ErrInvalidGuardrails, err)
	}

	return &timeWindow{
		start:    start,
		end:      end,
		zone:     axis.Timezone,
		location: location,
		days:     days,
		observe:  axis.Observe,
	}, nil
}

// parseClock parses "HH:MM", 00:00 to 23:59, into minutes after midnight.
func parseClock(text string) (int, error) {
	bad := fmt.Errorf("%q is not a time of day; want HH:MM from 00:00 to 23:59", text)
	if len(text) != 5 || text[2] != ':' {
		return 0, bad
	}
	for _, i := range []int{0, 1, 3, 4} {
		if text[i] < '0' || text[i] > '9' {
			return 0, bad
		}
	}

	hour := int(text[0]-'0')*10 + int(text[1]-'0')
	minute := int(text[3]-'0')*10 + int(text[4]-'0')
	if hour > 23 || minute > 59 {
		return 0, bad
	}
	return hour*60 + minute, nil
}

// parseDays parses day names ("mon" … "sun", lower case, each once) into a
// bit set. An empty list means every day.
func parseDays(names []string) (uint8, error) {
	if len(names) > len(dayNames) {
		return 0, fmt.Errorf("%d days listed; name each of mon..sun at most once", len(names))
	}

	var days uint8
	for _, name := range names {
		day := -1
		for d, dayName := range dayNames {
			if name == dayName {
				day = d
			}
		}
		if day < 0 {
			return 0, fmt.Errorf("%q is not a day; use mon, tue, wed, thu, fri, sat or sun", name)
		}
		if days&(1<<day) != 0 {
			return 0, fmt.Errorf("%q is listed twice", name)
		}
		days |= 1 << day
	}
	return days, nil
}

// contains reports whether now falls inside the window, and returns the
// local time that was checked.
func (w *timeWindow) contains(now time.Time) (bool, time.Time) {
	local := now.In(w.location)
	minute := local.Hour()*60 + local.Minute()
	today := local.Weekday()

	if w.start < w.end {
		return w.start <= minute && minute <= w.end && w.openOn(today), local
	}

	// The window wraps midnight. Up to the end it opened yesterday, so the
	// day test applies to yesterday.
	if minute >= w.start {
		return w.openOn(today), local
	}
	if minute <= w.end {
		return w.openOn((today + 6) % 7), local
	}
	return false, local
}

func (w *timeWindow) openOn(day time.Weekday) bool {
	return w.days == 0 || w.days&(1<<day) != 0
}

// observed formats the checked local time for the audit record, for
// example "Mon 16:30 Europe/Oslo".
func (w *timeWindow) observed(local time.Time) string {
	return local.Format("Mon 15:04") + " " + w.zone
}
