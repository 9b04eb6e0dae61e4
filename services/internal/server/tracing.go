package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"

	"github.com/ates/ates/services/internal/telemetry"
)

// Tracing: every REST request gets a server span (otelhttp), the REST gateway's call to
// the gRPC side a client span, and every gRPC call a server span (otelgrpc), each a child
// of the trace context the caller sent (W3C traceparent). Probes, metrics scrapes and
// health checks are left out: they would be most of the spans and tell nothing.

// untracedPaths are the HTTP paths served without a span.
var untracedPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

func httpTracing(h http.Handler) http.Handler {
	traced := otelhttp.NewHandler(h, "http",
		otelhttp.WithPropagators(telemetry.Propagator()),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untracedPaths[r.URL.Path] }),
		otelhttp.WithSpanNameFormatter(spanName),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A place for nameSpanByRoute to leave the route the gateway matched.
		traced.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeKey{}, new(string))))
	})
}

type routeKey struct{}

// spanName names a REST request's span after the route it matched, e.g. "POST
// /v1/task/{id}/complete", as the semantic conventions ask (the path itself holds ids,
// which would give every task its own span name); other requests after their net/http
// pattern, else the method. otelhttp asks again once the request was served.
func spanName(_ string, r *http.Request) string {
	if route, _ := r.Context().Value(routeKey{}).(*string); route != nil && *route != "" {
		return r.Method + " " + *route
	}
	if strings.Contains(r.Pattern, " ") { // "GET /openapi.json"
		return r.Pattern
	}
	return r.Method
}

// nameSpanByRoute records the gateway's route for spanName and on the span.
func nameSpanByRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if pattern, ok := runtime.HTTPPattern(r.Context()); ok {
			route := pattern.String()
			if holder, _ := r.Context().Value(routeKey{}).(*string); holder != nil {
				*holder = route
			}
			trace.SpanFromContext(r.Context()).SetAttributes(semconv.HTTPRoute(route))
		}
		next(w, r, params)
	}
}

func grpcServerTracing() stats.Handler {
	return otelgrpc.NewServerHandler(otelgrpc.WithPropagators(telemetry.Propagator()), otelgrpc.WithFilter(telemetry.TracedMethod))
}
