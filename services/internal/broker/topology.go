package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// DefaultMaxDeliveries is QueueSpec.MaxDeliveries when it is zero.
	DefaultMaxDeliveries = 5
	// DefaultRetryDelay is QueueSpec.RetryDelay when it is zero.
	DefaultRetryDelay = 5 * time.Second

	retrySuffix = ".retry"
	deadSuffix  = ".dead"
)

// QueueSpec describes a consuming service's queue.
type QueueSpec struct {
	// Name is the queue name, e.g. "taskhandler". It must not end in ".retry"
	// or ".dead"; those names belong to its retry and dead-letter queues.
	Name string
	// RoutingKeys bind the queue to the exchange; at least one is required.
	RoutingKeys []string
	// MaxDeliveries is how many times a message is handled before a failing
	// one goes to the dead-letter queue; DefaultMaxDeliveries if zero.
	MaxDeliveries int
	// RetryDelay is how long a failed message waits before it is handled
	// again; DefaultRetryDelay if zero. Millisecond precision.
	RetryDelay time.Duration
}

// DeadLetterQueue returns the name of the dead-letter queue of the queue
// called name.
func DeadLetterQueue(name string) string { return name + deadSuffix }

func (s QueueSpec) withDefaults() (QueueSpec, error) {
	switch {
	case s.Name == "":
		return s, errors.New("queue name is empty")
	case strings.HasSuffix(s.Name, retrySuffix) || strings.HasSuffix(s.Name, deadSuffix):
		return s, fmt.Errorf("queue name %q ends in a reserved suffix (%s, %s)", s.Name, retrySuffix, deadSuffix)
	case len(s.RoutingKeys) == 0:
		return s, fmt.Errorf("queue %q has no routing keys", s.Name)
	case s.MaxDeliveries < 0:
		return s, fmt.Errorf("queue %q: negative MaxDeliveries %d", s.Name, s.MaxDeliveries)
	case s.RetryDelay < 0:
		return s, fmt.Errorf("queue %q: negative RetryDelay %s", s.Name, s.RetryDelay)
	}
	if s.MaxDeliveries == 0 {
		s.MaxDeliveries = DefaultMaxDeliveries
	}
	if s.RetryDelay == 0 {
		s.RetryDelay = DefaultRetryDelay
	}
	s.RetryDelay = max(s.RetryDelay.Round(time.Millisecond), time.Millisecond)
	s.RoutingKeys = slices.Clone(s.RoutingKeys)
	return s, nil
}

// DeclareQueue declares the queue described by spec with its retry and
// dead-letter queues (see the package documentation) and remembers it, so it
// is declared again after every reconnect and can be consumed with
// [Conn.Consume]. It fails with ErrUnavailable while disconnected.
func (c *Conn) DeclareQueue(ctx context.Context, spec QueueSpec) error {
	spec, err := spec.withDefaults()
	if err != nil {
		return fmt.Errorf("declare queue: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("declare queue %s: %w", spec.Name, err)
	}
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	s, err := c.current()
	if err != nil {
		return fmt.Errorf("declare queue %s: %w", spec.Name, err)
	}
	err = withChannel(s.conn, func(ch *amqp.Channel) error {
		return c.declareQueue(ch, spec)
	})
	if err != nil {
		return fmt.Errorf("declare queue %s: %w", spec.Name, err)
	}
	c.queues[spec.Name] = spec
	return nil
}

// queueSpec returns the spec of a queue declared through c.
func (c *Conn) queueSpec(name string) (QueueSpec, bool) {
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	spec, ok := c.queues[name]
	return spec, ok
}

// declareAll declares the exchanges and every recorded queue on conn.
// The caller holds topoMu.
func (c *Conn) declareAll(conn *amqp.Connection) error {
	return withChannel(conn, func(ch *amqp.Channel) error {
		if err := ch.ExchangeDeclare(c.cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", c.cfg.Exchange, err)
		}
		if err := ch.ExchangeDeclare(c.dlx, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", c.dlx, err)
		}
		for _, name := range slices.Sorted(maps.Keys(c.queues)) {
			if err := c.declareQueue(ch, c.queues[name]); err != nil {
				return fmt.Errorf("declare queue %s: %w", name, err)
			}
		}
		return nil
	})
}

// declareQueue declares spec's three queues and their bindings.
func (c *Conn) declareQueue(ch *amqp.Channel, spec QueueSpec) error {
	main, retry, dead := spec.Name, spec.Name+retrySuffix, spec.Name+deadSuffix
	queues := []struct {
		name string
		args amqp.Table
	}{
		{main, amqp.Table{
			"x-dead-letter-exchange":    c.dlx,
			"x-dead-letter-routing-key": retry,
		}},
		{retry, amqp.Table{
			"x-message-ttl":             spec.RetryDelay.Milliseconds(),
			"x-dead-letter-exchange":    c.dlx,
			"x-dead-letter-routing-key": main,
		}},
		{dead, nil},
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			return fmt.Errorf("declare %s: %w", q.name, err)
		}
		// Each queue is reachable through the DLX under its own name: main for
		// expired retries, retry for rejections, dead for dead-lettering.
		if err := ch.QueueBind(q.name, q.name, c.dlx, false, nil); err != nil {
			return fmt.Errorf("bind %s to %s: %w", q.name, c.dlx, err)
		}
	}
	for _, key := range spec.RoutingKeys {
		if err := ch.QueueBind(main, key, c.cfg.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind %s to %s with %q: %w", main, c.cfg.Exchange, key, err)
		}
	}
	return nil
}

// withChannel runs f on a fresh channel and closes it afterwards.
func withChannel(conn *amqp.Connection, f func(*amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w: %w", ErrUnavailable, err)
	}
	err = f(ch)
	if cerr := ch.Close(); cerr != nil && err == nil && !errors.Is(cerr, amqp.ErrClosed) {
		err = fmt.Errorf("close channel: %w", cerr)
	}
	return err
}
