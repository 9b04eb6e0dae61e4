// Package server starts a service's gRPC server and its HTTP side (REST gateway,
// /healthz, /readyz, /metrics) the same way for every aTES service, and stops them in
// order when the context ends.
//
// The REST gateway dials the service's own gRPC endpoint, so REST calls pass the very
// same interceptors (logging, metrics, panic recovery, authentication, validation).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/ates/ates/services/internal/config"
	"github.com/ates/ates/services/internal/telemetry"
	"github.com/ates/ates/services/internal/tlsconf"
)

// GatewayFunc registers a service's REST handlers against its gRPC endpoint; the
// generated Register<Service>HandlerFromEndpoint functions have this type.
type GatewayFunc func(ctx context.Context, mux *runtime.ServeMux, endpoint string, opts []grpc.DialOption) error

// Check is one readiness probe: nil when the dependency answers.
type Check func(ctx context.Context) error

// Options describes one service's servers.
type Options struct {
	// Name names the service in errors; the Logger is expected to carry it already.
	Name string
	// GRPCAddr is the gRPC listen address; empty for services without an API.
	GRPCAddr string
	// HTTPAddr is the HTTP listen address.
	HTTPAddr string
	// Logger receives request and lifecycle logs.
	Logger *slog.Logger
	// Interceptors run after logging, metrics and panic recovery and before the
	// Idempotency-Key header fills request_id and validation runs; authentication goes
	// here.
	Interceptors []grpc.UnaryServerInterceptor
	// Register adds the service implementations to the gRPC server.
	Register func(*grpc.Server)
	// Public lists the full gRPC method names callable without a token; a REST call to
	// any other method without "Authorization: Bearer" is refused before its body is read.
	// The authentication interceptor (with authn.Optional) must agree.
	Public []string
	// Gateways register the REST side of the services.
	Gateways []GatewayFunc
	// Ready lists the checks behind /readyz.
	Ready map[string]Check
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration
	// Pprof serves net/http/pprof under /debug/pprof/ on the HTTP port.
	Pprof bool
	// Transport bounds requests and gives the TLS certificate; zero fields take
	// config.DefaultTransport's values.
	Transport config.Transport
	// TrustedProxies are the HTTP peers whose X-Forwarded-For is believed when the
	// client address of a REST call is read (see ClientAddr).
	TrustedProxies []netip.Prefix
	// Handlers are more handlers for the HTTP port, by http.ServeMux pattern (the web
	// dashboard is mounted at "/"); the built-in routes (/v1/, /openapi.json, /docs,
	// /healthz, /readyz, /metrics) are more specific and keep their meaning.
	Handlers map[string]http.Handler
}

// Server is a service's bound listeners, ready to serve.
type Server struct {
	opts     Options
	log      *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	http     *http.Server
	gwMux    *runtime.ServeMux
	registry *prometheus.Registry // the service's metrics, each labelled through metrics
	metrics  prometheus.Registerer
	shared   *SharedMetrics  // set by Serve under WithSharedMetrics
	tls      *tls.Config     // nil for plaintext
	routes   []route         // the REST bindings of the registered services
	public   map[string]bool // Options.Public
}

// New binds the listeners (so that the addresses are known before serving) and builds
// the servers.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	opts.Transport = withDefaults(opts.Transport)
	s := &Server{opts: opts, log: opts.Logger, registry: prometheus.NewRegistry(), public: map[string]bool{}}
	s.metrics = prometheus.WrapRegistererWith(prometheus.Labels{serviceLabel: opts.Name}, s.registry)
	for _, m := range opts.Public {
		s.public[m] = true
	}

	var err error
	if s.tls, err = tlsconf.Server(opts.Transport.TLSCertFile, opts.Transport.TLSKeyFile); err != nil {
		return nil, fmt.Errorf("%s: %w", opts.Name, err)
	}
	if opts.GRPCAddr != "" {
		if err = s.buildGRPC(); err != nil {
			return nil, err
		}
		if s.grpcLis, err = net.Listen("tcp", opts.GRPCAddr); err != nil {
			return nil, fmt.Errorf("%s: listen gRPC on %s: %w", opts.Name, opts.GRPCAddr, err)
		}
	}
	if s.httpLis, err = net.Listen("tcp", opts.HTTPAddr); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("%s: listen HTTP on %s: %w", opts.Name, opts.HTTPAddr, err)
	}
	s.http = &http.Server{
		Handler:      s.httpHandler(),
		ReadTimeout:  opts.Transport.ReadTimeout,
		WriteTimeout: opts.Transport.WriteTimeout,
		IdleTimeout:  opts.Transport.IdleTimeout,
		// REST headers become gRPC metadata: the same bound (HTTP answers 431).
		MaxHeaderBytes: MaxMetadataBytes,
		TLSConfig:      s.tls,
	}
	return s, nil
}

// withDefaults fills t's zero fields from config.DefaultTransport.
func withDefaults(t config.Transport) config.Transport {
	d := config.DefaultTransport()
	if t.MaxRequestBytes <= 0 {
		t.MaxRequestBytes = d.MaxRequestBytes
	}
	if t.ReadTimeout <= 0 {
		t.ReadTimeout = d.ReadTimeout
	}
	if t.WriteTimeout <= 0 {
		t.WriteTimeout = d.WriteTimeout
	}
	if t.IdleTimeout <= 0 {
		t.IdleTimeout = d.IdleTimeout
	}
	return t
}

func (s *Server) buildGRPC() error {
	validator, err := protovalidate.New()
	if err != nil {
		return fmt.Errorf("build validator: %w", err)
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	s.metrics.MustRegister(metrics)

	chain := []grpc.UnaryServerInterceptor{
		requestArrived,
		logging.UnaryServerInterceptor(interceptorLogger(s.log), logging.WithLogOnEvents(logging.FinishCall)),
		metrics.UnaryServerInterceptor(),
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(s.recovered)),
	}
	chain = append(chain, s.opts.Interceptors...)
	chain = append(chain, requestIDFromHeader, validateRequest(validator))

	serverOpts := []grpc.ServerOption{
		grpc.StatsHandler(grpcServerTracing()),
		grpc.ChainUnaryInterceptor(chain...),
		grpc.ChainStreamInterceptor(streamStarted),
		grpc.InTapHandle(boundRequestRead(s.opts.Transport.ReadTimeout)),
		// The same cap as a REST body: protobuf is never longer than the JSON of the
		// same request, so a request REST accepts always fits.
		grpc.MaxRecvMsgSize(s.opts.Transport.MaxRequestBytes),
		grpc.ConnectionTimeout(s.opts.Transport.ReadTimeout),
		grpc.MaxConcurrentStreams(MaxStreams),
		grpc.MaxHeaderListSize(MaxMetadataBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.opts.Transport.IdleTimeout}),
	}
	if s.tls != nil {
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	s.grpc = grpc.NewServer(serverOpts...)
	if s.opts.Register != nil {
		s.opts.Register(s.grpc)
	}
	s.routes = routesOf(s.grpc)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	metrics.InitializeMetrics(s.grpc)
	return nil
}

// MaxStreams bounds the calls one gRPC connection holds at once; a client past it has
// its next call refused (REFUSED_STREAM, which gRPC clients retry once a call ends).
// gRPC's default is no bound, so a single connection could open calls faster than the
// read timeout ends them. A thousand is far more than a client needs: the REST gateway
// and each service's connection to auth carry all their calls over one connection, and
// the load test runs 64 callers.
const MaxStreams = 1000

// MaxMetadataBytes bounds a gRPC call's metadata (its HTTP/2 header list), as
// MaxRequestBytes bounds its message; gRPC's default is 16 MiB. aTES's calls send a
// token, perhaps an Idempotency-Key and trace context, and the REST gateway what it
// forwards of the HTTP headers: a few hundred bytes.
const MaxMetadataBytes = 64 << 10

// boundRequestRead ends a gRPC call whose request message has not arrived within
// timeout, as the HTTP server's ReadTimeout ends a slow REST request: gRPC itself bounds
// only the handshake, and a stream that announces a message and never sends it would
// hold its goroutine and its connection (which is not idle while a call is open) for
// ever. The first interceptor (requestArrived, streamStarted) stops the clock.
func boundRequestRead(timeout time.Duration) tap.ServerInHandle {
	return func(ctx context.Context, _ *tap.Info) (context.Context, error) {
		ctx, cancel := context.WithCancelCause(ctx) // ended with the stream otherwise
		t := time.AfterFunc(timeout, func() { cancel(errRequestTimeout) })
		return context.WithValue(ctx, readTimerKey{}, t), nil
	}
}

var errRequestTimeout = status.Error(codes.DeadlineExceeded, "the request did not arrive in time")

type readTimerKey struct{}

func stopReadTimer(ctx context.Context) {
	if t, ok := ctx.Value(readTimerKey{}).(*time.Timer); ok {
		t.Stop()
	}
}

// requestArrived runs once a unary call's request has been read.
func requestArrived(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	stopReadTimer(ctx)
	return handler(ctx, req)
}

// streamStarted lets streaming calls (health checks, reflection) read at their pace.
func streamStarted(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	stopReadTimer(ss.Context())
	return handler(srv, ss)
}

// recovered turns a handler panic into Internal; the panic value goes to the log only.
func (s *Server) recovered(ctx context.Context, p any) error {
	s.log.ErrorContext(ctx, "panic in handler", "panic", p)
	return status.Error(codes.Internal, "internal error")
}

// GRPCAddr is the bound gRPC address; empty for a server without gRPC.
func (s *Server) GRPCAddr() string {
	if s.grpcLis == nil {
		return ""
	}
	return s.grpcLis.Addr().String()
}

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Serve serves until ctx ends, then stops gRPC gracefully and shuts HTTP down within
// the shutdown timeout. Under WithSharedMetrics its metrics join the process's.
func (s *Server) Serve(ctx context.Context) error {
	if m, ok := ctx.Value(sharedMetricsKey{}).(*SharedMetrics); ok {
		s.shared = m
		m.join(s)
	}
	if s.grpc != nil {
		if err := s.registerGateways(ctx); err != nil {
			s.closeListeners()
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.grpc != nil {
		g.Go(func() error {
			s.log.Info("gRPC listening", "addr", s.GRPCAddr())
			if err := s.grpc.Serve(s.grpcLis); err != nil {
				return fmt.Errorf("%s: serve gRPC: %w", s.opts.Name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		s.log.Info("HTTP listening", "addr", s.HTTPAddr(), "tls", s.tls != nil)
		serve := s.http.Serve
		if s.tls != nil {
			serve = func(l net.Listener) error { return s.http.ServeTLS(l, "", "") }
		}
		if err := serve(s.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: serve HTTP: %w", s.opts.Name, err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.stop(gctx)
		return nil
	})
	return g.Wait()
}

func (s *Server) stop(ctx context.Context) {
	s.log.Info("stopping")
	if s.grpc != nil {
		s.health.Shutdown()
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
			s.log.Debug("grpc stopped")
		case <-time.After(s.opts.ShutdownTimeout):
			s.log.Warn("gRPC graceful stop timed out; closing connections")
			s.grpc.Stop()
		}
	}
	// ctx has ended (that is why we stop); the shutdown keeps its values, not its end.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.log.Warn("HTTP shutdown", "err", err)
	}
	s.log.Info("stopped")
}

func (s *Server) closeListeners() {
	for _, l := range []net.Listener{s.grpcLis, s.httpLis} {
		if l != nil {
			_ = l.Close()
		}
	}
}

// registerGateways points the REST handlers at our own gRPC listener.
func (s *Server) registerGateways(ctx context.Context) error {
	endpoint := dialable(s.GRPCAddr())
	creds, err := gatewayDial(s.tls)
	if err != nil {
		return fmt.Errorf("%s: %w", s.opts.Name, err)
	}
	for _, register := range s.opts.Gateways {
		if err := register(ctx, s.gwMux, endpoint, []grpc.DialOption{creds, grpc.WithStatsHandler(telemetry.GRPCClientHandler())}); err != nil {
			return fmt.Errorf("%s: register REST gateway: %w", s.opts.Name, err)
		}
	}
	return nil
}

// dialable turns a wildcard listen address into one a local client can dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	if s.opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if s.grpc != nil {
		opts := append([]runtime.ServeMuxOption{
			runtime.WithMarshalerOption(runtime.MIMEWildcard, GatewayMarshaler()),
			runtime.WithIncomingHeaderMatcher(forwardHeader),
			runtime.WithMetadata(s.gatewayMetadata),
			runtime.WithErrorHandler(gatewayError),
			runtime.WithMiddlewares(nameSpanByRoute),
		}, s.gatewayLimits()...)
		s.gwMux = runtime.NewServeMux(opts...)
		mux.Handle("/v1/", checkText(s.gwMux))
		mux.Handle("GET /openapi.json", s.openAPIHandler())
		mux.Handle("GET /docs", http.RedirectHandler("/docs/", http.StatusMovedPermanently))
		mux.Handle("GET /docs/", docsHandler())
	}
	for pattern, h := range s.opts.Handlers {
		mux.Handle(pattern, h)
	}
	return httpTracing(withCORS(s.opts.Transport.CORSOrigins, mux))
}

// readyCheckTimeout bounds each readiness check: a dependency slower than this is not
// ready, and /readyz answers within it whatever its checks do.
const readyCheckTimeout = time.Second

// readyz runs every check at once, each under its own timeout, and lists the results
// in name order.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	names := slices.Sorted(maps.Keys(s.opts.Ready))
	errs := make([]error, len(names))
	ctx := r.Context()
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = runCheck(ctx, s.opts.Ready[name]) })
	}
	wg.Wait()

	var body strings.Builder
	failed := false
	for i, name := range names {
		if errs[i] != nil {
			failed = true
			fmt.Fprintf(&body, "%s: %v\n", name, errs[i])
			s.log.Warn("not ready", "check", name, "err", errs[i])
			continue
		}
		fmt.Fprintf(&body, "%s: ok\n", name)
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(body.String()))
}

// runCheck runs check under readyCheckTimeout and stops waiting for it then, even if
// the check ignores its context.
func runCheck(ctx context.Context, check Check) error {
	ctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- check(ctx) }()
	select {
	case err := <-done:
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("no answer within %s: %w", readyCheckTimeout, err)
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %s", readyCheckTimeout)
	}
}

// forwardHeader passes the Idempotency-Key on to gRPC metadata as well as what
// grpc-gateway forwards by default (Authorization among it). The W3C trace context goes
// through the tracing handlers instead (see tracing.go).
func forwardHeader(key string) (string, bool) {
	switch k := strings.ToLower(key); k {
	case idempotencyKeyMD:
		return k, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// interceptorLogger adapts slog to the middleware's logger.
func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}
