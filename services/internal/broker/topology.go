package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// DefaultDeliveryLimit is QueueSpec.DeliveryLimit when it is zero.
	DefaultDeliveryLimit = 20
	// DefaultDeadLetterMax is QueueSpec.DeadLetterMax when it is zero.
	DefaultDeadLetterMax = 100_000

	// Queue arguments amqp091 has no names for.
	argDeliveryLimit = "x-delivery-limit"
	argDLX           = "x-dead-letter-exchange"
	argDLRoutingKey  = "x-dead-letter-routing-key"
	argDLStrategy    = "x-dead-letter-strategy"

	retrySuffix = ".retry"
	deadSuffix  = ".dead"
)

// QueueSpec describes a consuming service's queue. Every service that declares a queue
// must declare it with the same spec: RabbitMQ refuses a redeclaration with other
// arguments.
type QueueSpec struct {
	// Name is the queue name, e.g. "ates.taskhandler". It must not end in ".retry" or
	// ".dead"; those names belong to its retry and dead-letter queues.
	Name string
	// RoutingKeys bind the queue to the exchange; at least one is required.
	RoutingKeys []string
	// DeliveryLimit is how many times RabbitMQ hands out one message without it being
	// settled (the consumer died or its channel closed mid-event) before it gives up on
	// it as poison and dead-letters it; DefaultDeliveryLimit if zero. Retries after a
	// handler error do not count: they go through the retry queue.
	DeliveryLimit int
	// DeadLetterMax bounds the dead-letter queue; once it holds that many messages the
	// broker refuses more (nothing is dropped: the message stays where it was and the
	// consumer retries it later). DefaultDeadLetterMax if zero.
	DeadLetterMax int
}

// DeadLetterQueue returns the name of the dead-letter queue of the queue called name.
func DeadLetterQueue(name string) string { return name + deadSuffix }

// RetryQueue returns the name of the retry queue of the queue called name.
func RetryQueue(name string) string { return name + retrySuffix }

func (s QueueSpec) withDefaults() (QueueSpec, error) {
	switch {
	case s.Name == "":
		return s, errors.New("queue name is empty")
	case strings.HasSuffix(s.Name, retrySuffix) || strings.HasSuffix(s.Name, deadSuffix):
		return s, fmt.Errorf("queue name %q ends in a reserved suffix (%s, %s)", s.Name, retrySuffix, deadSuffix)
	case len(s.RoutingKeys) == 0:
		return s, fmt.Errorf("queue %q has no routing keys", s.Name)
	case s.DeliveryLimit < 0:
		return s, fmt.Errorf("queue %q: negative DeliveryLimit %d", s.Name, s.DeliveryLimit)
	case s.DeadLetterMax < 0:
		return s, fmt.Errorf("queue %q: negative DeadLetterMax %d", s.Name, s.DeadLetterMax)
	}
	if s.DeliveryLimit == 0 {
		s.DeliveryLimit = DefaultDeliveryLimit
	}
	if s.DeadLetterMax == 0 {
		s.DeadLetterMax = DefaultDeadLetterMax
	}
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
	if err := c.declareQueueOrCheck(s.conn, spec); err != nil {
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
	for _, x := range []struct{ name, kind string }{{c.cfg.Exchange, amqp.ExchangeTopic}, {c.dlx, amqp.ExchangeDirect}} {
		err := declareOrCheck(conn, func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare(x.name, x.kind, true, false, false, false, nil)
		}, func(ch *amqp.Channel) error {
			return ch.ExchangeDeclarePassive(x.name, x.kind, true, false, false, false, nil)
		})
		if err != nil {
			return fmt.Errorf("declare exchange %s: %w", x.name, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.queues)) {
		if err := c.declareQueueOrCheck(conn, c.queues[name]); err != nil {
			return fmt.Errorf("declare queue %s: %w", name, err)
		}
	}
	return nil
}

// declareQueueOrCheck declares spec's queues and bindings, or, where the connection's
// user may not (see declareOrCheck), checks that the three queues exist.
func (c *Conn) declareQueueOrCheck(conn *amqp.Connection, spec QueueSpec) error {
	return declareOrCheck(conn, func(ch *amqp.Channel) error {
		return c.declareQueue(ch, spec)
	}, func(ch *amqp.Channel) error {
		for _, q := range []string{spec.Name, RetryQueue(spec.Name), DeadLetterQueue(spec.Name)} {
			if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
				return fmt.Errorf("check %s: %w", q, err)
			}
		}
		return nil
	})
}

// declareOrCheck runs declare on a channel of its own. If the broker refuses it because
// the connection's user has no configure permission (a service's own user, see Grants:
// a service may not change or delete the topology), it runs check instead, passive
// declares, which need no permission: what the service would declare must exist, and
// `ates broker setup` declares all of it with an administrator's rights. A user that may
// configure (guest, in tests and in a setup without per-service users) declares as before.
func declareOrCheck(conn *amqp.Connection, declare, check func(*amqp.Channel) error) error {
	err := withChannel(conn, declare)
	if !IsAccessRefused(err) {
		return err
	}
	if cerr := withChannel(conn, check); cerr != nil {
		return fmt.Errorf("%w; it must exist already, and does not (run ates broker setup): %w", err, cerr)
	}
	return nil
}

// IsAccessRefused reports whether err is the broker refusing an operation to the
// connection's user (AMQP 403 ACCESS_REFUSED): a permission it lacks.
func IsAccessRefused(err error) bool {
	var aerr *amqp.Error
	return errors.As(err, &aerr) && aerr.Code == amqp.AccessRefused
}

// declareQueue declares spec's three quorum queues and their bindings:
//
//   - the main queue, bound to the exchange. RabbitMQ dead-letters a message from it
//     only when the message hit DeliveryLimit (poison), straight into the dead queue;
//   - the retry queue, which nothing consumes: the consumer republishes a failed message
//     there with a per-message expiration, and it expires back into the main queue;
//   - the dead queue, bounded by DeadLetterMax, for messages that can never be applied.
//
// Dead-lettering is at-least-once (which needs overflow reject-publish on the source),
// so a message moving between them is never lost on the way.
func (c *Conn) declareQueue(ch *amqp.Channel, spec QueueSpec) error {
	main, retry, dead := spec.Name, RetryQueue(spec.Name), DeadLetterQueue(spec.Name)
	queues := queueDecls(spec, c.dlx)
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			var aerr *amqp.Error
			if errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed {
				return fmt.Errorf("declare %s: it exists with other arguments (an older aTES declared classic queues); "+
					"let it drain, then delete %s, %s and %s (rabbitmqctl delete_queue NAME) and start again: %w",
					q.name, main, retry, dead, err)
			}
			return fmt.Errorf("declare %s: %w", q.name, err)
		}
		// Each queue is reachable through the DLX under its own name: main for expired
		// retries, retry for the consumer's retry copies, dead for dead letters.
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

// queueDecl is one queue of a QueueSpec with its arguments.
type queueDecl struct {
	name string
	args amqp.Table
}

// queueDecls are the three queues of spec (with its defaults applied), whose dead-letter
// exchange is dlx: what declareQueue declares and Definitions writes.
func queueDecls(spec QueueSpec, dlx string) []queueDecl {
	main, retry, dead := spec.Name, RetryQueue(spec.Name), DeadLetterQueue(spec.Name)
	return []queueDecl{
		{main, amqp.Table{
			amqp.QueueTypeArg:     amqp.QueueTypeQuorum,
			argDeliveryLimit:      int64(spec.DeliveryLimit),
			argDLX:                dlx,
			argDLRoutingKey:       dead,
			argDLStrategy:         "at-least-once",
			amqp.QueueOverflowArg: amqp.QueueOverflowRejectPublish,
		}},
		{retry, amqp.Table{
			amqp.QueueTypeArg:     amqp.QueueTypeQuorum,
			argDLX:                dlx,
			argDLRoutingKey:       main,
			argDLStrategy:         "at-least-once",
			amqp.QueueOverflowArg: amqp.QueueOverflowRejectPublish,
		}},
		{dead, amqp.Table{
			amqp.QueueTypeArg:     amqp.QueueTypeQuorum,
			amqp.QueueMaxLenArg:   int64(spec.DeadLetterMax),
			amqp.QueueOverflowArg: amqp.QueueOverflowRejectPublish,
		}},
	}
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
