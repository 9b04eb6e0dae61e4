package accounting_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth/authtest"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/server/servertest"
)

// requireCode checks err's gRPC code and that its message names field.
func requireCode(t *testing.T, err error, code, field string) {
	t.Helper()
	require.Equal(t, code, status.Code(err).String(), "err: %v", err)
	require.Contains(t, status.Convert(err).Message(), field)
	if code == codes.InvalidArgument.String() {
		require.Equal(t, []string{field}, servertest.ViolatedFields(err), "a google.rpc.BadRequest names the field")
	}
}

func TestBalanceAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	worker := e.NewUser(t, authv1.Role_ROLE_WORKER)
	colleague := e.NewUser(t, authv1.Role_ROLE_WORKER)
	e.book.Fee(worker.ID, "2026-03-02", -17)
	e.book.Fee(colleague.ID, "2026-03-02", -13)
	roles := map[string]authtest.User{
		"worker":     worker,
		"manager":    e.NewUser(t, authv1.Role_ROLE_MANAGER),
		"admin":      e.NewUser(t, authv1.Role_ROLE_ADMIN),
		"accountant": e.NewUser(t, authv1.Role_ROLE_ACCOUNTANT),
	}

	for _, tc := range []struct {
		name   string
		caller string
		user   string
		code   codes.Code
		fees   int64
	}{
		{"a worker reads their own balance by default", "worker", "", codes.OK, -17},
		{"a worker may name themselves", "worker", worker.ID.String(), codes.OK, -17},
		{"a worker may not read a colleague's balance", "worker", colleague.ID.String(), codes.PermissionDenied, 0},
		{"a manager reads a worker's balance", "manager", colleague.ID.String(), codes.OK, -13},
		{"an admin reads a worker's balance", "admin", worker.ID.String(), codes.OK, -17},
		{"an accountant reads a worker's balance", "accountant", colleague.ID.String(), codes.OK, -13},
		{"an accountant reads their own (empty) balance by default", "accountant", "", codes.OK, 0},
		{"an unknown user is not found", "manager", uuid.NewString(), codes.NotFound, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			caller := roles[tc.caller]
			resp, err := e.client.GetBalance(caller.Context(t.Context()), &accountingv1.GetBalanceRequest{UserId: tc.user, Date: "2026-03-02"})
			require.Equal(t, tc.code, status.Code(err), "err: %v", err)
			if tc.code != codes.OK {
				require.Contains(t, status.Convert(err).Message(), "user_id")
				return
			}
			want := tc.user
			if want == "" {
				want = caller.ID.String()
			}
			require.Equal(t, want, resp.GetBalance().GetUserId())
			require.Equal(t, tc.fees, resp.GetBalance().GetFees())
		})
	}

	t.Run("stats are refused to workers only", func(t *testing.T) {
		t.Parallel()
		for role, u := range roles {
			_, err := e.client.GetStats(u.Context(t.Context()), &accountingv1.GetStatsRequest{Date: "2026-03-02"})
			if role == "worker" {
				require.Equal(t, codes.PermissionDenied, status.Code(err), "err: %v", err)
			} else {
				require.NoError(t, err, role)
			}
		}
	})

	t.Run("a call without a token is unauthenticated", func(t *testing.T) {
		t.Parallel()
		_, err := e.client.GetBalance(context.Background(), &accountingv1.GetBalanceRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})
}

func TestDates(t *testing.T) {
	t.Parallel()
	// Kiritimati is 14 hours ahead of UTC, so its today is often not the UTC one.
	loc, err := time.LoadLocation("Pacific/Kiritimati")
	require.NoError(t, err)
	e := newEnv(t, loc)
	worker := e.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := e.NewUser(t, authv1.Role_ROLE_MANAGER)

	t.Run("an empty date is today in the business time zone", func(t *testing.T) {
		t.Parallel()
		before := bizday.Format(bizday.Of(time.Now(), loc))
		e.book.Fee(worker.ID, before, -14)
		b := e.balance(t, worker, "", "").GetBalance()
		after := bizday.Format(bizday.Of(time.Now(), loc))
		require.Contains(t, []string{before, after}, b.GetDate())
		if b.GetDate() == before {
			require.Equal(t, int64(-14), b.GetFees(), "today's row counts")
		}
		stats, err := e.client.GetStats(manager.Context(t.Context()), &accountingv1.GetStatsRequest{})
		require.NoError(t, err)
		require.Contains(t, []string{before, after}, stats.GetDate())
	})

	tomorrow := bizday.Format(bizday.Next(bizday.Next(bizday.Of(time.Now(), loc))))
	for _, tc := range []struct {
		name string
		date string
	}{
		{"a future date is refused", tomorrow},
		{"a date that does not exist is refused", "2026-02-30"},
		{"a date not of the form YYYY-MM-DD is refused", "03/02/2026"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.client.GetBalance(worker.Context(t.Context()), &accountingv1.GetBalanceRequest{Date: tc.date})
			requireCode(t, err, "InvalidArgument", "date")
			_, err = e.client.GetStats(manager.Context(t.Context()), &accountingv1.GetStatsRequest{Date: tc.date})
			requireCode(t, err, "InvalidArgument", "date")
		})
	}
}

func TestREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	worker := e.NewUser(t, authv1.Role_ROLE_WORKER)
	colleague := e.NewUser(t, authv1.Role_ROLE_WORKER)
	manager := e.NewUser(t, authv1.Role_ROLE_MANAGER)
	task := e.book.Fee(worker.ID, "2026-03-02", -12)
	e.book.Reward(worker.ID, task, "2026-03-02", 33)
	e.closeDay(t, "2026-03-02")

	code, body := e.rest(t, "/v1/accounting/balance?date=2026-03-02", worker.Token)
	require.Equal(t, http.StatusOK, code, "body: %v", body)
	b := body["balance"].(map[string]any)
	require.Equal(t, worker.ID.String(), b["user_id"])
	require.Equal(t, "2026-03-02", b["date"])
	require.Equal(t, "21", b["closing"], "int64 is a JSON string")
	require.Equal(t, "21", b["payout"])
	require.Equal(t, true, b["closed"])
	entries := body["entries"].([]any)
	require.Len(t, entries, 3)
	require.Equal(t, task.String(), entries[0].(map[string]any)["task_id"])
	require.Equal(t, "LOG_KIND_PAYOUT", entries[2].(map[string]any)["kind"])

	code, body = e.rest(t, "/v1/accounting/balance?user_id="+colleague.ID.String(), worker.Token)
	require.Equal(t, http.StatusForbidden, code, "body: %v", body)

	code, _ = e.rest(t, "/v1/accounting/stats?date=2026-03-02", worker.Token)
	require.Equal(t, http.StatusForbidden, code)
	code, body = e.rest(t, "/v1/accounting/stats?date=2026-03-02", manager.Token)
	require.Equal(t, http.StatusOK, code, "body: %v", body)
	require.Equal(t, "-21", body["earnings"])

	code, body = e.rest(t, "/v1/accounting/balance?date=2999-01-01", worker.Token)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body["message"], "date")
}
