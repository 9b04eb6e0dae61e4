package server

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// IdempotencyKeyHeader is the HTTP header a REST client may send instead of a write
// call's request_id field; the gateway forwards it as gRPC metadata under the same name,
// lower-cased, so gRPC clients may send it too.
const IdempotencyKeyHeader = "Idempotency-Key"

// idempotencyKeyMD is IdempotencyKeyHeader as a gRPC metadata key.
const idempotencyKeyMD = "idempotency-key"

// requestIDField is the field of every write request that makes retries safe.
const requestIDField = "request_id"

// requestIDFromHeader fills a request's request_id from the Idempotency-Key header, in
// one place for every API, before validation checks it: handlers read only the field.
// The header and the field may both be given only if they agree. Requests without a
// request_id field ignore the header.
func requestIDFromHeader(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	keys := metadata.ValueFromIncomingContext(ctx, idempotencyKeyMD)
	msg, ok := req.(proto.Message)
	if len(keys) == 0 || !ok {
		return handler(ctx, req)
	}
	m := msg.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(requestIDField)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
		return handler(ctx, req)
	}
	if len(keys) > 1 {
		return nil, InvalidField(requestIDField, fmt.Sprintf("send one %s header, not %d", IdempotencyKeyHeader, len(keys)))
	}
	switch body := m.Get(fd).String(); {
	case body == "":
		m.Set(fd, protoreflect.ValueOfString(keys[0]))
	case !strings.EqualFold(body, keys[0]):
		return nil, InvalidField(requestIDField, fmt.Sprintf("%q differs from the %s header %q; send one of them, or the same id in both",
			body, IdempotencyKeyHeader, keys[0]))
	}
	return handler(ctx, req)
}
