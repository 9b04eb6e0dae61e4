package bizday_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/bizday"
)

func TestOf(t *testing.T) {
	t.Parallel()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	require.NoError(t, err)
	instant := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC) // 05:00 on the 25th in Tokyo

	for _, tc := range []struct {
		name string
		loc  *time.Location
		want string
	}{
		{"in UTC the day is the UTC date", time.UTC, "2026-11-24"},
		{"in Tokyo the day has already turned", tokyo, "2026-11-25"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, bizday.Format(bizday.Of(instant, tc.loc)))
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	d, err := bizday.Parse("2026-02-28")
	require.NoError(t, err)
	require.Equal(t, "2026-03-01", bizday.Format(bizday.Next(d)))
	require.Equal(t, "2026-02-27", bizday.Format(bizday.Prev(d)))
	for _, bad := range []string{"", "2026-02-30", "26-02-01", "2026/02/01"} {
		_, err := bizday.Parse(bad)
		require.Error(t, err, bad)
	}
}

func TestParseUpTo(t *testing.T) {
	t.Parallel()
	today, err := bizday.Parse("2026-11-25")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, date, want, err string
	}{
		{"empty means today", "", "2026-11-25", ""},
		{"today itself is fine", "2026-11-25", "2026-11-25", ""},
		{"a past day is fine", "2025-01-31", "2025-01-31", ""},
		{"tomorrow is refused", "2026-11-26", "", "future"},
		{"a non-date is refused", "2026-13-01", "", "YYYY-MM-DD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			day, err := bizday.ParseUpTo(tc.date, today)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, bizday.Format(day))
		})
	}
}
