// Package telemetry sets up OpenTelemetry tracing the same way for every aTES process,
// and gives the pieces the shared packages use: the propagator that carries the W3C trace
// context over HTTP, gRPC metadata and AMQP headers, and a log handler that stamps every
// record logged inside a span with its trace and span id.
//
// Tracing follows the standard OTEL_* environment variables: spans are exported over
// OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set (and OTEL_SDK_DISABLED is not true). Otherwise no span is recorded, but requests
// and events still get trace and span ids for their log lines, and the trace context of
// incoming calls and events travels on, so a caller's trace continues through services
// that do not export.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Propagator carries the W3C trace context and baggage. The shared packages use it
// whether or not Setup ran, so that trace context always passes through.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Enabled reports whether the environment asks for spans to be exported: an OTLP
// endpoint is set and the SDK is not disabled.
func Enabled(getenv func(string) string) bool {
	if sdkDisabled(getenv) {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// sdkDisabled reports whether OTEL_SDK_DISABLED asks for no tracing at all.
func sdkDisabled(getenv func(string) string) bool {
	return strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true")
}

// Protocol is the OTLP transport the environment names: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
// else OTEL_EXPORTER_OTLP_PROTOCOL, else "grpc". The specification's default is
// http/protobuf, but aTES already speaks gRPC, and the collector of compose.yaml's
// observability profile is addressed on its gRPC port (4317) with the endpoint alone.
func Protocol(getenv func(string) string) string {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(v)); p != "" {
			return p
		}
	}
	return "grpc"
}

// Setup installs the global propagator (always) and, when Enabled, a tracer provider
// that batches spans to the OTLP endpoint. service and version name the process in the
// spans' resource; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them. The
// returned function flushes and stops the exporter; call it once the servers stopped.
func Setup(ctx context.Context, service, version string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator())
	noop := func(context.Context) error { return nil }
	if !Enabled(os.Getenv) {
		if !sdkDisabled(os.Getenv) {
			// Nothing is recorded or exported, but every request and event still gets a
			// trace and span id (continuing the caller's trace, if any), so log lines can
			// be correlated without a tracing backend. OTEL_SDK_DISABLED=true turns that
			// off too.
			otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())))
		}
		return noop, nil
	}
	var exporter sdktrace.SpanExporter
	// Both exporters read the endpoint, headers, timeout, compression and TLS settings
	// from the OTEL_EXPORTER_OTLP_* variables themselves.
	switch p := Protocol(os.Getenv); p {
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	default:
		return noop, fmt.Errorf("OTLP protocol %q: aTES exports traces over grpc or http/protobuf", p)
	}
	if err != nil {
		return noop, fmt.Errorf("build OTLP trace exporter: %w", err)
	}
	attrs := resource.WithAttributes(semconv.ServiceName(service))
	if version != "" {
		attrs = resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version))
	}
	// Later options win: the OTEL_* variables override the built-in names.
	res, err := resource.New(ctx, attrs, resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return noop, fmt.Errorf("build trace resource: %w", err)
	}
	// The sampler follows OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default:
	// parent-based, always on).
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
