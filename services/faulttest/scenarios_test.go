//go:build faulttest

package faulttest

import (
	"testing"
	"time"
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
	for _, svc := range services {
		for range replicas {
			c.spawn(svc)
		}
	}
	for _, svc := range services {
		for _, p := range c.procs[svc] {
			p.waitHTTP(t, "/readyz", 60*time.Second)
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
