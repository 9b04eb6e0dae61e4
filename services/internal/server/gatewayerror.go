package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ates/ates/services/internal/ratelimit"
)

// gatewayError is the gateway's error handler: grpc-gateway's own, with three changes.
//   - The status is written without unpopulated fields: the gateway's marshaler writes
//     every field of a response, which in an error's details would pad each
//     google.rpc.BadRequest field violation with "reason": "" and
//     "localized_message": null.
//   - FailedPrecondition answers 409 Conflict instead of grpc-gateway's 400 (see
//     httpStatus).
//   - A status carrying a RetryInfo, as the abuse limits' refusals do, adds a Retry-After
//     header.
func gatewayError(ctx context.Context, mux *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if d, ok := ratelimit.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(d)))
	}
	var custom *runtime.HTTPStatusError
	if code := status.Code(err); !errors.As(err, &custom) && httpStatus(code) != runtime.HTTPStatusFromCode(code) {
		err = &runtime.HTTPStatusError{HTTPStatus: httpStatus(code), Err: err}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, errorMarshaler, w, r, err)
}

// errorMarshaler writes error bodies: {"code", "message", "details"}, field names as in
// the protos, only the fields that are set.
var errorMarshaler = &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{UseProtoNames: true}}

// httpStatus is the HTTP status a REST call answers for a gRPC code: grpc-gateway's
// mapping, except FailedPrecondition. grpc-gateway answers it with 400, which tells a
// client to fix its request; aTES refuses with it requests that are well formed but lost
// a race or no longer fit the state (completing a task someone else completed first,
// assigning a task to its holder), which is what 409 Conflict says. README.md's
// "Errors" table lists every code.
func httpStatus(code codes.Code) int {
	if code == codes.FailedPrecondition {
		return http.StatusConflict
	}
	return runtime.HTTPStatusFromCode(code)
}
