package guard

import (
	"fmt"
	"time"
)

// MaxLifetimeMonths is the longest machine lifetime and the extension cap,
// in calendar months.
const MaxLifetimeMonths = 12

// MinLifetime is the shortest machine lifetime.
const MinLifetime = time.Hour

// AddMonths returns t plus months calendar months in UTC, keeping the time
// of day. When the target month is shorter than the day of t, the result is
// the last day of the target month. So 31 January plus one month is 28 or
// 29 February, and 29 February 2028 plus twelve months is 28 February 2029.
// time.AddDate would roll those dates into March instead, which is why it
// is not used for months. Negative months count backwards with the
// same clamping (31 March minus one month is the last day of February).
func AddMonths(t time.Time, months int) time.Time {
	t = t.UTC()
	year, month, day := t.Date()

	// Month index from year 0, split back into year and month with floor
	// division so that negative sums land in the right year.
	index := year*12 + int(month) - 1 + months
	year, month = floorDiv(index, 12), time.Month(floorMod(index, 12)+1)

	if last := daysIn(year, month); day > last {
		day = last
	}
	hour, minute, second := t.Clock()
	return time.Date(year, month, day, hour, minute, second, t.Nanosecond(), time.UTC)
}

// AddLifetime returns t plus months calendar months (see AddMonths), then
// days of 24 hours and hours hours, in UTC. Lifetimes are computed in UTC,
// so a day is always 24 hours.
func AddLifetime(t time.Time, months, days, hours int) time.Time {
	t = AddMonths(t, months)
	// Fold hours into days first, so that no Duration multiplication can
	// overflow for any int input.
	days += hours / 24
	hours %= 24
	return t.AddDate(0, 0, days).Add(time.Duration(hours) * time.Hour)
}

// ExtensionCap returns the latest expiry an extension may set at now: now
// plus twelve calendar months. The cap moves with the clock.
func ExtensionCap(now time.Time) time.Time {
	return AddMonths(now, MaxLifetimeMonths)
}

// ValidateLifetime checks a lifetime given as months, days and hours:
// every part must be zero or more, and the lifetime measured from from must
// be at least one hour and end no later than twelve calendar months after
// from. It returns ErrInvalidLifetime naming the value.
func ValidateLifetime(months, days, hours int, from time.Time) error {
	if months < 0 || days < 0 || hours < 0 {
		return fmt.Errorf("%w: %s has a negative part; every part must be 0 or more",
			ErrInvalidLifetime, lifetimeText(months, days, hours))
	}

	// Reject clearly oversized parts before any arithmetic, so that huge
	// values cannot overflow the date computation.
	const maxDays = 366 + 1
	if months > MaxLifetimeMonths || days > maxDays || hours > maxDays*24 {
		return fmt.Errorf("%w: %s is longer than %d calendar months",
			ErrInvalidLifetime, lifetimeText(months, days, hours), MaxLifetimeMonths)
	}

	end := AddLifetime(from, months, days, hours)
	if end.Sub(from.UTC()) < MinLifetime {
		return fmt.Errorf("%w: %s is shorter than the minimum of 1 hour", ErrInvalidLifetime,
			lifetimeText(months, days, hours))
	}
	if limit := AddMonths(from, MaxLifetimeMonths); end.After(limit) {
		return fmt.Errorf("%w: %s from %s ends %s, after the %d-month limit %s",
			ErrInvalidLifetime, lifetimeText(months, days, hours), from.UTC().Format(time.RFC3339),
			end.Format(time.RFC3339), MaxLifetimeMonths, limit.Format(time.RFC3339))
	}
	return nil
}

// Expired reports whether a machine with expiry expiresAtMs (Unix
// milliseconds) is expired at now: now >= expiresAt. The expiry instant
// itself is already expired. Every expiry decision (request check, sweep,
// extension and alerts) uses this one comparison so that none disagrees at
// the boundary.
func Expired(expiresAtMs int64, now time.Time) bool {
	return now.UnixMilli() >= expiresAtMs
}

func lifetimeText(months, days, hours int) string {
	return fmt.Sprintf("lifetime of %d months, %d days, %d hours", months, days, hours)
}

func daysIn(year int, month time.Month) int {
	// Day 0 of the next month is the last day of this month.
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int) int {
	return a - floorDiv(a, b)*b
}
