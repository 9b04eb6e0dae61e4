package server

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// GatewayMarshaler is the REST gateway's JSON codec: field names as in the protos, every
// field written, unknown fields refused, a body of exactly one JSON value. Tests decode
// request bodies with it to see them as the server does.
func GatewayMarshaler() runtime.Marshaler {
	return strictJSON{&runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

// checkText refuses, as InvalidArgument, text the gateway would mishandle:
//   - a path or query that is not UTF-8 once unescaped (PUT /v1/task/%D2/complete): the
//     gateway would copy it into a protobuf string, which gRPC cannot send (a 500);
//   - an Idempotency-Key that is not visible ASCII: gRPC drops such metadata silently,
//     and the write would run without the idempotency its client asked for.
func checkText(gw *runtime.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		query, qerr := url.QueryUnescape(r.URL.RawQuery)
		switch {
		case qerr != nil || !utf8.ValidString(r.URL.Path) || !utf8.ValidString(query):
			err = status.Error(codes.InvalidArgument, "the path and query must be UTF-8, percent-encoded")
		case slices.ContainsFunc(r.Header.Values(IdempotencyKeyHeader), notVisibleASCII):
			err = InvalidField(requestIDField, fmt.Sprintf("the %s header must be a UUID", IdempotencyKeyHeader))
		}
		if err != nil {
			runtime.HTTPError(r.Context(), gw, GatewayMarshaler(), w, r, err)
			return
		}
		gw.ServeHTTP(w, r)
	})
}

// notVisibleASCII reports whether s holds anything but HTTP's visible characters, ! to ~.
func notVisibleASCII(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' })
}
