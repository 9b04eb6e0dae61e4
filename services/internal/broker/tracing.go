package broker

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/ates/ates/services/internal/telemetry"
)

// Tracing: Publish runs in a producer span and writes its W3C trace context into the
// message's headers (HeaderTraceparent); the consumer reads it back and handles the event
// in a consumer span that continues the trace, so the handler's SQL joins the trace of the
// call that published the event. Retry and dead-letter copies keep the headers, and with
// them the trace. The signature does not cover the headers: a forged traceparent can only
// file an event's spans under another trace, and grants nothing.

// tracer is asked for at each use, so that it follows the global provider Setup installs
// (a tracer taken earlier would stay with the first provider ever installed).
func tracer() trace.Tracer { return otel.Tracer("github.com/ates/ates/services/internal/broker") }

// headerCarrier reads and writes the trace context in AMQP headers.
type headerCarrier amqp.Table

func (h headerCarrier) Get(key string) string {
	v, _ := h[key].(string)
	return v
}

func (h headerCarrier) Set(key, value string) { h[key] = value }

func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// startPublishSpan starts the producer span of one Publish and writes its context into
// headers, replacing a traceparent given with WithHeaders when ctx holds a span.
func startPublishSpan(ctx context.Context, exchange, routingKey, eventID string, headers amqp.Table) (context.Context, trace.Span) {
	ctx, span := tracer().Start(ctx, "publish "+routingKey,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemRabbitMQ,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("publish"),
			semconv.MessagingDestinationName(exchange),
			semconv.MessagingRabbitMQDestinationRoutingKey(routingKey),
			semconv.MessagingMessageID(eventID),
		))
	telemetry.Propagator().Inject(ctx, headerCarrier(headers))
	return ctx, span
}

// startProcessSpan starts the consumer span of one delivery, a child of the trace
// context in its headers. key is the routing key's label (unroutedLabel for keys without
// a route, so made-up keys do not make up span names).
func startProcessSpan(ctx context.Context, queue, key string, d Delivery) (context.Context, trace.Span) {
	ctx = telemetry.Propagator().Extract(ctx, headerCarrier(d.Headers))
	return tracer().Start(ctx, "process "+key,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemRabbitMQ,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(queue),
			semconv.MessagingRabbitMQDestinationRoutingKey(d.RoutingKey),
			semconv.MessagingMessageID(d.EventID),
			attribute.Int("ates.event.attempt", d.Attempt),
		))
}

// endSpan ends span, marking it failed with err.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
