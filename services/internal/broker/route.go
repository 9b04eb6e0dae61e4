package broker

import (
	"context"
	"fmt"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// Event is one decoded, validated event, as a typed handler receives it.
type Event[T proto.Message] struct {
	// ID is the event id (the AMQP message_id); consumers dedupe on it.
	ID uuid.UUID
	// Msg is the payload.
	Msg T
	// Delivery is the raw delivery: headers, attempt, routing key.
	Delivery Delivery
}

// Route binds a routing key to the typed handler of its event; pass routes to
// [ConsumerConfig]. Adding an event type to a consumer is one handler function and one
// On in its list of routes.
type Route struct {
	key    string
	decode func(d Delivery, id uuid.UUID, v protovalidate.Validator) (apply func(context.Context) error, err error)
}

// On routes the events published under key to handle. The consumer decodes each one into
// a T (its AMQP type must be T's full name), validates it against the protovalidate
// rules of T and calls handle under the consumer's per-event timeout. A message that does
// not decode or validate, or whose id is not a UUID, goes to the dead-letter queue
// without reaching handle.
func On[T proto.Message](key string, handle func(ctx context.Context, ev Event[T]) error) Route {
	var zero T
	mt := zero.ProtoReflect().Type()
	return Route{key: key, decode: func(d Delivery, id uuid.UUID, v protovalidate.Validator) (func(context.Context) error, error) {
		msg, ok := mt.New().Interface().(T)
		if !ok {
			return nil, fmt.Errorf("route %s: cannot make a %s", key, mt.Descriptor().FullName())
		}
		if err := d.Unmarshal(msg); err != nil {
			return nil, fmt.Errorf("decode %s: %w", key, err)
		}
		if err := v.Validate(msg); err != nil {
			return nil, fmt.Errorf("invalid %s: %w", key, err)
		}
		ev := Event[T]{ID: id, Msg: msg, Delivery: d}
		return func(ctx context.Context) error { return handle(ctx, ev) }, nil
	}}
}
