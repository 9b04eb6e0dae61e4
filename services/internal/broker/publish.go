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
	// HeaderTraceparent carries the W3C trace context of the publish's span (see
	// tracing.go); a caller without a span in its context can set one with
	// WithHeaders.
	HeaderTraceparent = "traceparent"
)

// ErrUnroutable is returned (wrapped) by Publish when no queue is bound for
// the routing key, so the broker returned the message.
var ErrUnroutable = errors.New("message unroutable")

// What a failed publish did, for a caller that must tell its own caller
// whether anything will happen. Both wrap ErrUnavailable.
var (
	// ErrNotSent is returned (wrapped) by Publish when the message never
	// reached the broker: the connection was down, the publisher channel
	// closed, or ctx ended before the send. Nothing will be delivered.
	ErrNotSent error = &outcomeError{"message not sent"}
	// ErrOutcomeUnknown is returned (wrapped) by Publish when the message was
	// sent but not confirmed: no confirm within Config.ConfirmTimeout, ctx
	// ended while waiting, the channel or connection dropped first, or the
	// broker nacked it. It may or may not be delivered; publish it again only
	// under the same event id (WithEventID), which consumers dedupe on.
	ErrOutcomeUnknown error = &outcomeError{"message sent but not confirmed; it may or may not be delivered"}

	// errConfirmTimeout marks the ErrOutcomeUnknown of a confirm that did not
	// arrive within Config.ConfirmTimeout, which Check reports.
	errConfirmTimeout = fmt.Errorf("%w: no confirm within the confirm timeout", ErrOutcomeUnknown)
)

// outcomeError is an ErrUnavailable that says what became of the message.
type outcomeError struct{ msg string }

func (e *outcomeError) Error() string { return e.msg }
func (e *outcomeError) Unwrap() error { return ErrUnavailable }

// ProbeRoutingKey is the routing key of Check's probe messages; nothing binds it. A
// publisher's topic permissions must allow it.
const ProbeRoutingKey = "ates.readiness-probe"

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
// message and waits for the broker's confirm, at most Config.ConfirmTimeout.
// It returns the event id (the message_id), also on failure so that a retry
// can reuse it with WithEventID. It fails with ErrNotSent (at once while
// disconnected), ErrOutcomeUnknown (sent, but not confirmed; also when ctx
// ends while waiting, wrapping ctx's error too) or ErrUnroutable (no queue is
// bound for routingKey). It is safe for concurrent use.
func (c *Conn) Publish(ctx context.Context, routingKey string, msg proto.Message, opts ...PublishOption) (_ string, err error) {
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
	ctx, span := startPublishSpan(ctx, c.cfg.Exchange, routingKey, id, headers)
	defer func() { endSpan(span, err) }()
	if err := headers.Validate(); err != nil {
		return id, fmt.Errorf("publish %s %s: headers: %w", routingKey, id, err)
	}
	p := amqp.Publishing{
		Headers:      headers,
		ContentType:  ContentTypeProtobuf,
		DeliveryMode: amqp.Persistent,
		MessageId:    id,
		Timestamp:    time.Now(),
		Type:         string(desc.FullName()),
		AppId:        c.cfg.AppID,
		Body:         body,
	}
	if c.cfg.Signer != nil {
		c.cfg.Signer.Sign(&p)
	}
	if err := c.publish(ctx, c.cfg.Exchange, routingKey, p); err != nil {
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

// publish sends p as a mandatory message on the current session's confirm
// channel and waits for the confirm.
func (c *Conn) publish(ctx context.Context, exchange, key string, p amqp.Publishing) error {
	return c.send(ctx, exchange, key, true, p)
}

// probe publishes an empty message nobody receives to exchange and waits for its
// confirm: whether the broker confirms publishes now. The exchange is the one of the
// publish that timed out, which the connection's user may write to (a consumer's user
// may write only to the dead-letter exchange).
func (c *Conn) probe(ctx context.Context, exchange string) error {
	return c.send(ctx, exchange, ProbeRoutingKey, false, amqp.Publishing{
		MessageId: "readiness-probe",
		Timestamp: time.Now(),
		AppId:     c.cfg.AppID,
	})
}

// errConfirmDeadline is the cause of a publish context that reached
// Config.ConfirmTimeout.
var errConfirmDeadline = errors.New("the broker did not answer within the confirm timeout")

// send publishes p on the current session's confirm channel, waits for the
// confirm (all of it within Config.ConfirmTimeout) and records the outcome on the
// session for Check.
func (c *Conn) send(ctx context.Context, exchange, key string, mandatory bool, p amqp.Publishing) error {
	s, err := c.current()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.ConfirmTimeout, errConfirmDeadline)
	defer cancel()
	pub, err := s.publisher(ctx, c.log)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	err = pub.publish(ctx, exchange, key, mandatory, p)
	switch {
	case err == nil, errors.Is(err, ErrUnroutable):
		s.confirmedAt.Store(time.Now().UnixNano())
	case errors.Is(err, errConfirmTimeout):
		s.timedOutOn.Store(exchange)
		s.timedOutAt.Store(time.Now().UnixNano())
	}
	return err
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

	// sendSlot (capacity 1) keeps the next sequence number and the send
	// together; a channel rather than a mutex so that a caller stuck behind a
	// slow send can give up when its ctx ends.
	sendSlot chan struct{}
	// closes receives why the broker closed the channel, e.g. ACCESS_REFUSED for a
	// publish the user may not make.
	closes chan *amqp.Error

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
	cc := &confirmChannel{ch: ch, log: log, sendSlot: make(chan struct{}, 1), pending: make(map[uint64]*pendingConfirm)}
	// amqp091 sends the close reason before it closes the confirms channel.
	cc.closes = ch.NotifyClose(make(chan *amqp.Error, 1))
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

// publish sends p and waits for its confirm until ctx ends. An error before or
// during the send is ErrNotSent: amqp091 writes a message's frames together, so a
// failed write leaves the broker an incomplete message, which it drops. Once
// sent, a missing confirm is ErrOutcomeUnknown; errConfirmTimeout if ctx ended
// with errConfirmDeadline.
func (cc *confirmChannel) publish(ctx context.Context, exchange, key string, mandatory bool, p amqp.Publishing) error {
	pc := &pendingConfirm{messageID: p.MessageId, result: make(chan error, 1)}

	select {
	case cc.sendSlot <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: wait for the publisher channel: %w", ErrNotSent, context.Cause(ctx))
	}
	tag := cc.ch.GetNextPublishSeqNo()
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		<-cc.sendSlot
		return fmt.Errorf("%w: publisher channel closed", ErrNotSent)
	}
	cc.pending[tag] = pc // registered before sending: the confirm may come at once
	cc.mu.Unlock()
	err := cc.ch.PublishWithContext(ctx, exchange, key, mandatory, false, p)
	if err != nil {
		// Still holding the slot: the unused tag goes to the next publish.
		cc.forget(tag)
	}
	<-cc.sendSlot
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("%w: send: %w", ErrNotSent, err)
	}

	select {
	case err := <-pc.result:
		return err
	case <-ctx.Done():
		cc.forget(tag)
		if errors.Is(context.Cause(ctx), errConfirmDeadline) {
			return errConfirmTimeout
		}
		return fmt.Errorf("%w: wait for confirm: %w", ErrOutcomeUnknown, ctx.Err())
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
		// A nack is the broker's internal error; it may have routed the
		// message to some queues already.
		pc.result <- fmt.Errorf("%w: the broker nacked it", ErrOutcomeUnknown)
	case pc.returned != "":
		pc.result <- fmt.Errorf("%w: %s", ErrUnroutable, pc.returned)
	default:
		pc.result <- nil
	}
}

func (cc *confirmChannel) fail() {
	err := fmt.Errorf("%w: the channel closed before the broker confirmed", ErrOutcomeUnknown)
	select {
	case reason := <-cc.closes:
		if reason != nil {
			// Say why: a publish the user may not make (IsAccessRefused) closes the channel.
			err = fmt.Errorf("%w: %w", err, reason)
		}
	default:
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.closed = true
	for tag, pc := range cc.pending {
		pc.result <- err
		delete(cc.pending, tag)
	}
}
