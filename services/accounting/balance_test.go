package accounting_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/ledgertest"
)

var days = [3]string{"2026-03-02", "2026-03-03", "2026-03-04"}

func TestBalanceOverThreeDays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := ledgertest.ThreeDays(e.book, days)
	accountant := e.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)
	workers := []uuid.UUID{s.Ann.ID, s.Bob.ID, s.Cid.ID}

	// check compares every worker's balance of every day: the closed days with the
	// hand-computed rows, the open ones with the same figures before payout and carry.
	check := func(t *testing.T, closedThrough int) {
		t.Helper()
		for i, d := range days {
			for _, w := range workers {
				b := e.balance(t, accountant, w.String(), d).GetBalance()
				want := s.Want[d][w]
				closed := i <= closedThrough
				if !closed {
					want.Payout, want.Carry = 0, 0
				}
				require.Equal(t, want, figures(b), "balance of %s on %s (closed: %v)", w, d, closed)
				require.Equal(t, closed, b.GetClosed(), "%s closed", d)
				require.Equal(t, w.String(), b.GetUserId())
				require.Equal(t, d, b.GetDate())
			}
		}
	}

	t.Run("before any close every day is computed on the fly", func(t *testing.T) { check(t, -1) })
	e.closeDay(t, days[0])
	t.Run("after day 1 closes, days 2 and 3 roll on from its carry", func(t *testing.T) { check(t, 0) })
	e.closeDay(t, days[2])
	t.Run("the close writes what the open days showed, plus payout and carry", func(t *testing.T) { check(t, 2) })

	t.Run("the day's rows come oldest first with their tasks, the payout last", func(t *testing.T) {
		resp := e.balance(t, accountant, s.Ann.ID.String(), days[0])
		rows := e.book.Rows(s.Ann.ID, days[0])
		require.Len(t, resp.GetEntries(), len(rows)+1)
		for i, r := range rows {
			got := resp.GetEntries()[i]
			require.Equal(t, r.Task.String(), got.GetTaskId())
			require.Equal(t, ledgertest.Description(r.Task), got.GetTaskDescription())
			require.Equal(t, r.Amount, got.GetAmount())
			require.Equal(t, "LOG_KIND_"+map[string]string{"fee": "FEE", "reward": "REWARD"}[r.Kind], got.GetKind().String())
			require.Equal(t, s.Ann.ID.String(), got.GetUserId())
			require.Equal(t, days[0], got.GetDate())
			require.NotEmpty(t, got.GetId())
		}
		payout := resp.GetEntries()[len(rows)]
		require.Equal(t, accountingv1.LogKind_LOG_KIND_PAYOUT, payout.GetKind())
		require.Equal(t, int64(-15), payout.GetAmount())
		require.Empty(t, payout.GetTaskId())
		require.Empty(t, payout.GetTaskDescription())
	})
}

func TestStatsAreTheCompanysEarnings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s := ledgertest.ThreeDays(e.book, days)
	accountant := e.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)
	check := func(t *testing.T) {
		t.Helper()
		for _, d := range days {
			resp, err := e.client.GetStats(accountant.Context(t.Context()), &accountingv1.GetStatsRequest{Date: d})
			require.NoError(t, err)
			require.Equal(t, d, resp.GetDate())
			require.Equal(t, s.Stats[d], ledgertest.Stats{Earnings: resp.GetEarnings(), Rewards: resp.GetRewards(), Fees: resp.GetFees()}, "stats of %s", d)
		}
	}
	t.Run("open days", check)
	e.closeDay(t, days[2])
	t.Run("closed days, whose payouts are not earnings", check)

	resp, err := e.client.GetStats(accountant.Context(t.Context()), &accountingv1.GetStatsRequest{Date: "2026-01-01"})
	require.NoError(t, err)
	require.Zero(t, resp.GetEarnings(), "a day without activity earned nothing")
}

func TestEntriesArePaginated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	worker := e.NewUser(t, authv1.Role_ROLE_WORKER)
	other := e.NewUser(t, authv1.Role_ROLE_WORKER)
	d := "2026-03-02"
	var want []int64
	for i := range 5 {
		e.book.Fee(worker.ID, d, -int64(10+i))
		want = append(want, -int64(10+i))
	}
	e.book.Fee(other.ID, d, -20)

	var got []int64
	token := ""
	for page := 0; ; page++ {
		resp, err := e.client.GetBalance(worker.Context(t.Context()), &accountingv1.GetBalanceRequest{Date: d, PageSize: 2, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(resp.GetEntries()), 2)
		require.Equal(t, int64(-60), resp.GetBalance().GetFees(), "every page carries the whole day's balance")
		for _, en := range resp.GetEntries() {
			got = append(got, en.GetAmount())
		}
		if token = resp.GetNextPageToken(); token == "" {
			require.Equal(t, 2, page, "5 rows in pages of 2")
			break
		}
	}
	require.Equal(t, want, got, "every row once, oldest first")

	resp, err := e.client.GetBalance(worker.Context(t.Context()), &accountingv1.GetBalanceRequest{Date: d})
	require.NoError(t, err)
	require.Len(t, resp.GetEntries(), 5, "the default page holds them all")
	require.Empty(t, resp.GetNextPageToken())

	first, err := e.client.GetBalance(worker.Context(t.Context()), &accountingv1.GetBalanceRequest{Date: d, PageSize: 1})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		req  *accountingv1.GetBalanceRequest
	}{
		{"a token that is not one is refused", &accountingv1.GetBalanceRequest{Date: d, PageToken: "garbage!"}},
		{"a token of another day is refused", &accountingv1.GetBalanceRequest{Date: "2026-03-03", PageToken: first.GetNextPageToken()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.GetBalance(worker.Context(t.Context()), tc.req)
			requireCode(t, err, "InvalidArgument", "page_token")
		})
	}
}

// TestTodayClosedEarly: when an operator closed today early, money written after the
// close is on tomorrow, the first open day; a balance asked for without a date shows
// that day, and asking for it by date is not refused as the future.
func TestTodayClosedEarly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	accountant := e.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)
	w := e.book.Worker()
	today := bizday.Of(time.Now(), time.UTC)
	task := e.book.Fee(w.ID, bizday.Format(today), -15)
	e.closeDay(t, bizday.Format(today))
	tomorrow := bizday.Format(bizday.Next(today))
	e.book.Reward(w.ID, task, tomorrow, 30)
	e.book.Fee(w.ID, tomorrow, -11)

	want := ledgertest.Balance{Opening: -15, Rewards: 30, Fees: -11, Closing: 4}
	current := e.balance(t, accountant, w.ID.String(), "").GetBalance()
	require.Equal(t, tomorrow, current.GetDate(), "no date means the first open day")
	require.Equal(t, want, figures(current))
	require.False(t, current.GetClosed())
	require.Equal(t, want, figures(e.balance(t, accountant, w.ID.String(), tomorrow).GetBalance()))

	_, err := e.client.GetBalance(accountant.Context(t.Context()), &accountingv1.GetBalanceRequest{
		UserId: w.ID.String(), Date: bizday.Format(bizday.Next(bizday.Next(today))),
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "the day after the first open day is the future")
}
