package analytics

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ates/ates/services/internal/bizday"
)

// FuzzParseRange checks the from/to range of the analytics calls on any pair of strings:
// it is refused with InvalidArgument, or both ends are days written exactly as given,
// from ≤ to ≤ the current day, at most maxRangeDays days in all.
func FuzzParseRange(f *testing.F) {
	for _, r := range [][2]string{
		{"2026-11-01", "2026-11-24"},
		{"2026-11-24", "2026-11-24"},
		{"2025-11-24", "2026-11-24"}, // 366 days
		{"2025-11-23", "2026-11-24"}, // 367 days
		{"2026-11-24", "2026-11-01"},
		{"2026-11-24", "2026-11-25"},
		{"0000-01-01", "0000-12-31"},
		{"2026-11-24", ""},
		{"", ""},
		{"2026-02-30", "2026-03-01"},
	} {
		f.Add(r[0], r[1], int64(0))
	}
	f.Fuzz(func(t *testing.T, fromDate, toDate string, offsetDays int64) {
		current := time.Date(2026, 11, 24+int(offsetDays%100_000), 0, 0, 0, 0, time.UTC)
		from, to, err := parseRange(fromDate, toDate, current, time.UTC)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("parseRange(%q, %q) = %v, not InvalidArgument", fromDate, toDate, err)
			}
			return
		}
		if bizday.Format(from) != fromDate || bizday.Format(to) != toDate {
			t.Fatalf("parseRange(%q, %q) = %v, %v", fromDate, toDate, from, to)
		}
		if to.Before(from) || to.After(current) {
			t.Fatalf("parseRange(%q, %q) accepted a range not in order up to the current day %v", fromDate, toDate, current)
		}
		days := 0
		for d := from; !d.After(to); d = bizday.Next(d) {
			if days++; days > maxRangeDays {
				t.Fatalf("parseRange(%q, %q) accepted more than %d days", fromDate, toDate, maxRangeDays)
			}
		}
	})
}
