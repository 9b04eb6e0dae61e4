package analytics_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	"github.com/ates/ates/services/internal/bizday"
)

// TestReadsAfterTodayIsClosedEarly closes every day through today: a request without a
// date then means the first open day, tomorrow, rolled on from today's carries; ranges
// may end on it, and only the day after it is the future.
func TestReadsAfterTodayIsClosedEarly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := e.admin.Context(context.Background())
	today := bizday.Of(time.Now(), time.UTC)
	tomorrow := bizday.Format(bizday.Next(today))
	e.closeThrough(t, bizday.Format(today))
	e.book.Fee(e.s.Ann.ID, tomorrow, -13) // Cid still carries -11 from the scenario's day 3

	for _, date := range []string{"", tomorrow} {
		workers, err := e.client.GetWorkerStats(ctx, &analyticsv1.GetWorkerStatsRequest{Date: date})
		require.NoError(t, err, "date %q", date)
		require.Equal(t, tomorrow, workers.GetDate(), "date %q", date)
		require.EqualValues(t, 2, workers.GetNegativeBalanceWorkers(), "Ann's fee of tomorrow and Cid's carry (date %q)", date)

		earnings, err := e.client.GetCompanyEarnings(ctx, &analyticsv1.GetCompanyEarningsRequest{Date: date})
		require.NoError(t, err, "date %q", date)
		require.Len(t, earnings.GetDays(), 1)
		require.Equal(t, tomorrow, earnings.GetDays()[0].GetDate(), "date %q", date)
		require.EqualValues(t, 13, earnings.GetTotal(), "date %q", date)
	}

	earnings, err := e.client.GetCompanyEarnings(ctx, &analyticsv1.GetCompanyEarningsRequest{From: e.s.Days[0], To: tomorrow})
	require.NoError(t, err, "a range may end on the first open day")
	require.EqualValues(t, 5+5-74+13, earnings.GetTotal())
	_, err = e.client.GetTopTask(ctx, &analyticsv1.GetTopTaskRequest{From: bizday.Format(today), To: tomorrow})
	require.Equal(t, codes.NotFound, status.Code(err), "a range up to the first open day is read, and holds no completion: %v", err)

	after := bizday.Format(bizday.Next(bizday.Next(today)))
	_, err = e.client.GetWorkerStats(ctx, &analyticsv1.GetWorkerStatsRequest{Date: after})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "the day after the first open day: %v", err)
	require.ErrorContains(t, err, "future")
}
