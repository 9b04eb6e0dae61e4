package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/server/servertest"
)

// readmeStatuses reads README.md's table of gRPC codes and HTTP statuses.
func readmeStatuses(t *testing.T) map[codes.Code]int {
	t.Helper()
	readme, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	byName := map[string]codes.Code{}
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		byName[c.String()] = c
	}
	table := map[codes.Code]int{}
	for _, m := range regexp.MustCompile(`(?m)^\| (\w+) \| (\d{3}) \|`).FindAllStringSubmatch(string(readme), -1) {
		c, ok := byName[m[1]]
		require.True(t, ok, "README row %q names no gRPC code", m[0])
		require.NotContains(t, table, c, "README lists %s twice", c)
		table[c], _ = strconv.Atoi(m[2])
	}
	require.Len(t, table, len(byName), "README's table lists every gRPC code but OK: %v", table)
	return table
}

// TestRESTStatusesFollowREADME answers every gRPC code in turn (GetTask answers the code
// its id gives, before validation would refuse the id) and checks that REST answers the HTTP status README.md gives.
func TestRESTStatusesFollowREADME(t *testing.T) {
	t.Parallel()
	answer := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if r, ok := req.(*tasksv1.GetTaskRequest); ok {
			if n, err := strconv.Atoi(r.GetId()); err == nil {
				return nil, status.Error(codes.Code(n), "asked for")
			}
		}
		return handler(ctx, req)
	}
	srv, _, _, _ := startWith(t, server.Options{
		Interceptors: []grpc.UnaryServerInterceptor{answer},
		Public:       []string{tasksv1.TaskService_GetTask_FullMethodName},
	})
	for code, want := range readmeStatuses(t) {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			got, out := servertest.REST(t, srv.HTTPAddr(), http.MethodGet, "/v1/task/"+strconv.Itoa(int(code)), "", "")
			require.Equal(t, want, got, "%v", out)
			require.EqualValues(t, code, out["code"])
		})
	}
}

// TestValidationFailuresCarryBadRequest checks that protovalidate's refusals and the
// hand-written ones name their fields in a google.rpc.BadRequest, on gRPC and REST, and
// that REST error bodies hold no padding.
func TestValidationFailuresCarryBadRequest(t *testing.T) {
	t.Parallel()
	srv, conn, _, _ := start(t, nil)
	client := tasksv1.NewTaskServiceClient(conn)
	const id, other = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"

	t.Run("a protovalidate rule, over gRPC", func(t *testing.T) {
		_, err := client.CreateTask(context.Background(), &tasksv1.CreateTaskRequest{Description: " ", RequestId: "retry-1"})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		require.ElementsMatch(t, []string{"description", "request_id"}, servertest.ViolatedFields(err))
	})
	t.Run("a hand-written check, over gRPC", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "idempotency-key", id)
		_, err := client.CreateTask(ctx, &tasksv1.CreateTaskRequest{Description: "d", RequestId: other})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		require.Equal(t, []string{"request_id"}, servertest.ViolatedFields(err))
	})

	post := func(t *testing.T, header http.Header, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+srv.HTTPAddr()+"/v1/task", strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(raw)
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		fields []string
	}{
		{"a protovalidate rule, over REST", nil, `{"description":" ","request_id":"retry-1"}`, []string{"description", "request_id"}},
		{"a hand-written check, over REST", http.Header{server.IdempotencyKeyHeader: {id}}, `{"description":"d","request_id":"` + other + `"}`, []string{"request_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, raw := post(t, tc.header, tc.body)
			require.Equal(t, http.StatusBadRequest, code, raw)
			require.NotContains(t, raw, "null", "no unset field is written")
			require.NotContains(t, raw, `""`, "no unset field is written")
			out := map[string]any{}
			require.NoError(t, server.GatewayMarshaler().Unmarshal([]byte(raw), &out))
			require.ElementsMatch(t, tc.fields, servertest.RESTViolatedFields(out), raw)
		})
	}
}
