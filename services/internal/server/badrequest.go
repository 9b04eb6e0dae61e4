package server

import (
	"context"
	"errors"
	"fmt"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// InvalidField is the InvalidArgument status of a request whose field (a proto field
// path, e.g. "to" or "task.description") breaks a rule the protos cannot say, such as a
// date in the future or a reversed range. Its message reads "field: description", as
// protovalidate's refusals do, and it carries a google.rpc.BadRequest detail naming the
// field, so gRPC and REST clients find the field without parsing the message.
func InvalidField(field, description string) error {
	return invalid(fmt.Sprintf("%s: %s", field, description),
		&errdetails.BadRequest_FieldViolation{Field: field, Description: description})
}

// invalid is InvalidArgument with msg and a BadRequest detail listing violations.
func invalid(msg string, violations ...*errdetails.BadRequest_FieldViolation) error {
	st := status.New(codes.InvalidArgument, msg)
	withDetails, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: violations})
	if err != nil { // only a detail that cannot be marshalled fails, and BadRequest can
		return st.Err()
	}
	return withDetails.Err()
}

// validationStatus turns protovalidate's ValidationError into InvalidArgument with one
// BadRequest field violation per broken rule: the field path (empty for a rule on the
// whole message), the rule's message, and the rule id as the reason. Any other error
// means a rule that does not compile: Internal, as the middleware answered.
func validationStatus(err error) error {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return status.Error(codes.Internal, err.Error())
	}
	violations := make([]*errdetails.BadRequest_FieldViolation, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		violations = append(violations, &errdetails.BadRequest_FieldViolation{
			Field:       protovalidate.FieldPathString(v.Proto.GetField()),
			Description: v.Proto.GetMessage(),
			Reason:      v.Proto.GetRuleId(),
		})
	}
	return invalid(verr.Error(), violations...)
}

// validateRequest checks a unary call's request against its protovalidate rules and
// refuses a bad one with validationStatus. It replaces go-grpc-middleware's protovalidate
// interceptor, whose detail (buf.validate.Violations) only clients holding
// protovalidate's protos can read.
func validateRequest(v protovalidate.Validator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		msg, ok := req.(proto.Message)
		if !ok {
			return nil, status.Errorf(codes.Internal, "unsupported message type: %T", req)
		}
		if err := v.Validate(msg); err != nil {
			return nil, validationStatus(err)
		}
		return handler(ctx, req)
	}
}
