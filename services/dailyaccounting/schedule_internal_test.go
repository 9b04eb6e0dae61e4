package dailyaccounting

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
)

func TestParseScheduleNamesTheSetting(t *testing.T) {
	t.Parallel()
	_, err := parseSchedule("5 0 * *")
	require.ErrorContains(t, err, "ATES_CLOSE_DAY_SCHEDULE")
	_, err = parseSchedule("@daily")
	require.NoError(t, err)
}

func TestMissedToday(t *testing.T) {
	t.Parallel()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	require.NoError(t, err)
	sched, err := parseSchedule("5 0 * * *")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		now    time.Time
		missed bool
	}{
		{"before today's run it was not missed", time.Date(2026, 3, 5, 0, 4, 0, 0, tokyo), false},
		{"at the time of today's run it is due", time.Date(2026, 3, 5, 0, 5, 0, 0, tokyo), true},
		{"in the afternoon today's run is past", time.Date(2026, 3, 5, 15, 0, 0, 0, tokyo), true},
		{"the schedule's time zone is the business one, not UTC", time.Date(2026, 3, 4, 15, 3, 0, 0, time.UTC), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Service{closer: &Closer{now: func() time.Time { return tc.now }}, schedule: sched, loc: tokyo}
			require.Equal(t, tc.missed, s.missedToday())
		})
	}
}

func TestScheduleClosesYesterdayAtStartWhenTodaysRunWasMissed(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	book := ledgertest.New(t, pool)
	ann := book.Worker()
	book.Fee(ann.ID, "2026-03-03", -10)
	sched, err := parseSchedule("5 0 * * *")
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	closer := NewCloser(pool, time.UTC, log)
	closer.now = func() time.Time { return time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC) }
	s := &Service{closer: closer, schedule: sched, loc: time.UTC, log: log}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.runSchedule(ctx) }()
	require.Eventually(t, func() bool {
		return book.Count("SELECT count(*) FROM closed_days") == 2
	}, 5*time.Second, 20*time.Millisecond, "yesterday (2026-03-04) and the open day before it are closed")
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, ledgertest.Balance{Fees: -10, Closing: -10, Carry: -10}, book.Balances("2026-03-03")[ann.ID])
	require.Equal(t, ledgertest.Balance{Opening: -10, Closing: -10, Carry: -10}, book.Balances("2026-03-04")[ann.ID])
}
