package ledger_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/ledger"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	d := func(day int) time.Time { return time.Date(2026, 3, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name  string
		carry int64
		sums  []ledger.DaySums
		want  ledger.Balance
	}{
		{"no activity and no carry is all zero", 0, nil, ledger.Balance{}},
		{"a carry with no activity since stays the opening and the closing", -7, nil,
			ledger.Balance{Opening: -7, Closing: -7}},
		{"the day's own rows make the closing", -7, []ledger.DaySums{{d(5), 30, -12}},
			ledger.Balance{Opening: -7, Rewards: 30, Fees: -12, Closing: 11}},
		{"a profitable open day before is paid out in thought: the next opening is 0", 0,
			[]ledger.DaySums{{d(3), 40, -10}, {d(5), 0, -15}},
			ledger.Balance{Opening: 0, Fees: -15, Closing: -15}},
		{"a losing open day before carries on", -5,
			[]ledger.DaySums{{d(3), 10, -20}, {d(4), 0, -10}, {d(5), 20, 0}},
			ledger.Balance{Opening: -25, Rewards: 20, Closing: -5}},
		{"an earlier day paying back only part of the carry leaves the rest", -30,
			[]ledger.DaySums{{d(4), 25, 0}, {d(5), 0, 0}},
			ledger.Balance{Opening: -5, Closing: -5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, ledger.Open(tc.carry, d(5), tc.sums))
		})
	}
}

func TestFirstOpen(t *testing.T) {
	t.Parallel()
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		require.NoError(t, err)
		return d
	}
	today := day("2026-11-27")
	for _, tt := range []struct {
		name       string
		lastClosed time.Time
		want       time.Time
	}{
		{"no day was ever closed: today", time.Time{}, today},
		{"yesterday is closed: today", day("2026-11-26"), today},
		{"an older day is closed: today", day("2026-10-01"), today},
		{"today was closed early: tomorrow", today, day("2026-11-28")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ledger.FirstOpen(today, tt.lastClosed))
		})
	}
}
