// Package bizday converts between instants and business days: calendar dates in the
// configured business time zone. A day is represented as a time.Time at midnight UTC of
// that date, which is how pgx reads and writes PostgreSQL's date type.
package bizday

import (
	"fmt"
	"time"
)

// Layout is the one textual form of a day: YYYY-MM-DD.
const Layout = time.DateOnly

// Of returns the business day of instant t in loc.
func Of(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Parse reads a YYYY-MM-DD day.
func Parse(s string) (time.Time, error) {
	d, err := time.Parse(Layout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date of the form YYYY-MM-DD", s)
	}
	return d, nil
}

// Format writes day as YYYY-MM-DD.
func Format(day time.Time) string { return day.Format(Layout) }

// Next returns the day after day.
func Next(day time.Time) time.Time { return day.AddDate(0, 0, 1) }

// Prev returns the day before day.
func Prev(day time.Time) time.Time { return day.AddDate(0, 0, -1) }

// ParseUpTo reads a day asked for in a request: empty means current, the open business
// day money is written to (today, or later when today was closed early), and a day after
// it is refused (nothing can have happened on it yet).
func ParseUpTo(date string, current time.Time) (time.Time, error) {
	if date == "" {
		return current, nil
	}
	day, err := Parse(date)
	if err != nil {
		return time.Time{}, err
	}
	if day.After(current) {
		return time.Time{}, fmt.Errorf("%s is in the future (the current business day is %s)", date, Format(current))
	}
	return day, nil
}
