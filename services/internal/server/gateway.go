package server

import (
	"net/http"
	"net/url"
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

// utf8Only refuses, as InvalidArgument, a request whose path or query is not UTF-8 once
// unescaped (PUT /v1/task/%D2/complete): the gateway would copy that text into a
// protobuf string, which gRPC cannot send, and answer 500.
func utf8Only(gw *runtime.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query, err := url.QueryUnescape(r.URL.RawQuery)
		if err != nil || !utf8.ValidString(r.URL.Path) || !utf8.ValidString(query) {
			err := status.Error(codes.InvalidArgument, "the path and query must be UTF-8, percent-encoded")
			runtime.HTTPError(r.Context(), gw, GatewayMarshaler(), w, r, err)
			return
		}
		gw.ServeHTTP(w, r)
	})
}
