package server

import (
	"context"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/ates/ates/services/internal/ratelimit"
)

// gatewayError is the gateway's error handler: grpc-gateway's own (which maps
// ResourceExhausted to 429), plus a Retry-After header when the status carries a
// RetryInfo, as the abuse limits' refusals do.
func gatewayError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if d, ok := ratelimit.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(d)))
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}
