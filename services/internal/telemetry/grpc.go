package telemetry

import (
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc/stats"
)

// TracedMethod leaves the gRPC health and reflection services out of tracing: readiness
// probes would be most of the spans and tell nothing.
func TracedMethod(info *stats.RPCTagInfo) bool {
	return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.") &&
		!strings.HasPrefix(info.FullMethodName, "/grpc.reflection.")
}

// GRPCClientHandler is the stats handler of aTES's gRPC clients (the REST gateway's
// connection to its own gRPC side, every service's connection to auth): a client span
// per call, whose trace context goes to the server in the call's metadata.
func GRPCClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(otelgrpc.WithPropagators(Propagator()), otelgrpc.WithFilter(TracedMethod))
}
