package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// gatewayLimits are the REST gateway's bounds: a request without a token to a method
// that needs one is refused before its body is read, a body is read whole up to
// MaxRequestBytes (and refused with 413 past it), a wrong HTTP method answers 405, and
// the path-length fallback, which would read a form body while routing, is off.
func (s *Server) gatewayLimits() []runtime.ServeMuxOption {
	return []runtime.ServeMuxOption{
		runtime.WithMiddlewares(s.requireToken, s.readBody),
		runtime.WithRoutingErrorHandler(s.routingError),
		runtime.WithDisablePathLengthFallback(),
	}
}

// requireToken refuses, with 401 and before the body is read, a REST call to a method
// outside Options.Public that carries no bearer token. The authentication interceptor
// still checks the token itself; this only keeps anonymous callers from costing a read.
func (s *Server) requireToken(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		rt, ok, _ := lookup(s.routes, r.Method, r.URL.Path)
		if (!ok || !s.public[rt.fullMethod]) && !hasBearer(r.Header) {
			s.refuse(w, r, http.StatusUnauthorized,
				status.Error(codes.Unauthenticated, `missing authorization: send "Authorization: Bearer <token>"`))
			return
		}
		next(w, r, params)
	}
}

func hasBearer(h http.Header) bool {
	values := h.Values("Authorization")
	if len(values) != 1 {
		return false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	return ok && strings.EqualFold(scheme, "bearer") && strings.TrimSpace(token) != ""
}

// readBody reads the body whole, refusing one longer than MaxRequestBytes with 413,
// before the gateway decodes it: the gateway would report a cut-off read as a 400.
func (s *Server) readBody(next runtime.HandlerFunc) runtime.HandlerFunc {
	limit := int64(s.opts.Transport.MaxRequestBytes)
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		tooLarge := status.Errorf(codes.ResourceExhausted, "the request body is larger than %d bytes", limit)
		if r.ContentLength > limit {
			s.refuse(w, r, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var maxErr *http.MaxBytesError
		switch {
		case errors.As(err, &maxErr):
			s.refuse(w, r, http.StatusRequestEntityTooLarge, tooLarge)
			return
		case err != nil:
			s.httpError(w, r, http.StatusBadRequest, status.Errorf(codes.InvalidArgument, "read the request body: %v", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next(w, r, params)
	}
}

// routingError answers 405 with an Allow header where the gateway would answer 501 to a
// known path called with the wrong method.
func (s *Server) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	if code != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
		return
	}
	_, _, allowed := lookup(s.routes, r.Method, r.URL.Path)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.httpError(w, r, code, status.Errorf(codes.Unimplemented, "%s is not allowed on %s; use %s",
		r.Method, r.URL.Path, strings.Join(allowed, " or ")))
}

// refuse answers a request whose body is not (all) read, and closes the connection
// after the answer instead of reading the rest of the body, as net/http would to keep
// the connection alive. "Connection: close" tells the client so: without it, a client
// would send its next request on a connection whose reads already timed out.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, err error) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	s.httpError(w, r, code, err)
}

// httpError writes err with the given HTTP status in the gateway's JSON error shape.
func (s *Server) httpError(w http.ResponseWriter, r *http.Request, code int, err error) {
	_, m := runtime.MarshalerForRequest(s.gwMux, r)
	runtime.HTTPError(r.Context(), s.gwMux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: code, Err: err})
}

// strictJSON is the gateway's JSON marshaler, decoding a body only if it is one JSON
// value: a second object or trailing garbage is refused, not silently ignored.
type strictJSON struct {
	*runtime.JSONPb
}

var errTrailingData = errors.New("the body must be one JSON value with nothing after it")

// NewDecoder decodes exactly one JSON value from r; an empty body stays io.EOF, which
// the gateway takes as an empty request.
func (j strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		dec := json.NewDecoder(r)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return errTrailingData
		}
		return j.Unmarshal(raw, v)
	})
}
