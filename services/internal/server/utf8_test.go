package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/server"
	"github.com/ates/ates/services/internal/server/servertest"
)

// TestRESTRefusesTextThatIsNotUTF8: a path or query value that is not UTF-8 once
// unescaped could never reach the gRPC server (protobuf strings are UTF-8); it is the
// client's error, 400, not the server's (found by FuzzCompleteTaskJSON).
func TestRESTRefusesTextThatIsNotUTF8(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := start(t, nil)
	for _, tc := range []struct{ name, method, path, body string }{
		{"a path parameter", "PUT", "/v1/task/%D2/complete", "{}"},
		{"a query parameter", "GET", "/v1/tasks?page_token=%FF", ""},
		{"a query parameter's name", "GET", "/v1/tasks?%FF=1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := servertest.REST(t, srv.HTTPAddr(), tc.method, tc.path, "", tc.body)
			require.Equal(t, http.StatusBadRequest, code, "%v", out)
			require.True(t, strings.Contains(out["message"].(string), "UTF-8"), "%v", out)
		})
	}
}

// TestRESTRefusesAnIdempotencyKeyThatIsNotASCII: gRPC drops metadata that is not visible
// ASCII without a word, so such a key would leave the write without the idempotency its
// client asked for; it is refused instead.
func TestRESTRefusesAnIdempotencyKeyThatIsNotASCII(t *testing.T) {
	t.Parallel()
	srv, _, _, _ := start(t, nil)
	for _, key := range []string{"é", "\xff", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\u00a0"} {
		h := http.Header{server.IdempotencyKeyHeader: {key}}
		code, out := servertest.RESTWithHeader(t, srv.HTTPAddr(), "POST", "/v1/task", "", h, `{"description":"d"}`)
		require.Equal(t, http.StatusBadRequest, code, "%q: %v", key, out)
		require.Contains(t, out["message"], "request_id", "%q", key)
	}
}
