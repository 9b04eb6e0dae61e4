package broker

import (
	"context"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/proto"
)

// Headers of a message copied to a retry or dead-letter queue.
const (
	// HeaderError is why the message was retried or dead-lettered: the handler's error
	// text.
	HeaderError = "x-ates-error"

	headerAttempts   = "x-ates-attempts"    // attempts made so far
	headerRoutingKey = "x-ates-routing-key" // routing key it was published with
	headerQueue      = "x-ates-queue"       // queue it was consumed from
	headerFailedAt   = "x-ates-failed-at"   // when the copy was made

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
	// Redelivered counts the times RabbitMQ handed this message out before without it
	// being settled (a consumer died or lost its channel); the queue's DeliveryLimit
	// bounds it.
	Redelivered int
	// Timestamp is when the event was published (second precision).
	Timestamp time.Time
	// AppID names the publishing service.
	AppID string
	// ContentType is the body's media type, normally ContentTypeProtobuf.
	ContentType string
}

// DeadLetterReason returns why a message read from a dead-letter queue is there: the
// handler's error, or, for a message RabbitMQ dead-lettered by itself, its reason (such
// as delivery_limit: handed out DeliveryLimit times without being settled).
func (d Delivery) DeadLetterReason() string {
	if s, ok := d.Headers[HeaderError].(string); ok {
		return s
	}
	// RabbitMQ 3.13 added x-last-death-reason; older servers only keep x-death.
	reason, _ := d.Headers["x-last-death-reason"].(string)
	if deaths, _ := d.Headers["x-death"].([]any); reason == "" && len(deaths) > 0 {
		if t, ok := deaths[0].(amqp.Table); ok { // the newest entry comes first
			reason, _ = t["reason"].(string)
		}
	}
	if reason == "delivery_limit" {
		return "delivery_limit: handed out too many times without being settled (did the consumer crash on it?)"
	}
	return reason
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
		Redelivered: int(toInt64(d.Headers["x-delivery-count"])),
		Timestamp:   d.Timestamp,
		AppID:       d.AppId,
		ContentType: d.ContentType,
	}
	if out.Headers == nil {
		out.Headers = amqp.Table{}
	}
	// Retry and dead-letter copies carry what the consumer knew; a message RabbitMQ
	// dead-lettered by itself keeps its first routing key in x-death.
	attempts := int(toInt64(d.Headers[headerAttempts]))
	if k, ok := d.Headers[headerRoutingKey].(string); ok && k != "" {
		out.RoutingKey = k
	} else if death, ok := xDeath(d.Headers, strings.TrimSuffix(queue, deadSuffix)); ok {
		if keys, ok := death["routing-keys"].([]any); ok && len(keys) > 0 {
			if k, ok := keys[0].(string); ok {
				out.RoutingKey = k
			}
		}
	}
	if strings.HasSuffix(queue, deadSuffix) {
		out.Attempt = max(attempts, 1)
	} else {
		out.Attempt = attempts + 1
	}
	return out
}

// xDeath returns the x-death entry RabbitMQ keeps for queue.
func xDeath(h amqp.Table, queue string) (amqp.Table, bool) {
	deaths, _ := h["x-death"].([]any)
	for _, v := range deaths {
		t, ok := v.(amqp.Table)
		if ok && t["queue"] == queue {
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

// copyHeaders returns the headers of a retry or dead-letter copy of d: the original
// ones without RabbitMQ's bookkeeping (x-death, x-delivery-count: the copy is a new
// message, and RabbitMQ drops messages that cycle through dead-lettering on their own),
// plus why, after how many attempts and from where.
func copyHeaders(queue string, raw amqp.Delivery, d Delivery, attempts int, reason error) amqp.Table {
	h := amqp.Table{}
	for k, v := range raw.Headers {
		if k == "x-death" || k == "x-delivery-count" || strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-") {
			continue
		}
		h[k] = v
	}
	msg := reason.Error()
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader]
	}
	h[HeaderError] = strings.ToValidUTF8(msg, "")
	h[headerAttempts] = int64(attempts)
	h[headerRoutingKey] = d.RoutingKey
	h[headerQueue] = queue
	h[headerFailedAt] = time.Now().UTC().Truncate(time.Second)
	return h
}

// QueueDepth returns how many messages queue holds that no consumer has taken yet.
func (c *Conn) QueueDepth(ctx context.Context, queue string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("depth of %s: %w", queue, err)
	}
	s, err := c.current()
	if err != nil {
		return 0, fmt.Errorf("depth of %s: %w", queue, err)
	}
	n := 0
	err = withChannel(s.conn, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		n = q.Messages
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("depth of %s: %w", queue, err)
	}
	return n, nil
}
