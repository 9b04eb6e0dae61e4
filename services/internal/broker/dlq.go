package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DeadLetter is one message waiting in a dead-letter queue.
type DeadLetter struct {
	Delivery
	// Reason is why it is there (see Delivery.DeadLetterReason).
	Reason string
	// DeadAt is when it was dead-lettered, to the second (zero if unknown).
	DeadAt time.Time
}

func deadLetterOf(d Delivery) DeadLetter {
	dl := DeadLetter{Delivery: d, Reason: d.DeadLetterReason()}
	if t, ok := d.Headers[headerFailedAt].(time.Time); ok {
		dl.DeadAt = t
	} else if deaths, _ := d.Headers["x-death"].([]any); len(deaths) > 0 {
		if t, ok := deaths[0].(amqp.Table); ok {
			dl.DeadAt, _ = t["time"].(time.Time)
		}
	}
	return dl
}

// DeadQueueName accepts a consumer queue's name or its dead-letter queue's name and
// returns the latter.
func DeadQueueName(queue string) string {
	if strings.HasSuffix(queue, deadSuffix) {
		return queue
	}
	return DeadLetterQueue(queue)
}

// DeadLetters returns up to limit messages of the dead-letter queue dead, oldest first,
// without taking them off it.
func (c *Conn) DeadLetters(ctx context.Context, dead string, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := c.walkDead(ctx, dead, func(raw amqp.Delivery, d Delivery) (bool, error) {
		out = append(out, deadLetterOf(d))
		return len(out) < limit, nil
	})
	return out, err
}

// ReplayDeadLetters publishes the messages of the dead-letter queue dead whose event id
// is in ids (every message if ids is empty) back to the exchange under the routing key
// they were first published with and with their original event id, so a consumer that
// applied one already skips it; each is removed from dead once the broker confirmed the
// copy. It returns the ids replayed.
func (c *Conn) ReplayDeadLetters(ctx context.Context, dead string, ids []string) ([]string, error) {
	var replayed []string
	err := c.walkDead(ctx, dead, func(raw amqp.Delivery, d Delivery) (bool, error) {
		if !wanted(ids, d.EventID) {
			return true, nil
		}
		if d.RoutingKey == "" || d.RoutingKey == dead {
			return false, fmt.Errorf("event %s: its original routing key is unknown", d.EventID)
		}
		headers := amqp.Table{}
		for k, v := range raw.Headers {
			if !strings.HasPrefix(k, "x-") { // drop RabbitMQ's and our bookkeeping
				headers[k] = v
			}
		}
		err := c.publish(ctx, c.cfg.Exchange, d.RoutingKey, republishing(raw, headers))
		if err != nil {
			return false, fmt.Errorf("replay event %s to %s: %w", d.EventID, d.RoutingKey, err)
		}
		if err := raw.Ack(false); err != nil {
			return false, fmt.Errorf("event %s was replayed but stays in %s too: %w", d.EventID, dead, err)
		}
		replayed = append(replayed, d.EventID)
		return len(ids) == 0 || len(replayed) < len(ids), nil
	})
	return replayed, err
}

// PurgeDeadLetters deletes the messages of the dead-letter queue dead whose event id is
// in ids, or every message if ids is empty, and returns how many it deleted.
func (c *Conn) PurgeDeadLetters(ctx context.Context, dead string, ids []string) (int, error) {
	if len(ids) == 0 {
		s, err := c.current()
		if err != nil {
			return 0, fmt.Errorf("purge %s: %w", dead, err)
		}
		n := 0
		err = withChannel(s.conn, func(ch *amqp.Channel) error {
			n, err = ch.QueuePurge(dead, false)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("purge %s: %w", dead, err)
		}
		return n, nil
	}
	n := 0
	err := c.walkDead(ctx, dead, func(raw amqp.Delivery, d Delivery) (bool, error) {
		if !wanted(ids, d.EventID) {
			return true, nil
		}
		if err := raw.Ack(false); err != nil {
			return false, fmt.Errorf("delete event %s: %w", d.EventID, err)
		}
		n++
		return n < len(ids), nil
	})
	return n, err
}

func wanted(ids []string, id string) bool {
	if len(ids) == 0 {
		return true
	}
	for _, w := range ids {
		if w == id {
			return true
		}
	}
	return false
}

// walkDead takes the messages of dead one by one, without acknowledging them, and calls
// f on each until f says stop, the queue runs out or ctx ends. Messages f did not ack go
// back to the queue, in order, when the walk's channel closes.
func (c *Conn) walkDead(ctx context.Context, dead string, f func(raw amqp.Delivery, d Delivery) (more bool, err error)) error {
	if !strings.HasSuffix(dead, deadSuffix) {
		return fmt.Errorf("%s is not a dead-letter queue (its name ends in %s)", dead, deadSuffix)
	}
	s, err := c.current()
	if err != nil {
		return fmt.Errorf("read %s: %w", dead, err)
	}
	err = withChannel(s.conn, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(dead, true, false, false, false, nil)
		if err != nil {
			return err
		}
		// Taken messages are not handed out again on this channel, so at most the
		// queue's depth now is read, and what arrives meanwhile waits for the next walk.
		for range q.Messages {
			if err := ctx.Err(); err != nil {
				return err
			}
			raw, ok, err := ch.Get(dead, false)
			if err != nil || !ok {
				return err
			}
			more, err := f(raw, newDelivery(dead, raw))
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
		return fmt.Errorf("read %s: no such queue (is the consumer's queue name right?)", dead)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dead, err)
	}
	return nil
}
