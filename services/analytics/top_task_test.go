package analytics_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	"github.com/ates/ates/services/analytics"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server/servertest"
)

// TestTopTaskAtTheEdgesOfAQuarterHourZone reads the top task of one business day in a
// zone 5:45 ahead of UTC, whose midnights fall mid-hour: completions a microsecond
// either side of the day's two midnights count exactly as their instants say, and a
// later completion of the same reward in the same quarter hour loses the tie.
func TestTopTaskAtTheEdgesOfAQuarterHourZone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	loc := time.FixedZone("+0545", 5*3600+45*60)
	cfg := e.Config
	cfg.BusinessTZ, cfg.BusinessTZName = loc, loc.String()
	cfg.AnalyticsListen = config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	srv, err := analytics.New(cfg, &app.Deps{Pool: e.Pool, Auth: e.Authenticator(t)}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	servertest.Serve(t, srv.Serve)
	client := analyticsv1.NewAnalyticsServiceClient(servertest.Dial(t, srv.Server))
	ctx := e.admin.Context(context.Background())

	worker := e.book.Worker()
	complete := func(reward int64, completed time.Time) uuid.UUID {
		id := uuid.New()
		_, err := e.Pool.Exec(context.Background(), `INSERT INTO tasks
			(id, author_id, assignee_id, description, reward, fee, created_at, updated_at)
			VALUES ($1, $2, $2, 'edge', $3, -10, $4, $4)`, id, worker.ID, reward, completed)
		require.NoError(t, err)
		// Completed as taskhandler does it: an update, which the top-task trigger sees.
		_, err = e.Pool.Exec(context.Background(), `UPDATE tasks SET status = 'complete', completed_at = $2 WHERE id = $1`, id, completed)
		require.NoError(t, err)
		return id
	}
	day := bizday.Of(time.Now(), loc).AddDate(0, 0, -2)
	date := bizday.Format(day)
	midnight := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
	next := midnight.AddDate(0, 0, 1)
	top := func() string {
		t.Helper()
		resp, err := client.GetTopTask(ctx, &analyticsv1.GetTopTaskRequest{From: date, To: date})
		require.NoError(t, err)
		return resp.GetTask().GetId()
	}

	complete(40, midnight.Add(-time.Microsecond)) // the day before
	complete(40, next)                            // the day after
	first := complete(39, midnight)
	complete(39, midnight.Add(time.Minute)) // as good, same quarter hour, later
	require.Equal(t, first.String(), top(), "the best completion inside the day, the earliest of a tie")

	last := complete(40, next.Add(-time.Microsecond))
	require.Equal(t, last.String(), top(), "the day's last microsecond is in the day")
}
