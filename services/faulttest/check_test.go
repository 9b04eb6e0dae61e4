//go:build faulttest

package faulttest

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	"github.com/ates/ates/services/internal/events"
)

//go:embed checks.sql
var checksSQL string

// query is one named query of checks.sql.
type query struct {
	name  string
	check string // lost, duplicated, violation; empty for bookkeeping and probes
	sql   string
}

var queries = parseQueries(checksSQL)

func parseQueries(src string) map[string]query {
	out := map[string]query{}
	var cur *query
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "-- name: "); ok {
			if cur != nil {
				out[cur.name] = *cur
			}
			cur = &query{name: strings.TrimSpace(name)}
			continue
		}
		if cur == nil {
			continue
		}
		if check, ok := strings.CutPrefix(line, "-- check: "); ok {
			cur.check = strings.TrimSpace(check)
			continue
		}
		cur.sql += line + "\n"
	}
	if cur != nil {
		out[cur.name] = *cur
	}
	return out
}

func sqlOf(name string) string {
	q, ok := queries[name]
	if !ok {
		panic("checks.sql has no query " + name)
	}
	return q.sql
}

// invariants are the checks of checks.sql, in a stable order.
func invariants() []query {
	var out []query
	for _, q := range queries {
		if q.check != "" {
			out = append(out, q)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// count runs a probe that returns one number.
func (c *cluster) count(name string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	err := c.db.QueryRow(ctx, sqlOf(name), args...).Scan(&n)
	return n, err
}

// saveCalls stores the load's records in faulttest.calls for the invariants to join.
func (c *cluster) saveCalls(recs []record) {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.db.Exec(ctx, sqlOf("setup")); err != nil {
		t.Fatalf("create faulttest.calls: %v", err)
	}
	rows := make([][]any, 0, len(recs))
	for _, r := range recs {
		var taskID any
		if id, err := uuid.Parse(r.TaskID); err == nil {
			taskID = id
		}
		rows = append(rows, []any{r.Kind, r.Key, r.RequestID, taskID, r.OK, r.Code.String(), r.Message, int32(r.Attempts)})
	}
	_, err := c.db.CopyFrom(ctx, pgx.Identifier{"faulttest", "calls"},
		[]string{"kind", "key", "request_id", "task_id", "acknowledged", "code", "message", "attempts"},
		pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatalf("store the load's records: %v", err)
	}
}

// queueDepth is the number of ready messages in queue (a passive declare); a queue that
// does not exist holds nothing.
func (c *cluster) queueDepth(queue string) (int, error) {
	if c.amqpConn == nil || c.amqpConn.IsClosed() {
		conn, err := amqp.Dial(c.amqpURL)
		if err != nil {
			return 0, err
		}
		c.amqpConn = conn
		c.t.Cleanup(func() { _ = conn.Close() })
	}
	// A passive declare of a missing queue closes its channel: one channel per question.
	ch, err := c.amqpConn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if amqpErr, ok := err.(*amqp.Error); ok && amqpErr.Code == amqp.NotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}

// consumerQueues are the queues the services consume, with their retry queues.
var consumerQueues = []string{
	events.TaskhandlerQueue, events.TaskhandlerQueue + ".retry",
	events.MailsenderQueue, events.MailsenderQueue + ".retry",
}

// deadLetterQueues are where messages that could never be applied end up.
var deadLetterQueues = []string{events.TaskhandlerQueue + ".dead", events.MailsenderQueue + ".dead"}

func (c *cluster) depth(queues []string) (int, error) {
	total := 0
	for _, q := range queues {
		n, err := c.queueDepth(q)
		if err != nil {
			return 0, fmt.Errorf("queue %s: %w", q, err)
		}
		total += n
	}
	return total, nil
}

// recoveryBudget bounds the wait for a scenario to recover after its fault ended.
const recoveryBudget = 45 * time.Second

// quiet is how long nothing may change, with every consumer queue empty, before the
// suite calls a scenario settled even though acknowledged writes are still missing.
const quiet = 8 * time.Second

// recover waits until the backlog is drained (every consumer queue empty, every
// acknowledged write applied, every mail of a closed day sent), and records in row how
// long that took after faultEnd. It gives up at recoveryBudget, or earlier once nothing
// has moved for a while with the queues empty: what is missing then stays missing.
func (c *cluster) recover(row *row, faultEnd time.Time) {
	deadline := faultEnd.Add(recoveryBudget)
	var (
		lastProgress = int64(-1)
		still        time.Time
		why          string
	)
	for {
		queued, err := c.depth(consumerQueues)
		lost, err2 := c.count("probe_lost")
		mails, err3 := c.count("probe_mail_backlog")
		progress, err4 := c.count("probe_progress")
		switch {
		case err != nil || err2 != nil || err3 != nil || err4 != nil:
			why = fmt.Sprint("probe failed: ", err, err2, err3, err4)
		case queued == 0 && lost == 0 && mails == 0:
			row.recovery = time.Since(faultEnd)
			row.recovered = true
			return
		default:
			why = fmt.Sprintf("%d messages queued, %d acknowledged writes not applied, %d mails not sent", queued, lost, mails)
			if progress != lastProgress {
				lastProgress, still = progress, time.Now()
			} else if queued == 0 && time.Since(still) > quiet {
				row.why = fmt.Sprintf("settled %s after the fault with %s", time.Since(faultEnd).Round(time.Second), why)
				return
			}
		}
		if time.Now().After(deadline) {
			row.why = fmt.Sprintf("still %s %s after the fault", why, recoveryBudget)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// verify checks every invariant and fills in row; each violation fails the scenario.
func (c *cluster) verify(row *row, cl *clients, pop population) {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.db.QueryRow(ctx, sqlOf("requests")).Scan(&row.requests, &row.acked, &row.applied, &row.appliedUnacked); err != nil {
		t.Fatalf("count requests: %v", err)
	}
	c.logAnswers()
	var violations []string
	for _, q := range invariants() {
		rows, err := c.db.Query(ctx, q.sql)
		if err != nil {
			t.Fatalf("invariant %s: %v", q.name, err)
		}
		var found []string
		var total int64
		for rows.Next() {
			var what string
			var n int64
			if err := rows.Scan(&what, &n); err != nil {
				t.Fatalf("invariant %s: %v", q.name, err)
			}
			found = append(found, what)
			total += n
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("invariant %s: %v", q.name, err)
		}
		switch q.check {
		case "lost":
			row.lost += total
		case "duplicated":
			row.duplicated += total
		}
		if len(found) > 0 {
			violations = append(violations, summarize(q.name, found))
		}
	}
	dead, err := c.depth(deadLetterQueues)
	if err != nil {
		t.Errorf("read the dead-letter queues: %v", err)
	}
	row.deadLettered = int64(dead)
	if dead > 0 {
		violations = append(violations, fmt.Sprintf("dead_letters: %d messages in %s", dead, strings.Join(deadLetterQueues, ", ")))
	}
	balances, balanceViolations := c.checkBalances(cl, pop)
	violations = append(violations, balanceViolations...)
	// The read models (per-worker-day totals, top tasks) must equal a recomputation from
	// the audit log and the tasks after every fault: the operator's own check says so.
	verify := c.command("verify", c.pgURLVia(c.pgOps.Addr()), nil, "verify")
	if err := verify.wait(ctx); err != nil {
		violations = append(violations, fmt.Sprintf("ates verify: %v (see %s)", err, verify.logPath))
	}
	extraMails, resent, mails, mailViolations := c.checkMails()
	row.duplicated += extraMails
	row.mailResent += resent
	violations = append(violations, mailViolations...)
	t.Logf("checked %d SQL invariants, ates verify, %d worker-days against GetBalance, %d mails of %d closed days",
		len(invariants()), balances, mails, len(c.closedDays()))
	for _, e := range c.unexpectedExits() {
		violations = append(violations, "process: "+e)
	}
	if !row.recovered {
		violations = append(violations, "recovery: did not recover: "+row.why)
	}
	row.checked = true
	for _, v := range violations {
		t.Error(v)
	}
}

// logAnswers logs how the API answered the load's writes, by kind and code.
func (c *cluster) logAnswers() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := c.db.Query(ctx, sqlOf("answers"))
	if err != nil {
		c.t.Logf("answers: %v", err)
		return
	}
	var parts []string
	for rows.Next() {
		var kind, code, message string
		var n, applied int64
		if err := rows.Scan(&kind, &code, &message, &n, &applied); err != nil {
			c.t.Logf("answers: %v", err)
			return
		}
		parts = append(parts, fmt.Sprintf("%s %s: %d (%q), %d took effect without an acknowledgement", kind, code, n, message, applied))
	}
	c.t.Logf("answers:\n\t%s", strings.Join(parts, "\n\t"))
}

func summarize(name string, found []string) string {
	const show = 5
	n, more := len(found), ""
	if n > show {
		more = fmt.Sprintf("\n\t… and %d more", n-show)
		found = found[:show]
	}
	return fmt.Sprintf("%s: %d violations:\n\t%s%s", name, n, strings.Join(found, "\n\t"), more)
}

// checkBalances compares, for a few workers and every day they have rows, the audit log
// with what the accounting API's GetBalance shows. It returns how many worker-days it
// compared, and the violations.
func (c *cluster) checkBalances(cl *clients, pop population) (int, []string) {
	var (
		out      []string
		compared int
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, w := range pop.workers[:min(3, len(pop.workers))] {
		rows, err := c.db.Query(ctx, sqlOf("probe_worker_days"), w.id)
		if err != nil {
			return compared, append(out, fmt.Sprintf("balance: read the audit log of %s: %v", w.id, err))
		}
		type day struct {
			date          string
			rewards, fees int64
		}
		days, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (day, error) {
			var d day
			return d, r.Scan(&d.date, &d.rewards, &d.fees)
		})
		if err != nil {
			return compared, append(out, fmt.Sprintf("balance: read the audit log of %s: %v", w.id, err))
		}
		for _, d := range days {
			compared++
			b, entries, err := c.balance(ctx, cl, pop.admin, w.id, d.date)
			if err != nil {
				out = append(out, fmt.Sprintf("balance: GetBalance of %s on %s: %v", w.id, d.date, err))
				continue
			}
			var sum int64
			for _, e := range entries {
				if e.GetKind() != accountingv1.LogKind_LOG_KIND_PAYOUT {
					sum += e.GetAmount()
				}
			}
			if b.GetRewards() != d.rewards || b.GetFees() != d.fees || sum != d.rewards+d.fees {
				out = append(out, fmt.Sprintf("balance: %s on %s: the API shows rewards %d, fees %d and entries summing to %d; the audit log has rewards %d, fees %d",
					w.id, d.date, b.GetRewards(), b.GetFees(), sum, d.rewards, d.fees))
			}
		}
	}
	return compared, out
}

// balance reads one worker's balance and every entry of the day through the API.
func (c *cluster) balance(ctx context.Context, cl *clients, admin account, userID, date string) (*accountingv1.Balance, []*accountingv1.LogEntry, error) {
	var (
		b       *accountingv1.Balance
		entries []*accountingv1.LogEntry
		token   string
	)
	for {
		resp, err := cl.accounting().GetBalance(withToken(ctx, admin.token), &accountingv1.GetBalanceRequest{
			Date: date, UserId: userID, PageSize: 1000, PageToken: token,
		})
		if err != nil {
			return nil, nil, err
		}
		b = resp.GetBalance()
		entries = append(entries, resp.GetEntries()...)
		if token = resp.GetNextPageToken(); token == "" {
			return b, entries, nil
		}
	}
}

// mailpitMessage is a message in Mailpit's list API.
type mailpitMessage struct {
	MessageID string
	Subject   string
	To        []struct{ Address string }
}

// checkMails counts, for every closed day, the summaries in Mailpit: one mail per worker.
// Two different mails (two Message-IDs) to a worker for one day are a duplicate. The same
// mail arriving twice (one Message-ID) is a re-sent copy: mailsender was killed between
// the SMTP server accepting it and recording it, a window SMTP cannot close; mail clients
// show such copies once. It returns the duplicates, the re-sent copies, how many mails
// it counted, and the violations.
func (c *cluster) checkMails() (dup, resent int64, mails int, violations []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := c.db.Query(ctx, sqlOf("probe_closed_days"))
	if err != nil {
		return 0, 0, 0, []string{fmt.Sprintf("mails: read closed days: %v", err)}
	}
	type day struct {
		date    string
		workers int
	}
	days, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (day, error) {
		var d day
		return d, r.Scan(&d.date, &d.workers)
	})
	if err != nil {
		return 0, 0, 0, []string{fmt.Sprintf("mails: read closed days: %v", err)}
	}
	msgs, err := c.mails()
	if err != nil {
		return 0, 0, 0, []string{fmt.Sprintf("mails: %v", err)}
	}
	// subject → recipient → Message-ID → copies
	perSubject := map[string]map[string]map[string]int{}
	for _, m := range msgs {
		for _, to := range m.To {
			addr := strings.ToLower(to.Address)
			if perSubject[m.Subject] == nil {
				perSubject[m.Subject] = map[string]map[string]int{}
			}
			if perSubject[m.Subject][addr] == nil {
				perSubject[m.Subject][addr] = map[string]int{}
			}
			perSubject[m.Subject][addr][m.MessageID]++
		}
	}
	for _, d := range days {
		subject := "Your aTES summary for " + d.date
		recipients := perSubject[subject]
		var dups []string
		for addr, ids := range recipients {
			if len(ids) > 1 {
				dup += int64(len(ids) - 1)
				dups = append(dups, fmt.Sprintf("%s got %d different mails", addr, len(ids)))
			}
			for _, n := range ids {
				resent += int64(n - 1)
			}
		}
		if len(recipients) != d.workers {
			violations = append(violations, fmt.Sprintf("mails: %q went to %d distinct workers, want %d", subject, len(recipients), d.workers))
		}
		if len(dups) > 0 {
			sort.Strings(dups)
			violations = append(violations, fmt.Sprintf("mails: %q sent more than once: %s", subject, strings.Join(dups, ", ")))
		}
	}
	return dup, resent, len(msgs), violations
}

// mails lists every message the scenario's Mailpit received.
func (c *cluster) mails() ([]mailpitMessage, error) {
	var all []mailpitMessage
	for start := 0; ; {
		var page struct {
			Total    int
			Messages []mailpitMessage
		}
		resp, err := http.Get(c.mail.API + "/api/v1/messages?" + url.Values{"start": {fmt.Sprint(start)}, "limit": {"500"}}.Encode())
		if err != nil {
			return nil, fmt.Errorf("Mailpit API: %w", err)
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("Mailpit API: %w", err)
		}
		all = append(all, page.Messages...)
		start += len(page.Messages)
		if len(page.Messages) == 0 || start >= page.Total {
			return all, nil
		}
	}
}

// mailCount is how many messages Mailpit has received so far.
func (c *cluster) mailCount() int {
	resp, err := http.Get(c.mail.API + "/api/v1/messages?limit=1")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var page struct{ Total int }
	_ = json.NewDecoder(resp.Body).Decode(&page)
	return page.Total
}
