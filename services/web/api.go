package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// maxAnswerBytes bounds an API answer read into memory.
const maxAnswerBytes = 8 << 20

// apiError is an API's refusal: the HTTP status it answered with and the google.rpc.Status
// of its body.
type apiError struct {
	httpStatus int
	code       codes.Code
	message    string
	// fields are the BadRequest field violations of the details, "field: why".
	fields []string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.httpStatus, e.code, e.message)
}

// unauthenticated says whether err is the API refusing the token (missing, expired or
// revoked).
func unauthenticated(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && (ae.httpStatus == http.StatusUnauthorized || ae.code == codes.Unauthenticated)
}

// notFound says whether err is the API's NotFound.
func notFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.code == codes.NotFound
}

// apiClient calls the public REST APIs (the grpc-gateway side of each service) as the
// user whose token it is given: the dashboard has no other way in.
type apiClient struct {
	http *http.Client
}

// call sends in (nil for none) as JSON to base+path with query q and decodes the answer
// into out. r is the browser's request: its context bounds the call, and its client
// address goes on in X-Forwarded-For (after any the browser's proxies wrote), so that
// auth can throttle failed logins per browser when this server is one of its
// ATES_TRUSTED_PROXIES.
func (c *apiClient) call(r *http.Request, token, method, base, path string, q url.Values, in, out proto.Message) error {
	ctx := r.Context()
	target := strings.TrimRight(base, "/") + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := protojson.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %T: %w", in, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body) //nolint:gosec // G704: target is a configured API base URL (ATES_WEB_*_URL) plus a fixed path
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if fwd := forwardedFor(r); fwd != "" {
		req.Header.Set("X-Forwarded-For", fwd)
	}
	resp, err := c.http.Do(req) //nolint:gosec // G704: as above, the configured API's own URL
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(resp.StatusCode, b)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// decodeError reads a refusal's google.rpc.Status body; a body that is not one (a proxy's
// page) keeps the HTTP status with its text as the message.
func decodeError(httpStatus int, body []byte) *apiError {
	e := &apiError{httpStatus: httpStatus, code: codes.Unknown}
	var st statuspb.Status
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &st); err == nil {
		e.code, e.message = grpcCode(int64(st.GetCode())), st.GetMessage()
		for _, d := range st.GetDetails() {
			var br errdetails.BadRequest
			if d.UnmarshalTo(&br) == nil {
				for _, v := range br.GetFieldViolations() {
					e.fields = append(e.fields, v.GetField()+": "+v.GetDescription())
				}
			}
		}
	} else {
		// Details of a type this binary does not know fail protojson; the code and
		// message still read as plain JSON.
		var plain struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &plain) == nil && plain.Message != "" {
			e.code, e.message = grpcCode(int64(plain.Code)), plain.Message
		}
	}
	if e.message == "" {
		e.message = http.StatusText(httpStatus)
	}
	return e
}

// forwardedFor is the X-Forwarded-For to send on: the browser request's own, with the
// address this server got it from appended, as a proxy does.
func forwardedFor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return strings.Join(r.Header.Values("X-Forwarded-For"), ", ")
	}
	prior := strings.Join(r.Header.Values("X-Forwarded-For"), ", ")
	if prior == "" {
		return host
	}
	return prior + ", " + host
}

// withoutCancel is for calls that must finish once started (logout): the browser
// going away must not leave the token valid.
func withoutCancel(r *http.Request) *http.Request {
	return r.WithContext(context.WithoutCancel(r.Context()))
}

// grpcCode is the gRPC code c names, or Unknown for a number that names none.
func grpcCode(c int64) codes.Code {
	if c < 0 || c > int64(codes.Unauthenticated) {
		return codes.Unknown
	}
	return codes.Code(c)
}
