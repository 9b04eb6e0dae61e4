package broker

import (
	"context"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/proto"
)

// Headers of a message copied to a dead-letter queue.
const (
	// HeaderError is the reason the message was dead-lettered: the handler's
	// error text.
	HeaderError = "x-ates-error"

	headerAttempts   = "x-ates-attempts"    // attempts made before dead-lettering
	headerRoutingKey = "x-ates-routing-key" // routing key it was published with
	headerQueue      = "x-ates-queue"       // queue it was consumed from

	maxErrorHeader = 1024 // bytes of the error text kept in HeaderError
)

// Delivery is one received event.
type Delivery struct {
	// EventID is the AMQP message_id, unique per event; dedupe on it.
	EventID string
	// Type is the full protobuf message name, e.g. "events.v1.TaskCreate".
	Type string
	// RoutingKey is the key the event was published with, also after retries
	// and dead-lettering, which route it under other keys.
	RoutingKey string
	// Body is the protobuf-encoded event.
	Body []byte
	// Headers are the AMQP headers, such as HeaderSchemaVersion and
	// HeaderTraceparent, and HeaderError in a dead-letter queue.
	Headers amqp.Table
	// Attempt is 1 on first delivery and grows by one with every retry. For a
	// message read from a dead-letter queue it is the number of attempts made.
	Attempt int
	// Timestamp is when the event was published (second precision).
	Timestamp time.Time
	// AppID names the publishing service.
	AppID string
	// ContentType is the body's media type, normally ContentTypeProtobuf.
	ContentType string
}

// DeadLetterReason returns the HeaderError of a message read from a
// dead-letter queue, or "".
func (d Delivery) DeadLetterReason() string {
	s, _ := d.Headers[HeaderError].(string)
	return s
}

// Unmarshal decodes the body into msg after checking that the delivery's Type
// is msg's full name. Handlers usually wrap its error with Permanent.
func (d Delivery) Unmarshal(msg proto.Message) error {
	if want := string(msg.ProtoReflect().Descriptor().FullName()); d.Type != want {
		return fmt.Errorf("event %s: type %q, want %q", d.EventID, d.Type, want)
	}
	if err := proto.Unmarshal(d.Body, msg); err != nil {
		return fmt.Errorf("event %s: unmarshal %s: %w", d.EventID, d.Type, err)
	}
	return nil
}

// Get takes one message off queue (acknowledging it at once) and returns it,
// or nil if the queue is empty. It is meant for tests and operator tools, for
// instance to read a dead-letter queue (see DeadLetterQueue).
func (c *Conn) Get(ctx context.Context, queue string) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get from %s: %w", queue, err)
	}
	s, err := c.current()
	if err != nil {
		return nil, fmt.Errorf("get from %s: %w", queue, err)
	}
	var d *Delivery
	err = withChannel(s.conn, func(ch *amqp.Channel) error {
		raw, ok, err := ch.Get(queue, true)
		if ok {
			dd := newDelivery(queue, raw)
			d = &dd
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get from %s: %w", queue, err)
	}
	return d, nil
}

// newDelivery converts a message received from queue.
func newDelivery(queue string, d amqp.Delivery) Delivery {
	out := Delivery{
		EventID:     d.MessageId,
		Type:        d.Type,
		RoutingKey:  d.RoutingKey,
		Body:        d.Body,
		Headers:     d.Headers,
		Attempt:     1,
		Timestamp:   d.Timestamp,
		AppID:       d.AppId,
		ContentType: d.ContentType,
	}
	if out.Headers == nil {
		out.Headers = amqp.Table{}
	}
	if death, ok := xDeath(d.Headers, queue, "rejected"); ok {
		// Rejected n times from this queue: this is attempt n+1. RabbitMQ
		// keeps the entry's routing keys from the first rejection, which are
		// the ones the event was published with.
		out.Attempt += int(toInt64(death["count"]))
		if keys, ok := death["routing-keys"].([]any); ok && len(keys) > 0 {
			if k, ok := keys[0].(string); ok {
				out.RoutingKey = k
			}
		}
		return out
	}
	if strings.HasSuffix(queue, deadSuffix) {
		if n := toInt64(d.Headers[headerAttempts]); n > 0 {
			out.Attempt = int(n)
		}
		if k, ok := d.Headers[headerRoutingKey].(string); ok && k != "" {
			out.RoutingKey = k
		}
	}
	return out
}

// xDeath returns the x-death entry RabbitMQ keeps for (queue, reason).
func xDeath(h amqp.Table, queue, reason string) (amqp.Table, bool) {
	deaths, _ := h["x-death"].([]any)
	for _, v := range deaths {
		t, ok := v.(amqp.Table)
		if ok && t["queue"] == queue && t["reason"] == reason {
			return t, true
		}
	}
	return nil, false
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int16:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	}
	return 0
}

// deadLetterHeaders returns the headers of the dead-letter copy of d: the
// original ones without RabbitMQ's x-death bookkeeping (so a replayed message
// starts again at attempt 1), plus why, after how many attempts and from where.
func deadLetterHeaders(queue string, raw amqp.Delivery, d Delivery, reason error) amqp.Table {
	h := amqp.Table{}
	for k, v := range raw.Headers {
		if k == "x-death" || strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-") {
			continue
		}
		h[k] = v
	}
	msg := reason.Error()
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader]
	}
	h[HeaderError] = strings.ToValidUTF8(msg, "")
	h[headerAttempts] = int64(d.Attempt)
	h[headerRoutingKey] = d.RoutingKey
	h[headerQueue] = queue
	return h
}
