//go:build faulttest

package faulttest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accountingv1 "github.com/ates/ates/gen/accounting/v1"
	authv1 "github.com/ates/ates/gen/auth/v1"
	tasksv1 "github.com/ates/ates/gen/tasks/v1"
)

// account is a logged-in user of the scenario.
type account struct {
	id, email, token string
}

// population is who the load acts as: an admin and a manager create tasks, workers
// complete the tasks they hold.
type population struct {
	admin, manager account
	workers        []account
}

// clients are gRPC clients of every running API replica; calls go round-robin.
type clients struct {
	tasks []tasksv1.TaskServiceClient
	auth  []authv1.AuthServiceClient
	acct  []accountingv1.AccountingServiceClient
	next  atomic.Uint64
}

func (cl *clients) task() tasksv1.TaskServiceClient {
	return cl.tasks[cl.next.Add(1)%uint64(len(cl.tasks))]
}

func (cl *clients) accounting() accountingv1.AccountingServiceClient {
	return cl.acct[cl.next.Add(1)%uint64(len(cl.acct))]
}

// dial connects to every replica of auth, tasks and accounting that is running now.
func (c *cluster) dial() *clients {
	t := c.t
	t.Helper()
	cl := &clients{}
	conn := func(p *proc) *grpc.ClientConn {
		cc, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatalf("dial %s: %v", p.name, err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	for _, p := range c.procs["auth"] {
		cl.auth = append(cl.auth, authv1.NewAuthServiceClient(conn(p)))
	}
	for _, p := range c.procs["tasks"] {
		cl.tasks = append(cl.tasks, tasksv1.NewTaskServiceClient(conn(p)))
	}
	for _, p := range c.procs["accounting"] {
		cl.acct = append(cl.acct, accountingv1.NewAccountingServiceClient(conn(p)))
	}
	if len(cl.auth) == 0 || len(cl.tasks) == 0 || len(cl.acct) == 0 {
		t.Fatal("dial: auth, tasks and accounting must be running")
	}
	return cl
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// seed creates the first admin with `ates admin create`, then registers a manager and
// workers through auth and logs everyone in.
func (c *cluster) seed(cl *clients, workers int) population {
	t := c.t
	t.Helper()
	tag := randomHex(3)
	adminEmail := fmt.Sprintf("admin-%s@faulttest.example", tag)
	adminPhoto := "admin-photo-" + tag
	cmd := c.command("admin", c.dbURL, nil, "admin", "create", "--name", "Fault Admin", "--email", adminEmail, "--photo-hash", adminPhoto)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cmd.wait(ctx); err != nil {
		t.Fatalf("ates admin create: %v; see %s", err, cmd.logPath)
	}
	auth := cl.auth[0]
	login := func(photo string) account {
		resp, err := auth.Login(ctx, &authv1.LoginRequest{PhotoHash: photo})
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		return account{id: resp.GetUser().GetId(), email: resp.GetUser().GetEmail(), token: resp.GetToken()}
	}
	register := func(by account, role authv1.Role, name string) account {
		photo := fmt.Sprintf("%s-photo-%s", name, tag)
		callCtx := ctx
		if by.token != "" {
			callCtx = withToken(ctx, by.token)
		}
		_, err := auth.Register(callCtx, &authv1.RegisterRequest{
			Name: name, Email: fmt.Sprintf("%s-%s@faulttest.example", name, tag), Role: role, PhotoHash: photo,
		})
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		return login(photo)
	}
	pop := population{admin: login(adminPhoto)}
	pop.manager = register(pop.admin, authv1.Role_ROLE_MANAGER, "manager")
	for i := range workers {
		pop.workers = append(pop.workers, register(account{}, authv1.Role_ROLE_WORKER, fmt.Sprintf("worker%d", i+1)))
	}
	return pop
}

// record is one logical write the load made, with what the API answered.
type record struct {
	Kind      string // "create" or "complete"
	Key       string // a create's description (unique per request), a complete's task id
	RequestID string // sent only where the proto has the field
	TaskID    string // the task the answer named
	OK        bool   // acknowledged
	Code      codes.Code
	Message   string
	Attempts  int
	At        time.Time // when the call was answered
}

// loadOptions bound and pace the load.
type loadOptions struct {
	creators      int           // goroutines creating tasks, as the manager and the admin in turn
	createEvery   time.Duration // pause of each creator between creates
	completeEvery time.Duration // pause of each worker between completes
	maxDuration   time.Duration // the load stops by itself after this
	maxRequests   int64         // and after this many writes
	callTimeout   time.Duration // deadline of one call
	retry         bool          // retry ambiguous answers with the same request_id
	retryBudget   time.Duration // how long one logical write may keep retrying
}

func defaultLoad() loadOptions {
	return loadOptions{
		creators:      2,
		createEvery:   200 * time.Millisecond,
		completeEvery: 400 * time.Millisecond,
		maxDuration:   3 * time.Minute,
		maxRequests:   4000,
		callTimeout:   3 * time.Second,
		retryBudget:   30 * time.Second,
	}
}

// load writes through the tasks API until stopped (or its bounds are reached) and
// records every write.
type load struct {
	c        *cluster
	pop      population
	cl       *clients
	opt      loadOptions
	requests atomic.Int64
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	records []record
}

// writes is what every load of a scenario shares, so that two loads one after the other
// never reuse a description or complete a task twice.
type writes struct {
	seq       atomic.Int64
	mu        sync.Mutex
	completed map[string]bool // tasks whose completion was acknowledged or is under way
}

// claim marks the first of ids no load has completed, and returns it ("" if none).
func (w *writes) claim(ids []string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if !w.completed[id] {
			w.completed[id] = true
			return id
		}
	}
	return ""
}

// release lets a task be completed again after an answer that did not settle it.
func (w *writes) release(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.completed, id)
}

// startLoad starts the creators and one completer per worker.
func (c *cluster) startLoad(cl *clients, pop population, opt loadOptions) *load {
	ctx, cancel := context.WithTimeout(context.Background(), opt.maxDuration)
	l := &load{c: c, pop: pop, cl: cl, opt: opt, cancel: cancel}
	c.t.Cleanup(l.stop)
	for i := range opt.creators {
		who := pop.manager
		if i%2 == 1 {
			who = pop.admin
		}
		l.wg.Go(func() { l.every(ctx, opt.createEvery, func() { l.create(who) }) })
	}
	for _, w := range pop.workers {
		l.wg.Go(func() { l.every(ctx, opt.completeEvery, func() { l.completeOne(ctx, w) }) })
	}
	return l
}

// every runs fn, then again after each pause, until ctx ends or the request bound is hit.
func (l *load) every(ctx context.Context, pause time.Duration, fn func()) {
	for ctx.Err() == nil && l.requests.Load() < l.opt.maxRequests {
		fn()
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// stop stops issuing writes and waits for those in flight.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// call makes one logical write: one attempt, or retries of ambiguous answers with the
// same request when the scenario asks for it.
func (l *load) call(fn func(context.Context) error) (int, error) {
	if l.opt.retry {
		return retryAmbiguous(l.opt.retryBudget, l.opt.callTimeout, fn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opt.callTimeout)
	defer cancel()
	return 1, fn(ctx)
}

// create creates one task as who, under a description no other request uses.
func (l *load) create(who account) record {
	l.requests.Add(1)
	r := record{
		Kind:      "create",
		Key:       fmt.Sprintf("%s create %d", l.c.name, l.c.writes.seq.Add(1)),
		RequestID: requestID(),
	}
	req := &tasksv1.CreateTaskRequest{Description: r.Key, RequestId: r.RequestID}
	attempts, err := l.call(func(ctx context.Context) error {
		resp, err := l.cl.task().CreateTask(withToken(ctx, who.token), req)
		if err == nil {
			r.TaskID = resp.GetId()
		}
		return err
	})
	r.finish(attempts, err)
	l.add(r)
	return r
}

// completeOne completes one of w's open tasks that no earlier call completed.
func (l *load) completeOne(ctx context.Context, w account) {
	listCtx, cancel := context.WithTimeout(ctx, l.opt.callTimeout)
	defer cancel()
	resp, err := l.cl.task().ListTasks(withToken(listCtx, w.token), &tasksv1.ListTasksRequest{
		PageSize: 50, Status: tasksv1.TaskStatus_TASK_STATUS_IN_PROGRESS,
	})
	if err != nil {
		return // a read; the fault may well refuse it
	}
	ids := make([]string, 0, len(resp.GetTasks()))
	for _, task := range resp.GetTasks() {
		ids = append(ids, task.GetId())
	}
	id := l.c.writes.claim(ids)
	if id == "" {
		return
	}
	l.requests.Add(1)
	r := record{Kind: "complete", Key: id, TaskID: id, RequestID: requestID()}
	req := &tasksv1.CompleteTaskRequest{Id: id, RequestId: r.RequestID}
	attempts, err := l.call(func(ctx context.Context) error {
		_, err := l.cl.task().CompleteTask(withToken(ctx, w.token), req)
		return err
	})
	r.finish(attempts, err)
	if !r.OK && r.Code != codes.FailedPrecondition {
		// Not acknowledged: the task may be tried again later, as a client would.
		l.c.writes.release(id)
	}
	l.add(r)
}

func (r *record) finish(attempts int, err error) {
	r.Attempts, r.At = attempts, time.Now()
	r.OK = err == nil
	st := status.Convert(err)
	r.Code, r.Message = st.Code(), st.Message()
}

func (l *load) add(r record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
}

// snapshot returns the records so far.
func (l *load) snapshot() []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]record(nil), l.records...)
}

// ackedSince counts the writes acknowledged after t.
func (l *load) ackedSince(t time.Time) int {
	n := 0
	for _, r := range l.snapshot() {
		if r.OK && r.At.After(t) {
			n++
		}
	}
	return n
}

// waitAcked waits until n writes were acknowledged after since; it fails the scenario
// (without stopping it) if that does not happen within timeout.
func (l *load) waitAcked(t *testing.T, since time.Time, n int, timeout time.Duration, why string) bool {
	t.Helper()
	ok := waitFor(timeout, 100*time.Millisecond, func() bool { return l.ackedSince(since) >= n })
	if !ok {
		t.Errorf("%s: only %d of %d writes acknowledged within %s; last answers: %s", why, l.ackedSince(since), n, timeout, l.lastErrors(3))
	}
	return ok
}

// lastErrors describes the last n refused writes.
func (l *load) lastErrors(n int) string {
	recs := l.snapshot()
	var out []string
	for i := len(recs) - 1; i >= 0 && len(out) < n; i-- {
		if !recs[i].OK {
			out = append(out, fmt.Sprintf("%s %s: %s", recs[i].Kind, recs[i].Code, recs[i].Message))
		}
	}
	return fmt.Sprint(out)
}

// waitFor polls cond every interval until it holds (true) or timeout passes (false).
func waitFor(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}
