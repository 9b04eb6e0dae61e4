package dailyaccounting_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ates/ates/gen/events/v1"
	"github.com/ates/ates/services/dailyaccounting"
	"github.com/ates/ates/services/internal/bizday"
	"github.com/ates/ates/services/internal/events"
	"github.com/ates/ates/services/internal/ledgertest"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/pgutil"
)

var days = [3]string{"2026-03-02", "2026-03-03", "2026-03-04"}

func day(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := bizday.Parse(s)
	require.NoError(t, err)
	return d
}

func newCloser(t *testing.T) (*dailyaccounting.Closer, *ledgertest.Book) {
	t.Helper()
	pool, _ := pgtest.NewDB(t)
	return dailyaccounting.NewCloser(pool, time.UTC, slog.New(slog.DiscardHandler)), ledgertest.New(t, pool)
}

func closedDays(t *testing.T, closed []dailyaccounting.DayClosed) []string {
	t.Helper()
	var out []string
	for _, c := range closed {
		out = append(out, bizday.Format(c.Day))
	}
	return out
}

func TestCloseDayOverThreeDays(t *testing.T) {
	t.Parallel()
	closer, book := newCloser(t)
	s := ledgertest.ThreeDays(book, days)
	idle := book.Worker()

	closed, err := closer.CloseDay(t.Context(), day(t, days[2]))
	require.NoError(t, err)
	require.Equal(t, days[:], closedDays(t, closed), "closing day 3 closes the open days 1 and 2 first")
	require.Equal(t, []int{4, 4, 4}, []int{closed[0].Workers, closed[1].Workers, closed[2].Workers})
	require.Equal(t, int64(15), closed[0].Paid)
	require.Equal(t, int64(25+35), closed[2].Paid)

	for _, d := range days {
		got := book.Balances(d)
		for id, want := range s.Want[d] {
			require.Equal(t, want, got[id], "balance of %s on %s", id, d)
		}
		require.Contains(t, got, idle.ID, "a worker without activity gets a row on %s", d)
		require.Equal(t, ledgertest.Balance{}, got[idle.ID])
		require.Len(t, got, 4, "one row per worker, none for the tasks' author (a manager), on %s", d)
	}

	t.Run("payouts are audit rows of minus the closing balance on the closed day", func(t *testing.T) {
		rows, err := book.Pool().Query(t.Context(),
			"SELECT user_id, amount, business_date::text FROM audit_log WHERE kind = 'payout' ORDER BY business_date, amount")
		require.NoError(t, err)
		type payout struct {
			User   uuid.UUID
			Amount int64
			Day    string
		}
		var got []payout
		for rows.Next() {
			var p payout
			require.NoError(t, rows.Scan(&p.User, &p.Amount, &p.Day))
			got = append(got, p)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []payout{
			{s.Ann.ID, -15, days[0]},
			{s.Bob.ID, -35, days[2]},
			{s.Ann.ID, -25, days[2]},
		}, got)
	})

	t.Run("every worker's summary of every day waits in the outbox", func(t *testing.T) {
		mails := outboxMails(t, book)
		require.Len(t, mails, 12)
		for _, d := range days {
			for id, want := range s.Want[d] {
				m := mails[mailKey{id, d}]
				require.NotNil(t, m, "mail of %s on %s", id, d)
				require.Equal(t, want, ledgertest.Balance{
					Opening: m.GetOpening(), Rewards: m.GetRewards(), Fees: m.GetFees(),
					Closing: m.GetClosing(), Payout: m.GetPayout(), Carry: m.GetCarry(),
				}, "mail of %s on %s", id, d)
			}
		}
		ann := mails[mailKey{s.Ann.ID, days[0]}]
		require.Equal(t, s.Ann.Email, ann.GetEmail())
		require.Equal(t, s.Ann.Name, ann.GetName())
	})

	require.Equal(t, 3, book.Count("SELECT count(*) FROM closed_days"))
}

type mailKey struct {
	user uuid.UUID
	day  string
}

// outboxMails decodes the send_email rows of the outbox.
func outboxMails(t *testing.T, book *ledgertest.Book) map[mailKey]*eventsv1.SendEmail {
	t.Helper()
	rows, err := book.Pool().Query(t.Context(), "SELECT routing_key, message_type, payload FROM outbox ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	out := map[mailKey]*eventsv1.SendEmail{}
	for rows.Next() {
		var key, typ string
		var payload []byte
		require.NoError(t, rows.Scan(&key, &typ, &payload))
		require.Equal(t, events.SendEmail, key)
		require.Equal(t, "events.v1.SendEmail", typ)
		m := &eventsv1.SendEmail{}
		require.NoError(t, proto.Unmarshal(payload, m))
		k := mailKey{uuid.MustParse(m.GetUserId()), m.GetDate()}
		require.NotContains(t, out, k, "a second mail for %v", k)
		out[k] = m
	}
	require.NoError(t, rows.Err())
	return out
}

// written counts what a close writes.
func written(t *testing.T, book *ledgertest.Book) [4]int {
	t.Helper()
	return [4]int{
		book.Count("SELECT count(*) FROM balances"),
		book.Count("SELECT count(*) FROM audit_log WHERE kind = 'payout'"),
		book.Count("SELECT count(*) FROM outbox"),
		book.Count("SELECT count(*) FROM closed_days"),
	}
}

func TestClosingAClosedDayWritesNothing(t *testing.T) {
	t.Parallel()
	closer, book := newCloser(t)
	ledgertest.ThreeDays(book, days)

	_, err := closer.CloseDay(t.Context(), day(t, days[2]))
	require.NoError(t, err)
	before := written(t, book)
	require.Equal(t, [4]int{9, 3, 9, 3}, before)

	for _, d := range days {
		closed, err := closer.CloseDay(t.Context(), day(t, d))
		require.NoError(t, err)
		require.Empty(t, closed, "closing %s again", d)
	}
	require.Equal(t, before, written(t, book))
}

func TestConcurrentClosesWriteOneSet(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.NewDB(t)
	book := ledgertest.New(t, pool)
	s := ledgertest.ThreeDays(book, days)
	log := slog.New(slog.DiscardHandler)
	// Two replicas: separate pools, as separate processes would have.
	var closers [2]*dailyaccounting.Closer
	for i := range closers {
		p, err := pgutil.Connect(t.Context(), url)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		closers[i] = dailyaccounting.NewCloser(p, time.UTC, log)
	}

	for _, d := range days {
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([][]dailyaccounting.DayClosed, len(closers))
		errs := make([]error, len(closers))
		for i, c := range closers {
			wg.Go(func() {
				<-start
				results[i], errs[i] = c.CloseDay(context.Background(), day(t, d))
			})
		}
		close(start)
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.Len(t, append(results[0], results[1]...), 1, "exactly one replica closed %s", d)
	}
	require.Equal(t, [4]int{9, 3, 9, 3}, written(t, book))
	for _, d := range days {
		got := book.Balances(d)
		for id, want := range s.Want[d] {
			require.Equal(t, want, got[id], "balance of %s on %s", id, d)
		}
	}
}

func TestCloseDayRefusesFutureDaysAndClosesTodayEarly(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	book := ledgertest.New(t, pool)
	book.Worker()
	// Kiritimati is 14 hours ahead of UTC: its today is the UTC today or tomorrow.
	loc, err := time.LoadLocation("Pacific/Kiritimati")
	require.NoError(t, err)
	closer := dailyaccounting.NewCloser(pool, loc, slog.New(slog.DiscardHandler))
	today := bizday.Of(time.Now(), loc)

	for _, tc := range []struct {
		name string
		day  time.Time
	}{
		{"tomorrow in the business time zone is refused", bizday.Next(today)},
		{"a day next year is refused", today.AddDate(1, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := closer.CloseDay(t.Context(), tc.day)
			require.ErrorIs(t, err, dailyaccounting.ErrFutureDay)
			require.ErrorContains(t, err, bizday.Format(tc.day))
		})
	}
	require.Equal(t, [4]int{0, 0, 0, 0}, written(t, book), "nothing is written")

	closed, err := closer.CloseDay(t.Context(), today)
	require.NoError(t, err)
	require.Equal(t, []string{bizday.Format(today)}, closedDays(t, closed), "today in the business time zone can be closed early")
}

// TestAClosedDayIsClosedForGood: once a day is closed the database refuses any writer
// that would put money into it, move money into it, or change or delete its rows; the
// first open day after it takes money as before.
func TestAClosedDayIsClosedForGood(t *testing.T) {
	t.Parallel()
	closer, book := newCloser(t)
	ann := book.Worker()
	task := book.Fee(ann.ID, "2026-04-01", -18)
	_, err := closer.CloseDay(t.Context(), day(t, "2026-04-01"))
	require.NoError(t, err)
	later := book.Fee(ann.ID, "2026-04-02", -12) // the first open day

	refused := func(what, sql string, args ...any) {
		t.Helper()
		_, err := book.Pool().Exec(t.Context(), sql, args...)
		require.Error(t, err, what)
		require.Equal(t, "audit_log_open_day", pgutil.ConstraintOf(err, "23514"), "%s: %v", what, err)
	}
	refused("a fee inserted into the closed day",
		`INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id) VALUES ($1, $2, 'fee', -15, '2026-04-01', gen_random_uuid())`,
		ann.ID, task)
	refused("a row moved into the closed day", `UPDATE audit_log SET business_date = '2026-04-01' WHERE task_id = $1`, later)
	refused("a row of the closed day changed", `UPDATE audit_log SET amount = -1 WHERE business_date = '2026-04-01' AND kind = 'fee'`)
	refused("a row of the closed day deleted", `DELETE FROM audit_log WHERE business_date = '2026-04-01'`)
	refused("a day before it", `INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id) VALUES ($1, $2, 'fee', -15, '2026-03-01', gen_random_uuid())`,
		ann.ID, task)
	_, err = book.Pool().Exec(t.Context(), `UPDATE balances SET created_at = now() WHERE business_date = '2026-04-01'`)
	require.Equal(t, "balances_open_day", pgutil.ConstraintOf(err, "23514"), "a stored balance cannot change: %v", err)

	// The stored balance still agrees with the audit log of its day.
	var logged int64
	require.NoError(t, book.Pool().QueryRow(t.Context(),
		`SELECT coalesce(sum(amount), 0) FROM audit_log WHERE user_id = $1 AND business_date = '2026-04-01' AND kind <> 'payout'`, ann.ID).Scan(&logged))
	require.Equal(t, int64(-18), logged)
	require.Equal(t, ledgertest.Balance{Fees: -18, Closing: -18, Carry: -18}, book.Balances("2026-04-01")[ann.ID])
}

// TestAWriterWaitsForARunningClose starts a close by hand (the close lock, then the
// closed_days row, uncommitted) and writes a fee of that day meanwhile: the write waits
// for the close to commit and is then refused, instead of slipping into a day already
// summed.
func TestAWriterWaitsForARunningClose(t *testing.T) {
	t.Parallel()
	_, book := newCloser(t)
	ann := book.Worker()
	task := book.Fee(ann.ID, "2026-05-04", -12)
	count := func(sql string) int {
		var n int
		require.NoError(t, book.Pool().QueryRow(t.Context(), sql).Scan(&n))
		return n
	}

	closing, err := book.Pool().Begin(t.Context())
	require.NoError(t, err)
	defer closing.Rollback(t.Context()) //nolint:errcheck // committed below
	_, err = closing.Exec(t.Context(), "SELECT pg_advisory_xact_lock(daily_close_lock_key())")
	require.NoError(t, err)
	_, err = closing.Exec(t.Context(), "INSERT INTO closed_days (business_date, workers) VALUES ('2026-05-04', 1)")
	require.NoError(t, err)

	written := make(chan error, 1)
	go func() {
		_, err := book.Pool().Exec(t.Context(),
			"INSERT INTO audit_log (user_id, task_id, kind, amount, business_date, event_id) VALUES ($1, $2, 'fee', -10, '2026-05-04', gen_random_uuid())",
			ann.ID, task)
		written <- err
	}()
	require.Eventually(t, func() bool {
		return count(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`) == 1
	}, 10*time.Second, 10*time.Millisecond, "the write waits for the close")
	require.Empty(t, written, "the write has not finished while the close runs")

	require.NoError(t, closing.Commit(t.Context()))
	require.Equal(t, "audit_log_open_day", pgutil.ConstraintOf(<-written, "23514"), "refused once the close committed")
	require.Equal(t, 1, count("SELECT count(*) FROM audit_log"))
}

func TestDaysCloseInOrderWithoutGaps(t *testing.T) {
	t.Parallel()
	closer, book := newCloser(t)
	ann := book.Worker()
	task := book.Fee(ann.ID, "2026-04-01", -18)
	book.Reward(ann.ID, task, "2026-04-01", 30)
	lateTask := book.Fee(ann.ID, "2026-04-01", -20)

	closed, err := closer.CloseDay(t.Context(), day(t, "2026-04-01"))
	require.NoError(t, err)
	require.Equal(t, []string{"2026-04-01"}, closedDays(t, closed))
	require.Equal(t, ledgertest.Balance{Rewards: 30, Fees: -38, Closing: -8, Carry: -8}, book.Balances("2026-04-01")[ann.ID])

	// A worker who joins later, and activity two days on; nothing on the days between.
	bob := book.Worker()
	book.Reward(ann.ID, lateTask, "2026-04-04", 40)

	closed, err = closer.CloseDay(t.Context(), day(t, "2026-04-04"))
	require.NoError(t, err)
	require.Equal(t, []string{"2026-04-02", "2026-04-03", "2026-04-04"}, closedDays(t, closed))
	for _, d := range []string{"2026-04-02", "2026-04-03"} {
		got := book.Balances(d)
		require.Equal(t, ledgertest.Balance{Opening: -8, Closing: -8, Carry: -8}, got[ann.ID], "a quiet day carries the carry on (%s)", d)
		require.Equal(t, ledgertest.Balance{}, got[bob.ID], "a quiet day still gets a row for every worker (%s)", d)
	}
	require.Equal(t, ledgertest.Balance{Opening: -8, Rewards: 40, Closing: 32, Payout: 32}, book.Balances("2026-04-04")[ann.ID])

	closed, err = closer.CloseDay(t.Context(), day(t, "2026-03-15"))
	require.NoError(t, err)
	require.Empty(t, closed, "a day before the last closed one needs no close")
}

// sortedLines sorts the lines of s.
func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestReadModelsAfterClose closes three days and checks that the per-worker totals the
// close summed are the balances' rewards and fees, that its payouts did not enter them,
// and that they still equal a recomputation from the audit log.
func TestReadModelsAfterClose(t *testing.T) {
	t.Parallel()
	closer, book := newCloser(t)
	days := [3]string{"2026-02-01", "2026-02-02", "2026-02-03"}
	ledgertest.ThreeDays(book, days)
	_, err := closer.CloseDay(t.Context(), day(t, days[2]))
	require.NoError(t, err)
	require.Positive(t, book.Count("SELECT count(*) FROM audit_log WHERE kind = 'payout'"), "the close paid out")

	require.Zero(t, book.Count(`SELECT count(*) FROM balances b
		FULL JOIN worker_day_totals w ON w.user_id = b.user_id AND w.business_date = b.business_date
		WHERE (coalesce(b.rewards, 0), coalesce(b.fees, 0)) IS DISTINCT FROM (coalesce(w.rewards, 0), coalesce(w.fees, 0))`),
		"every closed balance holds its worker's totals of the day")
	require.Equal(t, book.Count("SELECT count(*) FROM audit_log WHERE kind IN ('fee', 'reward')"),
		book.Count("SELECT sum(fee_rows + reward_rows) FROM worker_day_totals"), "the totals count the fees and rewards, not the payouts")
	var diff bytes.Buffer
	n, err := dailyaccounting.Verify(t.Context(), book.Pool(), &diff)
	require.NoError(t, err)
	require.Zero(t, n, "read models differ after the close:\n%s", diff.String())

	// The close takes the day's sums from the totals: a total changed behind the log's
	// back shows in the next close and is what verify reports.
	_, err = book.Pool().Exec(t.Context(), `INSERT INTO worker_day_totals (user_id, business_date, fees, fee_rows)
		SELECT user_id, '2026-02-04', -7, 1 FROM balances WHERE business_date = '2026-02-03' ORDER BY user_id LIMIT 1`)
	require.NoError(t, err)
	closed, err := closer.CloseDay(t.Context(), day(t, "2026-02-04"))
	require.NoError(t, err)
	require.Len(t, closed, 1)
	require.Equal(t, 1, book.Count("SELECT count(*) FROM balances WHERE business_date = '2026-02-04' AND fees = -7"))
	diff.Reset()
	n, err = dailyaccounting.Verify(t.Context(), book.Pool(), &diff)
	require.NoError(t, err)
	require.Equal(t, 1, n, diff.String())
	require.Contains(t, diff.String(), "date=2026-02-04: stored rewards=0 fees=-7 reward_rows=0 fee_rows=1, audit_log rewards=0 fees=0 ")
}

func TestCloseDayMetrics(t *testing.T) {
	t.Parallel()
	closer, book := newCloser(t)
	ledgertest.ThreeDays(book, days)
	reg := prometheus.NewRegistry()
	closer.Register(reg)

	_, err := closer.CloseDay(t.Context(), day(t, days[2]))
	require.NoError(t, err)
	_, err = closer.CloseDay(t.Context(), day(t, days[1]))
	require.NoError(t, err)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var observed uint64
	for _, mf := range mfs {
		if mf.GetName() == "ates_dailyaccounting_close_seconds" {
			observed = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	require.Equal(t, uint64(1), observed, "one close that closed days; closing day 2 again closed none")
	// The last closed day is day 3.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ates_dailyaccounting_last_closed_day The last business day this process closed, as the Unix time of its midnight UTC (0 before the first close).
# TYPE ates_dailyaccounting_last_closed_day gauge
ates_dailyaccounting_last_closed_day `+strconv.FormatInt(day(t, days[2]).Unix(), 10)+`
`), "ates_dailyaccounting_last_closed_day"))
}
