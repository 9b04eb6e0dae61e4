// Package servertest runs a service's server for the length of a test.
package servertest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ates/ates/services/internal/server"
)

// Serve runs serve (a server's or a service's Serve) until the test ends, failing the
// test if it stops with an error.
func Serve(t testing.TB, serve func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
}

// Dial returns a client connection to srv's gRPC side, closed when the test ends.
func Dial(t testing.TB, srv *server.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", srv.GRPCAddr(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// DialFrom is Dial to the gRPC address addr over connections that leave from the
// loopback address local (e.g. "127.0.0.2"), so that the server sees a client address
// of its own; Linux routes all of 127.0.0.0/8 to the loopback interface.
func DialFrom(t testing.TB, addr, local string) *grpc.ClientConn {
	t.Helper()
	dialer := fromDialer(t, local)
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// ClientFrom is an HTTP client whose connections leave from the loopback address local.
func ClientFrom(t testing.TB, local string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: fromDialer(t, local).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func fromDialer(t testing.TB, local string) *net.Dialer {
	t.Helper()
	ip := net.ParseIP(local)
	if ip == nil {
		t.Fatalf("%q is not an IP address", local)
	}
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
}

// REST calls a service's HTTP side at addr (host:port) with method, path, an optional
// bearer token and an optional JSON body, and returns the status and the decoded JSON.
func REST(t testing.TB, addr, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	return RESTWithHeader(t, addr, method, path, token, nil, body)
}

// RESTWithHeader is REST with more request headers, e.g. Idempotency-Key.
func RESTWithHeader(t testing.TB, addr, method, path, token string, header http.Header, body string) (int, map[string]any) {
	t.Helper()
	code, _, out := RESTFrom(t, http.DefaultClient, addr, method, path, token, header, body)
	return code, out
}

// RESTFrom is RESTWithHeader through client (see ClientFrom), and returns the response
// headers too.
func RESTFrom(t testing.TB, client *http.Client, addr, method, path, token string, header http.Header, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d with a body that is not JSON: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// ViolatedFields lists the fields named by the google.rpc.BadRequest detail of the gRPC
// status err, in order; none if it carries no such detail.
func ViolatedFields(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// RESTViolatedFields is ViolatedFields for a REST error body as REST decodes it.
func RESTViolatedFields(body map[string]any) []string {
	var fields []string
	details, _ := body["details"].([]any)
	for _, d := range details {
		detail, _ := d.(map[string]any)
		if detail["@type"] != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		violations, _ := detail["field_violations"].([]any)
		for _, v := range violations {
			violation, _ := v.(map[string]any)
			field, _ := violation["field"].(string)
			fields = append(fields, field)
		}
	}
	return fields
}
