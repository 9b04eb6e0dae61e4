package bizday_test

import (
	"testing"
	"time"

	"github.com/ates/ates/services/internal/bizday"
)

// FuzzParse checks that a day is read only from its one textual form: whatever Parse
// accepts is a midnight UTC that Format writes back as the very same string.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"2026-11-24", "0000-01-01", "9999-12-31", "2024-02-29", "2023-02-29", "2026-13-01",
		"2026-1-1", "+2026-11-24", "2026-11-24T00:00:00Z", " 2026-11-24", "２０２６-11-24", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		day, err := bizday.Parse(s)
		if err != nil {
			return
		}
		if got := bizday.Format(day); got != s {
			t.Fatalf("Parse(%q) formats back as %q", s, got)
		}
		if h, m, sec := day.Clock(); day.Location() != time.UTC || h != 0 || m != 0 || sec != 0 || day.Nanosecond() != 0 {
			t.Fatalf("Parse(%q) = %v, not a midnight UTC", s, day)
		}
		if next := bizday.Next(day); bizday.Prev(next) != day || !next.After(day) {
			t.Fatalf("Next and Prev of %s do not undo each other", s)
		}
	})
}

// FuzzParseUpTo checks the day a request asks for: empty is the current day, anything
// else a day that Parse accepts, never after the current one.
func FuzzParseUpTo(f *testing.F) {
	f.Add("", int64(0))
	f.Add("2026-11-24", int64(0))
	f.Add("2026-11-25", int64(0))
	f.Add("2026-11-23", int64(-1))
	f.Add("1999-01-01", int64(3000))
	f.Add("2026-11-24 ", int64(1))
	f.Fuzz(func(t *testing.T, date string, offsetDays int64) {
		// The current day near 2026-11-24, as the store answers it: a midnight UTC.
		current := time.Date(2026, 11, 24+int(offsetDays%100_000), 0, 0, 0, 0, time.UTC)
		day, err := bizday.ParseUpTo(date, current)
		switch {
		case date == "":
			if err != nil || day != current {
				t.Fatalf("ParseUpTo(\"\") = %v, %v; want the current day %v", day, err, current)
			}
		case err != nil:
			if parsed, perr := bizday.Parse(date); perr == nil && !parsed.After(current) {
				t.Fatalf("ParseUpTo(%q) refused a day up to the current one: %v", date, err)
			}
		default:
			if day.After(current) {
				t.Fatalf("ParseUpTo(%q) = %v, after the current day %v", date, day, current)
			}
			if bizday.Format(day) != date {
				t.Fatalf("ParseUpTo(%q) = %v, which formats differently", date, day)
			}
		}
	})
}
