package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Message properties and headers set by Publish.
const (
	// ContentTypeProtobuf is the content_type of every published event.
	ContentTypeProtobuf = "application/x-protobuf"
	// HeaderSchemaVersion carries the version of the event's proto package,
	// e.g. "v1" for events.v1.TaskCreate.
	HeaderSchemaVersion = "schema_version"
	// HeaderTraceparent carries the W3C trace context, when the caller sets it
	// with WithHeaders.
	HeaderTraceparent = "traceparent"
)

// ErrUnroutable is returned (wrapped) by Publish when no queue is bound for
// the routing key, so the broker returned the message.
var ErrUnroutable = errors.New("message unroutable")

// PublishOption changes how one message is published.
type PublishOption func(*publishOptions)

type publishOptions struct {
	eventID string
	headers amqp.Table
}

// WithEventID publishes the message under id instead of a new UUIDv7, so a
// caller retrying a publish keeps the event's identity (consumers dedupe on it).
func WithEventID(id string) PublishOption {
	return func(o *publishOptions) { o.eventID = id }
}

// WithHeaders adds AMQP headers, e.g. HeaderTraceparent. Headers set by the
// package (HeaderSchemaVersion) take precedence.
func WithHeaders(h amqp.Table) PublishOption {
	return func(o *publishOptions) {
		if o.headers == nil {
			o.headers = amqp.Table{}
		}
		maps.Copy(o.headers, h)
	}
}

// Publish sends msg to the exchange with routingKey as a persistent protobuf
// message and waits for the broker's confirm. It returns the event id (the
// message_id), also on failure so that a retry can reuse it with WithEventID.
// It fails with ErrUnavailable (at once while disconnected), ErrUnroutable
// when no queue is bound for routingKey, on a broker nack, or with ctx's error.
// It is safe for concurrent use.
func (c *Conn) Publish(ctx context.Context, routingKey string, msg proto.Message, opts ...PublishOption) (string, error) {
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	id := o.eventID
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return "", fmt.Errorf("publish %s: new event id: %w", routingKey, err)
		}
		id = u.String()
	}
	if msg == nil {
		return id, fmt.Errorf("publish %s %s: nil message", routingKey, id)
	}
	body, err := proto.Marshal(msg)
	if err != nil {
		return id, fmt.Errorf("publish %s %s: marshal: %w", routingKey, id, err)
	}
	desc := msg.ProtoReflect().Descriptor()
	headers := amqp.Table{}
	maps.Copy(headers, o.headers)
	if v := schemaVersion(desc); v != "" {
		headers[HeaderSchemaVersion] = v
	}
	if err := headers.Validate(); err != nil {
		return id, fmt.Errorf("publish %s %s: headers: %w", routingKey, id, err)
	}
	err = c.publish(ctx, c.cfg.Exchange, routingKey, amqp.Publishing{
		Headers:      headers,
		ContentType:  ContentTypeProtobuf,
		DeliveryMode: amqp.Persistent,
		MessageId:    id,
		Timestamp:    time.Now(),
		Type:         string(desc.FullName()),
		AppId:        c.cfg.AppID,
		Body:         body,
	})
	if err != nil {
		return id, fmt.Errorf("publish %s %s: %w", routingKey, id, err)
	}
	return id, nil
}

// versionRE matches proto package versions such as v1, v2beta1.
var versionRE = regexp.MustCompile(`^v\d+((alpha|beta)\d*)?$`)

// schemaVersion returns the last element of the message's proto package if it
// is a version ("events.v1" → "v1"), else "".
func schemaVersion(desc protoreflect.MessageDescriptor) string {
	file := desc.ParentFile()
	if file == nil {
		return ""
	}
	if v := string(file.Package().Name()); versionRE.MatchString(v) {
		return v
	}
	return ""
}

// publish sends p on the current session's confirm channel and waits for the
// confirm.
func (c *Conn) publish(ctx context.Context, exchange, key string, p amqp.Publishing) error {
	s, err := c.current()
	if err != nil {
		return err
	}
	pub, err := s.publisher(c.log)
	if err != nil {
		return err
	}
	return pub.publish(ctx, exchange, key, p)
}

// confirmChannel is a channel in confirm mode shared by concurrent publishers.
// Publishes are pipelined: the send is serialised, the wait for the confirm
// is not. One goroutine reads both basic.return and confirms: RabbitMQ sends
// the return of an unroutable mandatory message before its ack, and amqp091
// hands both over in that order, so handling them in one goroutine (with an
// unbuffered return channel) sees the return before the ack it belongs to.
type confirmChannel struct {
	ch  *amqp.Channel
	log *slog.Logger

	sendMu sync.Mutex // keeps the next sequence number and the send together

	mu      sync.Mutex
	pending map[uint64]*pendingConfirm // by delivery tag
	closed  bool
}

type pendingConfirm struct {
	messageID string
	returned  string     // reply text of a basic.return, if any
	result    chan error // buffered; receives the outcome once
}

func openConfirmChannel(conn *amqp.Connection, log *slog.Logger) (*confirmChannel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	cc := &confirmChannel{ch: ch, log: log, pending: make(map[uint64]*pendingConfirm)}
	// Buffered so the connection's reader never waits on us; amqp091 drops a
	// notification it cannot deliver within 5s.
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1024))
	returns := ch.NotifyReturn(make(chan amqp.Return))
	go cc.dispatch(confirms, returns)
	return cc, nil
}

func (cc *confirmChannel) isClosed() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.closed
}

func (cc *confirmChannel) publish(ctx context.Context, exchange, key string, p amqp.Publishing) error {
	pc := &pendingConfirm{messageID: p.MessageId, result: make(chan error, 1)}

	cc.sendMu.Lock()
	tag := cc.ch.GetNextPublishSeqNo()
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		cc.sendMu.Unlock()
		return fmt.Errorf("publisher channel closed: %w", ErrUnavailable)
	}
	cc.pending[tag] = pc // registered before sending: the confirm may come at once
	cc.mu.Unlock()
	err := cc.ch.PublishWithContext(ctx, exchange, key, true, false, p)
	if err != nil {
		// Still under sendMu: the unused tag goes to the next publish.
		cc.forget(tag)
	}
	cc.sendMu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("send: %w: %w", ErrUnavailable, err)
	}

	select {
	case err := <-pc.result:
		return err
	case <-ctx.Done():
		cc.forget(tag)
		return fmt.Errorf("wait for confirm: %w", ctx.Err())
	}
}

func (cc *confirmChannel) forget(tag uint64) {
	cc.mu.Lock()
	delete(cc.pending, tag)
	cc.mu.Unlock()
}

// dispatch resolves pending publishes until the channel closes, then fails
// the ones left: the broker may or may not have them.
func (cc *confirmChannel) dispatch(confirms <-chan amqp.Confirmation, returns <-chan amqp.Return) {
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			cc.returned(r)
		case cf, ok := <-confirms:
			if !ok {
				cc.fail()
				return
			}
			cc.confirmed(cf)
		}
	}
}

// returned marks the oldest unconfirmed publish with r's message id.
func (cc *confirmChannel) returned(r amqp.Return) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var oldest uint64
	for tag, pc := range cc.pending {
		if pc.messageID == r.MessageId && pc.returned == "" && (oldest == 0 || tag < oldest) {
			oldest = tag
		}
	}
	if oldest == 0 {
		cc.log.Warn("broker returned a message nobody waits for", "message_id", r.MessageId, "routing_key", r.RoutingKey, "reason", r.ReplyText)
		return
	}
	cc.pending[oldest].returned = fmt.Sprintf("%d %s", r.ReplyCode, r.ReplyText)
}

func (cc *confirmChannel) confirmed(cf amqp.Confirmation) {
	cc.mu.Lock()
	pc, ok := cc.pending[cf.DeliveryTag]
	delete(cc.pending, cf.DeliveryTag)
	cc.mu.Unlock()
	switch {
	case !ok: // the publisher gave up waiting
	case !cf.Ack:
		pc.result <- errors.New("broker nacked the message")
	case pc.returned != "":
		pc.result <- fmt.Errorf("%w: %s", ErrUnroutable, pc.returned)
	default:
		pc.result <- nil
	}
}

func (cc *confirmChannel) fail() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.closed = true
	for tag, pc := range cc.pending {
		pc.result <- fmt.Errorf("channel closed before the broker confirmed: %w", ErrUnavailable)
		delete(cc.pending, tag)
	}
}
