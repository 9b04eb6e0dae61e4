package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/ates/ates/services/internal/telemetry"
)

// The tests of this package set the global tracer provider and the OTEL_* variables, so
// none of them runs in parallel.

// TestSetupExportsOverOTLPWhenAnEndpointIsSet sends a span through each OTLP protocol to
// an in-process receiver, named as Setup was told unless OTEL_SERVICE_NAME says otherwise.
func TestSetupExportsOverOTLPWhenAnEndpointIsSet(t *testing.T) {
	for _, tc := range []struct {
		name, protocol, serviceEnv, wantService string
		start                                   func(*testing.T) (*collector, string)
	}{
		{name: "over gRPC, the default protocol", protocol: "", wantService: "ates-test", start: startGRPCCollector},
		{name: "over HTTP", protocol: "http/protobuf", wantService: "ates-test", start: startHTTPCollector},
		{name: "named by OTEL_SERVICE_NAME", protocol: "http/protobuf", serviceEnv: "renamed", wantService: "renamed", start: startHTTPCollector},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetGlobalProvider(t)
			c, endpoint := tc.start(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.protocol)
			t.Setenv("OTEL_SERVICE_NAME", tc.serviceEnv)

			shutdown, err := telemetry.Setup(t.Context(), "ates-test", "v1.2.3")
			require.NoError(t, err)
			_, s := otel.Tracer("test").Start(context.Background(), "exported")
			require.True(t, s.IsRecording())
			s.End()
			require.NoError(t, shutdown(t.Context()), "shutdown flushes the span")

			spans := c.Spans()
			require.Len(t, spans, 1)
			require.Equal(t, "exported", spans[0].Name)
			require.Equal(t, s.SpanContext().TraceID().String(), spans[0].TraceID)
			require.Equal(t, tc.wantService, spans[0].Service)
		})
	}
}

// TestSetupWithoutEndpointRecordsNothing: without an OTLP endpoint (or with the SDK
// disabled) no span is recorded or sent, but the trace context still propagates and,
// unless the SDK is disabled, every span still has ids for the log lines.
func TestSetupWithoutEndpointRecordsNothing(t *testing.T) {
	for _, tc := range []struct {
		name, endpoint, disabled string
		wantIDs                  bool
	}{
		{name: "no endpoint", wantIDs: true},
		{name: "SDK disabled", endpoint: "set below", disabled: "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetGlobalProvider(t)
			c, endpoint := startGRPCCollector(t)
			if tc.endpoint != "" {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			} else {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			}
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
			t.Setenv("OTEL_SDK_DISABLED", tc.disabled)

			shutdown, err := telemetry.Setup(t.Context(), "ates-test", "")
			require.NoError(t, err)
			_, s := otel.Tracer("test").Start(context.Background(), "not exported")
			require.False(t, s.IsRecording())
			require.Equal(t, tc.wantIDs, s.SpanContext().IsValid(), "the span has a trace and span id")
			s.End()
			require.NoError(t, shutdown(t.Context()))
			require.Empty(t, c.Spans())
			require.Contains(t, otel.GetTextMapPropagator().Fields(), "traceparent")
		})
	}
}

// TestSetupRefusesAnUnknownProtocol: a typo in the protocol is an error, not silence.
func TestSetupRefusesAnUnknownProtocol(t *testing.T) {
	resetGlobalProvider(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	_, err := telemetry.Setup(t.Context(), "ates-test", "")
	require.ErrorContains(t, err, "http/json")
}

// TestLogHandlerAddsTheSpansIDs: a record logged with a span in its context carries the
// span's ids, also through a logger made With attributes; one without carries none.
func TestLogHandlerAddsTheSpansIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "tasks")
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))

	log.InfoContext(ctx, "inside")
	log.InfoContext(context.Background(), "outside")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var inside, outside map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &inside))
	require.NoError(t, json.Unmarshal(lines[1], &outside))
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", inside[telemetry.LogTraceID])
	require.Equal(t, "00f067aa0ba902b7", inside[telemetry.LogSpanID])
	require.Equal(t, "tasks", inside["service"])
	require.NotContains(t, outside, telemetry.LogTraceID)
	require.NotContains(t, outside, telemetry.LogSpanID)
}

// waitFor polls cond until it holds or the time runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, 20*time.Millisecond, what)
}
