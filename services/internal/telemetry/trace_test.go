package telemetry_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/server/servertest"
	"github.com/ates/ates/services/internal/telemetry"
	"github.com/ates/ates/services/tasks/taskstest"
)

// TestOneCreateIsOneTrace creates a task over REST and checks that the request, the
// event it publishes and taskhandler's application of it are one connected trace, and
// that the request's log line names it. The spans go to an in-memory recorder, or
// through Setup's OTLP exporter to an in-process receiver.
func TestOneCreateIsOneTrace(t *testing.T) {
	t.Run("in memory", func(t *testing.T) {
		resetGlobalProvider(t)
		rec := tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
		createAndCheckTrace(t, func() []span { return recorded(rec) })
	})
	t.Run("over OTLP", func(t *testing.T) {
		resetGlobalProvider(t)
		c, endpoint := startGRPCCollector(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
		t.Setenv("OTEL_SERVICE_NAME", "")
		t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // milliseconds between batches
		shutdown, err := telemetry.Setup(t.Context(), "ates", "")
		require.NoError(t, err)
		t.Cleanup(func() { _ = shutdown(t.Context()) })
		spans := createAndCheckTrace(t, c.Spans)
		require.Equal(t, "ates", spans[0].Service)
	})
}

// createAndCheckTrace runs the task lifecycle, creates one task over REST, waits until
// the trace holds taskhandler's SQL, and checks the trace; it returns the trace's spans.
func createAndCheckTrace(t *testing.T, spans func() []span) []*span {
	t.Helper()
	var logs syncBuffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	env := taskstest.Start(t, taskstest.Options{Log: log})
	env.NewUser(t, authv1.Role_ROLE_WORKER)
	author := env.NewUser(t, authv1.Role_ROLE_ACCOUNTANT)

	for _, probe := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + env.TasksHTTP + probe)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	code, body := servertest.REST(t, env.TasksHTTP, http.MethodPost, "/v1/task", author.Token, `{"description":"traced","wait":true}`)
	require.Equal(t, http.StatusOK, code, body)

	var tr trace_
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range spans() {
				t.Logf("span %s %q trace %s id %s parent %s scope %s", s.Kind, s.Name, s.TraceID, s.SpanID, s.ParentID, s.Scope)
			}
		}
	})
	waitFor(t, "the create's trace reaches taskhandler's SQL", func() bool {
		tr = traceOf(spans(), "POST /v1/task")
		return tr.find(trace.SpanKindConsumer, "process ") != nil && len(tr.sqlUnder(tr.find(trace.SpanKindConsumer, "process "))) > 0
	})
	root := tr.root
	require.Empty(t, root.ParentID, "the REST request starts the trace")
	require.Equal(t, trace.SpanKindServer, root.Kind)
	for _, s := range tr.spans {
		if s != root {
			require.Contains(t, tr.byID, s.ParentID, "span %q has its parent in the trace", s.Name)
		}
	}

	gateway := tr.find(trace.SpanKindClient, "tasks.v1.TaskService/CreateTask")
	rpc := tr.find(trace.SpanKindServer, "tasks.v1.TaskService/CreateTask")
	authCall := tr.find(trace.SpanKindClient, "auth.v1.AuthService/Authenticate")
	authServer := tr.find(trace.SpanKindServer, "auth.v1.AuthService/Authenticate")
	publish := tr.find(trace.SpanKindProducer, "publish ")
	consume := tr.find(trace.SpanKindConsumer, "process ")
	for name, s := range map[string]*span{"gateway call": gateway, "gRPC server": rpc, "auth call": authCall, "auth server": authServer, "publish": publish, "consume": consume} {
		require.NotNil(t, s, "the trace has the %s span; it has %v", name, tr.names())
	}
	require.Equal(t, root.SpanID, gateway.ParentID, "the gateway calls gRPC inside the REST request")
	require.Equal(t, gateway.SpanID, rpc.ParentID, "the gRPC server continues the gateway's call")
	require.True(t, tr.under(authCall, rpc), "the auth call is made inside the gRPC call")
	require.Equal(t, authCall.SpanID, authServer.ParentID, "auth continues the call")
	require.True(t, tr.under(publish, rpc), "the event is published inside the gRPC call")
	require.Equal(t, publish.SpanID, consume.ParentID, "taskhandler continues the publish")
	require.NotEmpty(t, tr.sqlUnder(rpc), "the tasks API's SQL is in the trace")
	for _, s := range spans() {
		if s.Scope == "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp" {
			require.Equal(t, "POST /v1/task", s.Name, "probes and scrapes are not traced")
		}
	}

	// The request's log line and taskhandler's lines for the event carry the ids.
	var requestLogged bool
	for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		if rec["msg"] == "finished call" && rec["grpc.method"] == "CreateTask" {
			requestLogged = true
			require.Equal(t, root.TraceID, rec[telemetry.LogTraceID], "%s", line)
			require.Equal(t, rpc.SpanID, rec[telemetry.LogSpanID], "%s", line)
		}
	}
	require.True(t, requestLogged, "the request is logged:\n%s", logs.Bytes())
	return tr.spans
}

// trace_ is the spans of one trace.
type trace_ struct {
	root  *span
	spans []*span
	byID  map[string]*span
}

// traceOf collects the trace of the first span named rootName.
func traceOf(all []span, rootName string) trace_ {
	tr := trace_{byID: map[string]*span{}}
	for i := range all {
		if all[i].Name == rootName {
			tr.root = &all[i]
			break
		}
	}
	if tr.root == nil {
		return tr
	}
	for i := range all {
		if all[i].TraceID == tr.root.TraceID {
			tr.spans = append(tr.spans, &all[i])
			tr.byID[all[i].SpanID] = &all[i]
		}
	}
	return tr
}

// find returns the first span of kind whose name starts with prefix.
func (tr trace_) find(kind trace.SpanKind, prefix string) *span {
	for _, s := range tr.spans {
		if s.Kind == kind && strings.HasPrefix(s.Name, prefix) {
			return s
		}
	}
	return nil
}

// under reports whether s descends from ancestor.
func (tr trace_) under(s, ancestor *span) bool {
	for p := tr.byID[s.ParentID]; p != nil; p = tr.byID[p.ParentID] {
		if p == ancestor {
			return true
		}
	}
	return false
}

// sqlUnder returns the SQL spans below ancestor.
func (tr trace_) sqlUnder(ancestor *span) []*span {
	if ancestor == nil {
		return nil
	}
	var out []*span
	for _, s := range tr.spans {
		if s.Scope == "github.com/exaring/otelpgx" && s.Kind == trace.SpanKindClient && tr.under(s, ancestor) {
			out = append(out, s)
		}
	}
	return out
}

func (tr trace_) names() []string {
	var out []string
	for _, s := range tr.spans {
		out = append(out, s.Kind.String()+" "+s.Name)
	}
	return out
}

// recorded converts the recorder's ended spans.
func recorded(rec *tracetest.SpanRecorder) []span {
	var out []span
	for _, s := range rec.Ended() {
		parent := ""
		if s.Parent().IsValid() {
			parent = s.Parent().SpanID().String()
		}
		out = append(out, span{
			Name: s.Name(), Kind: s.SpanKind(), Scope: s.InstrumentationScope().Name,
			TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(), ParentID: parent,
		})
	}
	return out
}

// syncBuffer is a bytes.Buffer the services may log to concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}
