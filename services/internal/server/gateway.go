package server

import (
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
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
