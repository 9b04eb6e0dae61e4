package analytics_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	analyticsv1 "github.com/ates/ates/gen/analytics/v1"
	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/analytics"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/app"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/server/servertest"
)

// env is a running analytics API with a real auth service on a private database, and
// the hand-computed three-day scenario in its audit log.
type env struct {
	*authtest.Env
	book   *ledgertest.Book
	s      ledgertest.Scenario
	client analyticsv1.AnalyticsServiceClient
	http   string
	admin  authtest.User
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool, _ := pgtest.NewDB(t)
	e := &env{Env: authtest.Start(t, pool), book: ledgertest.New(t, pool)}
	cfg := e.Config
	cfg.AnalyticsListen = config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	srv, err := analytics.New(cfg, &app.Deps{Pool: pool, Auth: e.Authenticator(t)}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	servertest.Serve(t, srv.Serve)
	e.client = analyticsv1.NewAnalyticsServiceClient(servertest.Dial(t, srv.Server))
	e.http = srv.HTTPAddr()
	e.admin = e.NewUser(t, authv1.Role_ROLE_ADMIN)
	today := bizday.Of(time.Now(), time.UTC)
	e.s = ledgertest.ThreeDays(e.book, [3]string{
		bizday.Format(today.AddDate(0, 0, -5)), bizday.Format(today.AddDate(0, 0, -4)), bizday.Format(today.AddDate(0, 0, -3)),
	})
	return e
}

func (e *env) closeThrough(t *testing.T, date string) {
	t.Helper()
	day, err := bizday.Parse(date)
	require.NoError(t, err)
	_, err = dailyaccounting.NewCloser(e.Pool, time.UTC, slog.New(slog.DiscardHandler)).CloseDay(context.Background(), day)
	require.NoError(t, err)
}

func TestWorkersBelowZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := e.admin.Context(context.Background())
	// From the scenario: day 1 Bob -20; day 2 Ann -20 and Bob -5; day 3 Cid -11.
	want := map[string]int64{e.s.Days[0]: 1, e.s.Days[1]: 2, e.s.Days[2]: 1}
	check := func(t *testing.T, when string) {
		t.Helper()
		for _, d := range e.s.Days {
			resp, err := e.client.GetWorkerStats(ctx, &analyticsv1.GetWorkerStatsRequest{Date: d})
			require.NoError(t, err)
			require.Equal(t, want[d], resp.GetNegativeBalanceWorkers(), "%s, day %s", when, d)
			wantBelow, gotBelow := map[string]int64{}, map[string]int64{}
			for id, b := range e.s.Want[d] {
				if b.Closing < 0 {
					wantBelow[id.String()] = b.Closing
				}
			}
			for _, b := range resp.GetBelowZero() {
				gotBelow[b.GetUserId()] = b.GetBalance()
				require.NotEmpty(t, b.GetName(), "%s, day %s", when, d)
				require.NotEmpty(t, b.GetEmail(), "%s, day %s", when, d)
			}
			require.Equal(t, wantBelow, gotBelow, "who is below zero, %s, day %s", when, d)
			require.EqualValues(t, 3, resp.GetWorkers())
			require.Equal(t, d, resp.GetDate())
		}
	}
	check(t, "while every day is open")
	e.closeThrough(t, e.s.Days[0])
	check(t, "with day 1 closed")
	e.closeThrough(t, e.s.Days[2])
	check(t, "with every day closed")

	resp, err := e.client.GetWorkerStats(ctx, &analyticsv1.GetWorkerStatsRequest{})
	require.NoError(t, err)
	require.Equal(t, bizday.Format(bizday.Of(time.Now(), time.UTC)), resp.GetDate(), "no date means today")
	require.EqualValues(t, 1, resp.GetNegativeBalanceWorkers(), "Cid's carry of -11 is still his balance today")
}

func TestCompanyEarnings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := e.admin.Context(context.Background())
	d1, d2, d3 := e.s.Days[0], e.s.Days[1], e.s.Days[2]

	resp, err := e.client.GetCompanyEarnings(ctx, &analyticsv1.GetCompanyEarningsRequest{Date: d2})
	require.NoError(t, err)
	require.Len(t, resp.GetDays(), 1)
	require.EqualValues(t, 5, resp.GetTotal(), "day 2: -(25 - 30)")

	e.closeThrough(t, d3) // payouts are not earnings: the figures stay
	before, _ := bizday.Parse(d1)
	resp, err = e.client.GetCompanyEarnings(ctx, &analyticsv1.GetCompanyEarningsRequest{From: bizday.Format(bizday.Prev(before)), To: d3})
	require.NoError(t, err)
	var got []int64
	for _, d := range resp.GetDays() {
		got = append(got, d.GetEarnings())
	}
	require.Equal(t, []int64{0, 5, 5, -74}, got, "a quiet day, then the scenario's three days")
	require.Equal(t, bizday.Format(bizday.Prev(before)), resp.GetDays()[0].GetDate())
	require.EqualValues(t, 5+5-74, resp.GetTotal())
}

func TestTopTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := e.admin.Context(context.Background())
	worker := e.book.Worker()
	at := func(date string, hour int) time.Time {
		d, err := bizday.Parse(date)
		require.NoError(t, err)
		return d.Add(time.Duration(hour) * time.Hour)
	}
	complete := func(reward int64, completed time.Time) uuid.UUID {
		id := uuid.New()
		_, err := e.Pool.Exec(context.Background(), `INSERT INTO tasks
			(id, author_id, assignee_id, description, reward, fee, status, created_at, updated_at, completed_at)
			VALUES ($1, $2, $2, 'top?', $3, -10, 'complete', $4, $4, $4)`, id, worker.ID, reward, completed)
		require.NoError(t, err)
		return id
	}
	d1, d2, d3 := e.s.Days[0], e.s.Days[1], e.s.Days[2]
	complete(30, at(d1, 9))
	best := complete(38, at(d2, 23))
	complete(38, at(d3, 1))  // as good, but later: the first wins
	complete(40, at(d3, 25)) // the day after d3
	_, err := e.Pool.Exec(context.Background(), `INSERT INTO tasks (id, author_id, assignee_id, description, reward, fee)
		VALUES ($1, $2, $2, 'open', 40, -10)`, uuid.New(), worker.ID)
	require.NoError(t, err)

	resp, err := e.client.GetTopTask(ctx, &analyticsv1.GetTopTaskRequest{From: d1, To: d3})
	require.NoError(t, err)
	require.Equal(t, best.String(), resp.GetTask().GetId())
	require.EqualValues(t, 38, resp.GetTask().GetReward())
	require.Equal(t, worker.Name, resp.GetTask().GetAssigneeName(), "shown as the tasks API shows it")

	_, err = e.client.GetTopTask(ctx, &analyticsv1.GetTopTaskRequest{From: d1, To: d1})
	require.NoError(t, err)
	before, _ := bizday.Parse(d1)
	_, err = e.client.GetTopTask(ctx, &analyticsv1.GetTopTaskRequest{From: bizday.Format(before.AddDate(0, 0, -9)), To: bizday.Format(bizday.Prev(before))})
	require.Equal(t, codes.NotFound, status.Code(err), "nothing was completed then")
}

func TestOnlyAdminsAndGoodInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	today := bizday.Of(time.Now(), time.UTC)
	tomorrow := bizday.Format(bizday.Next(today))

	for _, role := range []authv1.Role{authv1.Role_ROLE_WORKER, authv1.Role_ROLE_MANAGER, authv1.Role_ROLE_ACCOUNTANT} {
		u := e.NewUser(t, role)
		_, err := e.client.GetWorkerStats(u.Context(ctx), &analyticsv1.GetWorkerStatsRequest{})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "a %s", role)
		_, err = e.client.GetCompanyEarnings(u.Context(ctx), &analyticsv1.GetCompanyEarningsRequest{})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "a %s", role)
		_, err = e.client.GetTopTask(u.Context(ctx), &analyticsv1.GetTopTaskRequest{From: e.s.Days[0], To: e.s.Days[2]})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "a %s", role)
	}
	_, err := e.client.GetWorkerStats(ctx, &analyticsv1.GetWorkerStatsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	admin := e.admin.Context(ctx)
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"a future day", func() error {
			_, err := e.client.GetWorkerStats(admin, &analyticsv1.GetWorkerStatsRequest{Date: tomorrow})
			return err
		}, "date"},
		{"a malformed day", func() error {
			_, err := e.client.GetWorkerStats(admin, &analyticsv1.GetWorkerStatsRequest{Date: "25.11.2026"})
			return err
		}, "date"},
		{"both a date and a range", func() error {
			_, err := e.client.GetCompanyEarnings(admin, &analyticsv1.GetCompanyEarningsRequest{Date: e.s.Days[0], From: e.s.Days[0], To: e.s.Days[1]})
			return err
		}, "date"},
		{"half a range", func() error {
			_, err := e.client.GetCompanyEarnings(admin, &analyticsv1.GetCompanyEarningsRequest{From: e.s.Days[0]})
			return err
		}, "to"},
		{"a range that ends before it starts", func() error {
			_, err := e.client.GetTopTask(admin, &analyticsv1.GetTopTaskRequest{From: e.s.Days[2], To: e.s.Days[0]})
			return err
		}, "to"},
		{"a range over a year", func() error {
			_, err := e.client.GetCompanyEarnings(admin, &analyticsv1.GetCompanyEarningsRequest{From: "2020-01-01", To: "2022-01-01"})
			return err
		}, "to"},
		{"a range into the future", func() error {
			_, err := e.client.GetTopTask(admin, &analyticsv1.GetTopTaskRequest{From: e.s.Days[0], To: tomorrow})
			return err
		}, "to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Equal(t, codes.InvalidArgument, status.Code(err), "err: %v", err)
			require.ErrorContains(t, err, tc.field)
			require.Equal(t, []string{tc.field}, servertest.ViolatedFields(err), "a google.rpc.BadRequest names the field")
		})
	}

	_, err = e.client.GetCompanyEarnings(admin, &analyticsv1.GetCompanyEarningsRequest{From: "2020-01-01", To: "2022-01-01"})
	require.ErrorContains(t, err, "at most 366 days", "the refusal says the bound")

	t.Run("a reversed range names to over REST", func(t *testing.T) {
		code, out := servertest.REST(t, e.http, http.MethodGet, "/v1/analytics/company?from="+e.s.Days[2]+"&to="+e.s.Days[0], e.admin.Token, "")
		require.Equal(t, http.StatusBadRequest, code, "%v", out)
		require.Equal(t, []string{"to"}, servertest.RESTViolatedFields(out), "%v", out)
	})

	get := func(path, token string) (int, map[string]any) {
		return servertest.REST(t, e.http, http.MethodGet, path, token, "")
	}
	code, out := get("/v1/analytics/company?from="+e.s.Days[0]+"&to="+e.s.Days[2], e.admin.Token)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "-64", out["total"])
	code, out = get("/v1/analytics/workers?date="+e.s.Days[1], e.admin.Token)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "2", out["negative_balance_workers"])
	code, _ = get("/v1/analytics/task?from="+e.s.Days[0]+"&to="+e.s.Days[2], e.NewUser(t, authv1.Role_ROLE_MANAGER).Token)
	require.Equal(t, http.StatusForbidden, code)
}
