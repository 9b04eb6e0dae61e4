//go:build faulttest

package faulttest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
)

// scenario is one fault the suite injects, in its own cluster.
type scenario struct {
	name string
	run  func(t *testing.T, s *suite, r *row)
}

// scenarios run in this order; each is independent of the others.
var scenarios = []scenario{
	{"broker_cut", brokerCut},
	{"broker_hang", brokerHang},
	{"consumer_db_cut", consumerDBCut},
	{"db_latency", dbLatency},
	{"taskhandler_kill", taskhandlerKill},
	{"close_and_mail_kill", closeAndMailKill},
	{"client_retry", clientRetry},
	{"replicas", replicas},
}

// coreServices are what the load and the checks need; analytics only joins the
// replicas scenario.
var coreServices = []string{"auth", "tasks", "accounting", "taskhandler", "dailyaccounting", "mailsender"}

const defaultWorkers = 5

// up starts replicas of each service (auth first: the others ask it), waits until all
// are ready, and seeds the users.
func up(t *testing.T, s *suite, replicas, workers int, services ...string) (*cluster, *clients, population) {
	t.Helper()
	c := newCluster(t, s)
	// Auth is ready before the others start: the APIs are given its address, and a
	// replica of auth that had to move to other ports would leave them asking the old one.
	if slices.Contains(services, "auth") {
		for range replicas {
			c.start("auth")
		}
	}
	for _, svc := range services {
		if svc == "auth" {
			continue
		}
		for range replicas {
			c.spawn(svc)
		}
	}
	for _, svc := range services {
		for i := range c.procs[svc] {
			c.waitReplica(svc, i)
		}
	}
	cl := c.dial()
	return c, cl, c.seed(cl, workers)
}

// faultUnderLoad is the common shape: load, then the fault for hold, then load until
// writes are acknowledged again, then recovery and the invariants.
func faultUnderLoad(t *testing.T, c *cluster, cl *clients, pop population, r *row, opt loadOptions, hold time.Duration, fault func() (remove func())) {
	t.Helper()
	l := c.startLoad(cl, pop, opt)
	l.waitAcked(t, time.Time{}, 20, 30*time.Second, "before the fault")
	remove := fault()
	time.Sleep(hold) // the fault's duration
	remove()
	faultEnd := time.Now()
	l.waitAcked(t, faultEnd, 20, 60*time.Second, "after the fault")
	finish(c, cl, pop, r, faultEnd, l)
}

// finish stops the loads, waits for recovery and checks the invariants.
func finish(c *cluster, cl *clients, pop population, r *row, faultEnd time.Time, loads ...*load) {
	c.t.Helper()
	var recs []record
	for _, l := range loads {
		l.stop()
		recs = append(recs, l.snapshot()...)
	}
	c.saveCalls(recs)
	c.recover(r, faultEnd)
	c.verify(r, cl, pop)
}

// brokerCut: RabbitMQ unreachable for 10 s. Publishers must fail fast with Unavailable
// and never drop an acknowledged event; consumers reconnect and drain.
func brokerCut(t *testing.T, s *suite, r *row) {
	c, cl, pop := up(t, s, 1, defaultWorkers, coreServices...)
	faultUnderLoad(t, c, cl, pop, r, defaultLoad(), 10*time.Second, func() func() {
		c.amqp.disable()
		return func() { c.amqp.enable(t) }
	})
}

// brokerHang: RabbitMQ's connections stay open but no data flows either way for 10 s,
// so confirms never come and heartbeats stop: publishers must time out, not hang.
func brokerHang(t *testing.T, s *suite, r *row) {
	c, cl, pop := up(t, s, 1, defaultWorkers, coreServices...)
	faultUnderLoad(t, c, cl, pop, r, defaultLoad(), 10*time.Second, func() func() {
		return c.amqp.hang(t, "upstream", "downstream")
	})
}

// consumerDBCut: the consumers cannot reach PostgreSQL for 60 s while the APIs still
// acknowledge creates. Nothing may be dead-lettered for an infrastructure error, and the
// backlog must become tasks within seconds of the database's return.
//
// The load is light during the cut on purpose: a small backlog cycles through the
// consumer's retries fastest, which is what exhausts a bounded retry count.
func consumerDBCut(t *testing.T, s *suite, r *row) {
	c, cl, pop := up(t, s, 1, defaultWorkers, coreServices...)
	warm := c.startLoad(cl, pop, defaultLoad())
	warm.waitAcked(t, time.Time{}, 20, 30*time.Second, "before the fault")
	warm.stop()
	opt := defaultLoad()
	opt.createEvery = 5 * time.Second
	opt.completeEvery = 5 * time.Second
	l := c.startLoad(cl, pop, opt)

	c.pgCons.disable()
	cutStart := time.Now()
	// The specific promise: 20 creates acknowledged during the cut are 20 tasks within
	// about 10 s of its end.
	var batch []string
	for range 20 {
		if rec := l.create(pop.manager); rec.OK {
			batch = append(batch, rec.TaskID)
		}
	}
	if len(batch) < 20 {
		t.Errorf("only %d of 20 creates were acknowledged while only the consumers' database was down: %s", len(batch), l.lastErrors(3))
	}
	time.Sleep(60*time.Second - time.Since(cutStart)) // the fault's duration
	c.pgCons.enable(t)
	faultEnd := time.Now()

	const within = 10 * time.Second
	var have int64
	ok := waitFor(within, 100*time.Millisecond, func() bool {
		n, err := c.count("probe_tasks_exist", batch)
		have = n
		return err == nil && n == int64(len(batch))
	})
	if ok {
		t.Logf("%d creates acknowledged during the cut were tasks %.1f s after it", len(batch), time.Since(faultEnd).Seconds())
	} else {
		t.Errorf("%d of %d creates acknowledged during the database cut were tasks %s after it ended, want all", have, len(batch), within)
	}
	l.waitAcked(t, faultEnd, 10, 60*time.Second, "after the fault")
	finish(c, cl, pop, r, faultEnd, warm, l)
}

// dbLatency: every PostgreSQL answer, to the APIs and to the consumers, takes 2 s longer
// for 15 s. Event transactions outlive their timeout; nothing may be lost or applied
// twice, and nothing dead-lettered for it.
func dbLatency(t *testing.T, s *suite, r *row) {
	c, cl, pop := up(t, s, 1, defaultWorkers, coreServices...)
	opt := defaultLoad()
	opt.callTimeout = 8 * time.Second
	faultUnderLoad(t, c, cl, pop, r, opt, 15*time.Second, func() func() {
		api := c.pgAPI.latency(t, 2000)
		cons := c.pgCons.latency(t, 2000)
		return func() { api(); cons() }
	})
}

// taskhandlerKill: taskhandler is SIGKILLed three times while it drains a backlog (its
// database slowed down so that the kills land mid-event); redelivered events must change
// nothing.
func taskhandlerKill(t *testing.T, s *suite, r *row) {
	c, cl, pop := up(t, s, 1, defaultWorkers, coreServices...)
	th := c.procs["taskhandler"][0]
	th.stop() // the backlog builds while it is away
	l := c.startLoad(cl, pop, defaultLoad())
	l.waitAcked(t, time.Time{}, 150, 60*time.Second, "building the backlog")

	slow := c.pgCons.latency(t, 50)
	for i := range 3 {
		before, err := c.count("probe_processed")
		if err != nil {
			t.Fatalf("count processed events: %v", err)
		}
		c.restart(th)
		draining := waitFor(60*time.Second, 20*time.Millisecond, func() bool {
			n, err := c.count("probe_processed")
			return err == nil && n >= before+10
		})
		if !draining {
			t.Errorf("kill %d: taskhandler applied fewer than 10 events within 60 s of its start; see %s", i+1, th.logPath)
		}
		th.kill()
	}
	c.restart(th)
	slow()
	finish(c, cl, pop, r, time.Now(), l)
}

// closeAndMailKill: the daily close is SIGKILLed mid-transaction and run again, then
// mailsender is SIGKILLed mid-send (SMTP slowed down) and restarted. The day must close
// exactly once and every worker get exactly one mail.
func closeAndMailKill(t *testing.T, s *suite, r *row) {
	c, cl, pop := up(t, s, 1, 8, coreServices...)
	l := c.startLoad(cl, pop, defaultLoad())
	l.waitAcked(t, time.Time{}, 80, 60*time.Second, "money moving before the close")
	l.stop()
	c.saveCalls(l.snapshot())
	c.drain(60 * time.Second)

	day := c.today()
	slowDB := c.pgOps.latency(t, 1000)
	close1 := c.closeDay(day)
	if !waitFor(60*time.Second, 20*time.Millisecond, func() bool {
		n, err := c.count("probe_close_lock")
		return (err == nil && n > 0) || close1.exited()
	}) || close1.exited() {
		t.Fatalf("close-day never took the close lock (or ended first); see %s", close1.logPath)
	}
	close1.kill()
	if !waitFor(30*time.Second, 100*time.Millisecond, func() bool {
		n, err := c.count("probe_close_lock")
		return err == nil && n == 0
	}) {
		t.Errorf("the killed close still holds its lock 30 s later")
	}
	if days := c.closedDays(); len(days) != 0 {
		t.Errorf("a close killed mid-transaction left closed days behind: %v", days)
	}
	slowDB()

	slowSMTP := c.smtp.latency(t, 700)
	for i := range 2 { // the second close must change nothing
		cmd := c.closeDay(day)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := cmd.wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("close-day %s (run %d): %v; see %s", day, i+1, err, cmd.logPath)
		}
	}
	// Kill mailsender as soon as a mail has landed: with SMTP this slow, others are then
	// half-way through their SMTP conversation, and the one that landed may not be
	// recorded yet.
	ms := c.procs["mailsender"][0]
	for range 2 {
		before := c.mailCount()
		backlog := int64(-1)
		if !waitFor(60*time.Second, 20*time.Millisecond, func() bool {
			backlog, _ = c.count("probe_mail_backlog")
			return c.mailCount() > before || backlog == 0
		}) {
			t.Errorf("no summary mail arrived within 60 s; see %s", ms.logPath)
			break
		}
		if backlog == 0 {
			break // every mail is out: nothing left to interrupt
		}
		ms.kill()
		c.restart(ms)
	}
	slowSMTP()
	faultEnd := time.Now()
	c.recover(r, faultEnd)
	c.verify(r, cl, pop)
	if days := c.closedDays(); days[day] != len(pop.workers) {
		t.Errorf("day %s: closed for %d workers, want %d (closed days: %v)", day, days[day], len(pop.workers), days)
	}
}

// clientRetry: the broker's confirms stop for 10 s (data from the broker hangs; the
// publishes themselves reach it), so calls answer Unavailable or DeadlineExceeded while
// the event may well be applied. Clients retry with the same request_id, and each
// request must be applied exactly once.
func clientRetry(t *testing.T, s *suite, r *row) {
	c, cl, pop := up(t, s, 1, defaultWorkers, coreServices...)
	unconfirmedCreates(t, c, cl, pop)
	opt := defaultLoad()
	opt.retry = true
	faultUnderLoad(t, c, cl, pop, r, opt, 10*time.Second, func() func() {
		return c.amqp.hang(t, "downstream")
	})
}

// unconfirmedCreates is the case the reliability issue names: 20 creates whose confirms
// never arrive (the broker's answers stop) are answered with an ambiguous error; retried
// with their request_id once the broker is back, they make exactly 20 tasks and 20 fees.
func unconfirmedCreates(t *testing.T, c *cluster, cl *clients, pop population) {
	const n = 20
	prefix := c.name + " unconfirmed "
	reqs := make([]*tasksv1.CreateTaskRequest, n)
	for i := range reqs {
		reqs[i] = &tasksv1.CreateTaskRequest{Description: fmt.Sprintf("%s%02d", prefix, i), RequestId: requestID()}
	}
	create := func(ctx context.Context, req *tasksv1.CreateTaskRequest) error {
		_, err := cl.task().CreateTask(withToken(ctx, pop.manager.token), req)
		return err
	}

	heal := c.amqp.hang(t, "downstream") // publishes go out, confirms never come back
	codesSeen := map[codes.Code]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := create(ctx, req)
			mu.Lock()
			codesSeen[status.Code(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	heal()
	for code, k := range codesSeen {
		if !ambiguous(status.Error(code, "")) {
			t.Errorf("%d creates while confirms never came answered %s, want Unavailable or DeadlineExceeded (all: %v)", k, code, codesSeen)
		}
	}
	for _, req := range reqs {
		if _, err := retryAmbiguous(60*time.Second, 5*time.Second, func(ctx context.Context) error { return create(ctx, req) }); err != nil {
			t.Errorf("create %q retried with its request_id: %v", req.GetDescription(), err)
		}
	}
	var tasks, fees int64
	ok := waitFor(30*time.Second, 50*time.Millisecond, func() bool {
		tasks, _ = c.count("probe_tasks_described", prefix)
		fees, _ = c.count("probe_fees_described", prefix)
		return tasks >= n && fees >= n
	})
	if !ok || tasks != n || fees != n {
		t.Errorf("%d creates whose confirms never came, retried with their request_id: %d tasks and %d fees, want %d and %d", n, tasks, fees, n, n)
	}
	t.Logf("%d creates whose confirms never came (first answers %v), retried with their request_id: %d tasks, %d fees", n, codesSeen, tasks, fees)
}

// replicas: two of every service on one broker and database under load, then two
// `ates close-day` runs of the same day at once: the day closes once and every worker
// gets one mail although two relays and two mailsenders run.
func replicas(t *testing.T, s *suite, r *row) {
	c, cl, pop := up(t, s, 2, defaultWorkers, append(coreServices, "analytics")...)
	opt := defaultLoad()
	opt.creators = 4
	l := c.startLoad(cl, pop, opt)
	l.waitAcked(t, time.Time{}, 300, 90*time.Second, "under load on two replicas")
	l.stop()
	loadEnd := time.Now()
	c.saveCalls(l.snapshot())
	c.drain(60 * time.Second)

	day := c.today()
	var wg sync.WaitGroup
	closes := []*proc{c.closeDay(day), c.closeDay(day)}
	for _, cmd := range closes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := cmd.wait(ctx); err != nil {
				t.Errorf("concurrent close-day: %v; see %s", err, cmd.logPath)
			}
		})
	}
	wg.Wait()
	closed := 0
	for _, cmd := range closes {
		b, _ := os.ReadFile(cmd.logPath)
		closed += strings.Count(string(b), `msg="day closed" date=`+day)
	}
	if closed != 1 {
		t.Errorf("two concurrent closes of %s closed it %d times, want once", day, closed)
	}
	c.recover(r, loadEnd)
	c.verify(r, cl, pop)
	if days := c.closedDays(); days[day] != len(pop.workers) {
		t.Errorf("day %s: closed for %d workers, want %d (closed days: %v)", day, days[day], len(pop.workers), days)
	}
}

// drain waits until the consumers' queues are empty and every acknowledged write is
// applied, before a scenario closes the day.
func (c *cluster) drain(timeout time.Duration) {
	c.t.Helper()
	ok := waitFor(timeout, 100*time.Millisecond, func() bool {
		queued, err := c.depth(consumerQueues)
		lost, err2 := c.count("probe_lost")
		return err == nil && err2 == nil && queued == 0 && lost == 0
	})
	if !ok {
		c.t.Errorf("the backlog did not drain within %s before the close", timeout)
	}
}

// closedDays maps each closed day to the number of workers its close counted.
func (c *cluster) closedDays() map[string]int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := c.db.Query(ctx, sqlOf("probe_closed_days"))
	if err != nil {
		c.t.Fatalf("read closed days: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var day string
		var n int
		if err := rows.Scan(&day, &n); err != nil {
			c.t.Fatalf("read closed days: %v", err)
		}
		out[day] = n
	}
	return out
}
