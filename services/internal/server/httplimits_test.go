package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/server"
)

const someID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

// call sends one REST request and returns the status, the headers and the decoded
// gateway error (or answer) body.
func call(t *testing.T, method, url string, header http.Header, body io.Reader) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]any{}
	require.NoError(t, json.Unmarshal(raw, &out), "a JSON body in the gateway's shape: %s", raw)
	return resp.StatusCode, resp.Header, out
}

// rawHTTP writes req on a new connection and returns what the server answers within
// wait, or "" if it closed the connection without a word.
func rawHTTP(t *testing.T, addr, req string, wait time.Duration) (string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte(req))
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(wait)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return resp.Status, nil
}

// TestBodyCap: a REST body over MaxRequestBytes is refused with 413 whether or not it
// says its length, and a gRPC message over it with ResourceExhausted.
func TestBodyCap(t *testing.T) {
	t.Parallel()
	srv, conn, _, _ := startWith(t, server.Options{
		Public:    []string{tasksv1.TaskService_CreateTask_FullMethodName},
		Transport: config.Transport{MaxRequestBytes: 2048},
	})
	url := "http://" + srv.HTTPAddr() + "/v1/task"
	body := func(n int) string { return `{"description":"` + strings.Repeat("d", n) + `"}` }

	code, _, out := call(t, "POST", url, nil, strings.NewReader(body(1900)))
	require.Equal(t, http.StatusOK, code, "a body under the cap passes: %v", out)

	code, _, out = call(t, "POST", url, nil, strings.NewReader(body(3000)))
	require.Equal(t, http.StatusRequestEntityTooLarge, code, "%v", out)
	require.EqualValues(t, codes.ResourceExhausted, out["code"])
	require.Contains(t, out["message"], "2048 bytes")

	// No Content-Length: the body is cut off while it is read.
	code, _, out = call(t, "POST", url, nil, io.MultiReader(strings.NewReader(body(3000))))
	require.Equal(t, http.StatusRequestEntityTooLarge, code, "%v", out)

	_, err := tasksv1.NewTaskServiceClient(conn).CreateTask(context.Background(),
		&tasksv1.CreateTaskRequest{Description: strings.Repeat("d", 3000)})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
}

// TestTokenBeforeBody: a REST call to a method that needs a token and comes without one
// is answered 401 before its body is read; public methods need none.
func TestTokenBeforeBody(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := startWith(t, server.Options{Public: []string{tasksv1.TaskService_CreateTask_FullMethodName}})
	base := "http://" + srv.HTTPAddr()

	t.Run("the answer comes though the announced body never does", func(t *testing.T) {
		got, err := rawHTTP(t, srv.HTTPAddr(),
			"PUT /v1/task/"+someID+"/complete HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{", 2*time.Second)
		require.NoError(t, err)
		require.Equal(t, "401 Unauthorized", got)
	})

	t.Run("the error is in the gateway's shape", func(t *testing.T) {
		code, _, out := call(t, "GET", base+"/v1/tasks", nil, nil)
		require.Equal(t, http.StatusUnauthorized, code)
		require.EqualValues(t, codes.Unauthenticated, out["code"])
		require.Contains(t, out["message"], "Bearer")
	})

	t.Run("a malformed authorization counts as none", func(t *testing.T) {
		code, _, _ := call(t, "GET", base+"/v1/tasks", http.Header{"Authorization": {"Basic abc"}}, nil)
		require.Equal(t, http.StatusUnauthorized, code)
	})

	t.Run("a bearer token goes on to the interceptors", func(t *testing.T) {
		code, _, out := call(t, "GET", base+"/v1/tasks", http.Header{"Authorization": {"Bearer t"}}, nil)
		require.Equal(t, http.StatusOK, code, "%v", out)
	})

	t.Run("a public method needs no token", func(t *testing.T) {
		code, _, out := call(t, "POST", base+"/v1/task", nil, strings.NewReader(`{"description":"d"}`))
		require.Equal(t, http.StatusOK, code, "%v", out)
	})
}

// TestWrongMethod: a known path called with the wrong method answers 405 with Allow.
func TestWrongMethod(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := start(t, nil)
	base := "http://" + srv.HTTPAddr()
	for _, tc := range []struct {
		name, method, path, allow string
	}{
		{"GET on a POST route", "GET", "/v1/task", "POST"},
		{"DELETE on a GET route with a variable", "DELETE", "/v1/task/" + someID, "GET"},
		{"GET on a PUT route", "GET", "/v1/task/" + someID + "/complete", "PUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, header, out := call(t, tc.method, base+tc.path, http.Header{"Authorization": {"Bearer t"}}, nil)
			require.Equal(t, http.StatusMethodNotAllowed, code, "%v", out)
			require.Equal(t, tc.allow, header.Get("Allow"))
			require.Contains(t, out["message"], tc.allow)
		})
	}
	code, _, _ := call(t, "GET", base+"/v1/nowhere", nil, nil)
	require.Equal(t, http.StatusNotFound, code, "an unknown path is still 404")
}

// TestStrictJSON: a body is one JSON object with known fields and nothing after it.
func TestStrictJSON(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := start(t, nil)
	url := "http://" + srv.HTTPAddr() + "/v1/task"
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"one object passes", `{"description":"d"}`, http.StatusOK},
		{"trailing whitespace passes", "{\"description\":\"d\"}\n \t", http.StatusOK},
		{"a second object is refused", `{"description":"d"}{"description":"e"}`, http.StatusBadRequest},
		{"trailing garbage is refused", `{"description":"d"} x`, http.StatusBadRequest},
		{"a trailing bracket is refused", `{"description":"d"}}`, http.StatusBadRequest},
		{"an unknown field is refused", `{"description":"d","reward":5}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, out := call(t, "POST", url, nil, strings.NewReader(tc.body))
			require.Equal(t, tc.code, code, "%v", out)
			if tc.code == http.StatusBadRequest {
				require.EqualValues(t, codes.InvalidArgument, out["code"])
			}
		})
	}
}

// TestHTTPTimeouts: a client that sends its request too slowly, or holds an idle
// keep-alive connection, is disconnected.
func TestHTTPTimeouts(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := startWith(t, server.Options{Transport: config.Transport{
		ReadTimeout: 300 * time.Millisecond,
		IdleTimeout: 300 * time.Millisecond,
	}})

	t.Run("a request whose headers never end is dropped", func(t *testing.T) {
		_, err := rawHTTP(t, srv.HTTPAddr(), "GET /healthz HTTP/1.1\r\nHost: x\r\n", 3*time.Second)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "closed by the server, not by our deadline")
	})

	t.Run("a body that never comes is dropped", func(t *testing.T) {
		got, err := rawHTTP(t, srv.HTTPAddr(),
			"POST /v1/task HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: 100\r\n\r\n{", 3*time.Second)
		if err == nil {
			require.NotEqual(t, "200 OK", got)
			return
		}
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed by the server, not by our deadline: %v", err)
	})

	t.Run("an idle keep-alive connection is closed", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.HTTPAddr())
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
		require.NoError(t, err)
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
		_, err = r.ReadByte()
		require.ErrorIs(t, err, io.EOF, "closed by the server, not by our deadline")
	})
}

// TestGRPCIdleConnectionClosed: a gRPC connection that carries nothing for IdleTimeout is
// closed by the server (the client reconnects when it next calls).
func TestGRPCIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	_, conn, _, _ := startWith(t, server.Options{
		Public:    []string{tasksv1.TaskService_ListTasks_FullMethodName},
		Transport: config.Transport{IdleTimeout: 300 * time.Millisecond},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := tasksv1.NewTaskServiceClient(conn).ListTasks(ctx, &tasksv1.ListTasksRequest{})
	require.NoError(t, err)
	require.Equal(t, connectivity.Ready, conn.GetState())
	require.True(t, conn.WaitForStateChange(ctx, connectivity.Ready), "the server closed the idle connection")
	_, err = tasksv1.NewTaskServiceClient(conn).ListTasks(ctx, &tasksv1.ListTasksRequest{})
	require.NoError(t, err, "and the next call reconnects")
}

// TestGRPCSlowRequest: a gRPC call whose request message never arrives is ended after
// ATES_HTTP_READ_TIMEOUT, as a slow REST request is. Before, only the handshake was
// bounded: a stream that announced a message and sent nothing held its goroutine and
// its connection for ever (the idle timeout does not count a connection with a call in
// progress as idle), so streams opened without end were a memory exhaustion attack
// that needs no token.
func TestGRPCSlowRequest(t *testing.T) {
	t.Parallel()
	srv, conn, _, _ := startWith(t, server.Options{
		Public:    []string{tasksv1.TaskService_ListTasks_FullMethodName},
		Transport: config.Transport{ReadTimeout: 300 * time.Millisecond},
	})
	fr, block := rawGRPC(t, srv.GRPCAddr())
	require.NoError(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true}))
	require.NoError(t, fr.WriteData(1, false, []byte{0, 0, 0, 0, 100}), "a message of 100 bytes is announced, and none is sent")

	start := time.Now()
	for ended := false; !ended; {
		f, err := fr.ReadFrame()
		require.NoError(t, err, "the call whose message never came was not ended")
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				require.NoError(t, fr.WriteSettingsAck())
			}
		case *http2.RSTStreamFrame:
			ended = f.StreamID == 1
		case *http2.HeadersFrame:
			ended = f.StreamID == 1 && f.StreamEnded()
		}
	}
	require.Less(t, time.Since(start), 3*time.Second)

	_, err := tasksv1.NewTaskServiceClient(conn).ListTasks(context.Background(), &tasksv1.ListTasksRequest{})
	require.NoError(t, err, "a call whose request arrives runs as before")
}

// rawGRPC opens an HTTP/2 connection to a gRPC server, with its deadline 5s ahead, and
// returns its framer and the header block of a ListTasks call.
func rawGRPC(t *testing.T, addr string) (*http2.Framer, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write([]byte(http2.ClientPreface))
	require.NoError(t, err)
	fr := http2.NewFramer(c, c)
	require.NoError(t, fr.WriteSettings())
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/" + tasksv1.TaskService_ServiceDesc.ServiceName + "/ListTasks"},
		{":authority", "ates"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		require.NoError(t, enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}))
	}
	return fr, block.Bytes()
}

// TestGRPCStreamsPerConnection: one connection holds at most server.MaxStreams calls at
// once; the next is refused at once. Before, the number was unbounded (gRPC's default),
// so one connection could open calls faster than the read timeout ends them, each
// holding a goroutine.
func TestGRPCStreamsPerConnection(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := startWith(t, server.Options{Public: []string{tasksv1.TaskService_ListTasks_FullMethodName}})
	fr, block := rawGRPC(t, srv.GRPCAddr())
	last := uint32(2*server.MaxStreams + 1) // client streams are odd: 1, 3, 5...
	for id := uint32(1); id <= last; id += 2 {
		require.NoError(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}))
	}
	advertised := false
	for {
		f, err := fr.ReadFrame()
		require.NoError(t, err, "the call past the limit was not refused")
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
				require.Equal(t, uint32(server.MaxStreams), v)
				advertised = true
			}
			if !f.IsAck() {
				require.NoError(t, fr.WriteSettingsAck())
			}
		case *http2.RSTStreamFrame:
			require.Equal(t, last, f.StreamID, "only the call past the limit is refused")
			require.Equal(t, http2.ErrCodeRefusedStream, f.ErrCode)
			require.True(t, advertised, "the server told the client its limit")
			return
		}
	}
}

// TestGRPCMetadataCap: a gRPC call's metadata is bounded (server.MaxMetadataBytes) as
// its message is. gRPC's default was 16 MiB a call, so the 64 KiB message cap bounded
// little: 16 MiB of headers were held for as long as the call lasted.
func TestGRPCMetadataCap(t *testing.T) {
	t.Parallel()
	srv, conn, _, _ := startWith(t, server.Options{Public: []string{tasksv1.TaskService_ListTasks_FullMethodName}})
	client := tasksv1.NewTaskServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.ListTasks(metadata.AppendToOutgoingContext(ctx, "x-small", strings.Repeat("a", 8<<10)), &tasksv1.ListTasksRequest{})
	require.NoError(t, err)
	_, err = client.ListTasks(metadata.AppendToOutgoingContext(ctx, "x-large", strings.Repeat("a", server.MaxMetadataBytes)), &tasksv1.ListTasksRequest{})
	require.Error(t, err, "metadata past the cap")
	_, err = client.ListTasks(ctx, &tasksv1.ListTasksRequest{})
	require.NoError(t, err, "and the connection still serves")

	req, err := http.NewRequest("GET", "http://"+srv.HTTPAddr()+"/v1/tasks", nil)
	require.NoError(t, err)
	req.Header.Set("X-Large", strings.Repeat("a", 2*server.MaxMetadataBytes))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode, "REST headers, which become metadata, have the same bound")
}
