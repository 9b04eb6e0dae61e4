package broker

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultExchange is the topic exchange events are published to when
// Config.Exchange is empty.
const DefaultExchange = "ates.events"

// Defaults of the Config fields left zero.
const (
	DefaultReconnectMin     = 100 * time.Millisecond
	DefaultReconnectMax     = 2 * time.Second
	DefaultHeartbeat        = 2 * time.Second
	DefaultHandshakeTimeout = 3 * time.Second
	DefaultConfirmTimeout   = 2 * time.Second
)

var (
	// ErrUnavailable is returned (wrapped) when the broker cannot be reached
	// right now: while the connection is down, or when it drops before a
	// publish was confirmed. Callers map it to a retryable error; Publish
	// says more with [ErrNotSent] and [ErrOutcomeUnknown], which wrap it.
	ErrUnavailable = errors.New("broker unavailable")
	// ErrClosed is returned (wrapped) after [Conn.Close]. It wraps
	// [ErrUnavailable], so errors.Is(err, ErrUnavailable) holds for it too.
	ErrClosed = fmt.Errorf("broker connection closed: %w", ErrUnavailable)

	errDisconnected = fmt.Errorf("not connected: %w", ErrUnavailable)
)

// Config says where the broker is and how to behave towards it.
type Config struct {
	// URL is the AMQP URI, e.g. "amqp://guest:guest@127.0.0.1:5672/".
	URL string
	// AppID is set as the app_id property of published messages and names the
	// connection in the RabbitMQ management UI.
	AppID string
	// Exchange is the durable topic exchange events go to; DefaultExchange if
	// empty. Its dead-letter exchange is Exchange + ".dlx".
	Exchange string
	// Logger receives connection, retry and dead-letter events; slog.Default()
	// if nil.
	Logger *slog.Logger
	// ReconnectMin and ReconnectMax bound the exponential, jittered backoff
	// between reconnect attempts (the first attempt after a loss is
	// immediate); DefaultReconnectMin and DefaultReconnectMax if zero.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// Heartbeat is the AMQP heartbeat interval asked of the broker (whole
	// seconds, at least 1s); amqp091 closes a connection on which nothing
	// arrived for 1.5 intervals, so a hung broker is noticed that soon.
	// DefaultHeartbeat if zero.
	Heartbeat time.Duration
	// TLS is the client configuration of amqps:// URLs (the CAs to trust); nil takes
	// it from the URL's cacertfile, certfile, keyfile and server_name_indication
	// parameters, and the system's CAs. Plain amqp:// URLs ignore it.
	TLS *tls.Config
	// HandshakeTimeout bounds the TCP, TLS and AMQP handshakes of one dial;
	// DefaultHandshakeTimeout if zero.
	HandshakeTimeout time.Duration
	// ConfirmTimeout is how long Publish waits for the broker's confirm
	// before it fails with ErrOutcomeUnknown; DefaultConfirmTimeout if zero.
	ConfirmTimeout time.Duration
	// Signer, when set, signs every event Publish sends with its first key (see
	// Keyring), so that consumers can tell this producer's events from forged ones.
	Signer *Keyring
}

// Conn is a RabbitMQ connection that reconnects by itself. It is safe for
// concurrent use; create one per process with [Dial] and [Conn.Close] it last.
type Conn struct {
	cfg    Config
	dlx    string
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the supervising goroutine has exited

	// topoMu serialises DeclareQueue with the topology replay of a reconnect,
	// so a queue declared concurrently with a reconnect is never missed.
	topoMu sync.Mutex
	queues map[string]QueueSpec // guarded by topoMu

	mu   sync.Mutex
	sess *session      // nil while disconnected
	up   chan struct{} // closed when sess becomes non-nil; replaced when it is lost

	connects  atomic.Uint64 // successful connections, for tests
	closeErr  error
	closeOnce sync.Once
}

// session is one AMQP connection and the publisher channel opened on it.
type session struct {
	conn    *amqp.Connection
	netConn net.Conn      // the raw socket, so tests can cut it
	lost    chan struct{} // closed once conn is closed, for whatever reason
	err     *amqp.Error   // why conn closed; written before lost is closed

	// When the latest publish confirm arrived and when the latest wait for
	// one timed out (Unix nanoseconds, 0 for never), for Check. Per session:
	// a new connection starts with a clean slate.
	confirmedAt atomic.Int64
	timedOutAt  atomic.Int64
	timedOutOn  atomic.Value // string: the exchange of the publish that timed out

	mu      sync.Mutex
	pub     *confirmChannel // reopened lazily when closed
	opening chan struct{}   // non-nil while pub is being opened; closed when done
	openErr error           // why the last opening failed
}

// Dial connects to the broker, declares the exchange and its dead-letter
// exchange and starts watching the connection. It fails if the broker cannot
// be reached now; later outages are handled by reconnecting.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.URL == "" {
		return nil, errors.New("broker dial: empty URL")
	}
	if cfg.Exchange == "" {
		cfg.Exchange = DefaultExchange
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = DefaultReconnectMin
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = DefaultReconnectMax
	}
	cfg.ReconnectMax = max(cfg.ReconnectMax, cfg.ReconnectMin)
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	// amqp091 negotiates whole seconds; below one it would take the broker's 60s.
	cfg.Heartbeat = max(cfg.Heartbeat.Truncate(time.Second), time.Second)
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = DefaultConfirmTimeout
	}

	c := &Conn{
		cfg:    cfg,
		dlx:    cfg.Exchange + ".dlx",
		log:    cfg.Logger.With("component", "broker", "exchange", cfg.Exchange),
		done:   make(chan struct{}),
		queues: make(map[string]QueueSpec),
		up:     make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	s, err := c.connect(ctx)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("broker dial: %w", err)
	}
	go c.supervise(s)
	return c, nil
}

// Ready reports whether the connection is up and its topology declared.
func (c *Conn) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// Check is the readiness of publishing, for /readyz: an error while the
// connection is down or closed, and while publishes time out, i.e. the latest
// wait for a confirm on this connection timed out and no confirm came after it.
// In that state Check sends a probe message (unroutable, so nobody receives it)
// and waits for its confirm until ctx ends: readiness comes back as soon as the
// broker confirms again, without waiting for traffic that failing readiness
// keeps away.
func (c *Conn) Check(ctx context.Context) error {
	s, err := c.current()
	if err != nil {
		return err
	}
	timedOut := s.timedOutAt.Load()
	if timedOut == 0 || timedOut < s.confirmedAt.Load() {
		return nil
	}
	exchange, _ := s.timedOutOn.Load().(string)
	if err := c.probe(ctx, cmp.Or(exchange, c.cfg.Exchange)); err != nil {
		return fmt.Errorf("publishes time out: a confirm took longer than %s at %s, and a probe since was not confirmed either: %w",
			c.cfg.ConfirmTimeout, time.Unix(0, timedOut).UTC().Format(time.RFC3339Nano), err)
	}
	return nil
}

// Close stops reconnecting and closes the connection, which also ends running
// consumers (their Consume calls return ErrClosed). Close publishes nothing
// and drops nothing: unacknowledged deliveries go back to their queues.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.done
		c.mu.Lock()
		s := c.sess
		c.sess = nil
		c.mu.Unlock()
		if s == nil {
			return
		}
		// Bounded: a hung broker never answers the close handshake, and amqp091 does not
		// always honour the deadline (now and then it waited 30 s), so past it the socket
		// is dropped, which ends the handshake at once.
		closed := make(chan error, 1)
		go func() { closed <- s.conn.CloseDeadline(time.Now().Add(c.cfg.HandshakeTimeout)) }()
		var err error
		select {
		case err = <-closed:
		case <-time.After(c.cfg.HandshakeTimeout + 100*time.Millisecond):
			_ = s.netConn.Close()
			select {
			case err = <-closed:
			case <-time.After(time.Second):
				err = errors.New("the broker did not answer the close handshake")
			}
		}
		if err != nil && !errors.Is(err, amqp.ErrClosed) {
			c.closeErr = fmt.Errorf("close broker connection: %w", err)
		}
	})
	return c.closeErr
}

// current returns the live session, or an error wrapping ErrUnavailable.
func (c *Conn) current() (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if c.sess == nil {
		return nil, errDisconnected
	}
	return c.sess, nil
}

// waitSession blocks until a session is up, ctx is done or c is closed.
func (c *Conn) waitSession(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		s, up := c.sess, c.up
		c.mu.Unlock()
		if s != nil {
			return s, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// connect dials, declares all recorded topology and makes the result the
// current session.
func (c *Conn) connect(ctx context.Context) (*session, error) {
	var netConn net.Conn
	props := amqp.NewConnectionProperties()
	if c.cfg.AppID != "" {
		props.SetClientConnectionName(c.cfg.AppID)
	}
	conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{
		Properties:      props,
		Heartbeat:       c.cfg.Heartbeat,
		TLSClientConfig: c.cfg.TLS.Clone(), // amqp091 fills in ServerName
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: c.cfg.HandshakeTimeout}
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// amqp091 clears this deadline once the AMQP handshake is done.
			deadline := time.Now().Add(c.cfg.HandshakeTimeout)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
			}
			if err := nc.SetDeadline(deadline); err != nil {
				_ = nc.Close() // the deadline's error is the one to report
				return nil, err
			}
			netConn = nc
			return nc, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	s := &session{conn: conn, netConn: netConn, lost: make(chan struct{})}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		s.err = <-closed
		close(s.lost)
	}()

	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	if err := c.declareAll(conn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	// Opened now so that the first publish does not wait for it.
	if s.pub, err = openConfirmChannel(conn, c.log); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("open publisher channel: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil { // Close ran while we were dialling
		_ = conn.Close()
		return nil, ErrClosed
	}
	c.sess = s
	close(c.up)
	c.connects.Add(1)
	return s, nil
}

// supervise waits for the session to be lost and replaces it, until Close.
func (c *Conn) supervise(s *session) {
	defer close(c.done)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-s.lost:
		}
		c.mu.Lock()
		if c.sess == s {
			c.sess = nil
			c.up = make(chan struct{})
		}
		c.mu.Unlock()
		c.log.Warn("broker connection lost; reconnecting", "error", s.err)

		var ok bool
		if s, ok = c.reconnect(); !ok {
			return
		}
	}
}

// reconnect dials until it succeeds or c is closed: at once, since most losses
// are a dropped socket or a restarted node that is already back, then with
// backoff.
func (c *Conn) reconnect() (*session, bool) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(c.backoff(attempt - 1))
			select {
			case <-c.ctx.Done():
				t.Stop()
				return nil, false
			case <-t.C:
			}
		}
		s, err := c.connect(c.ctx)
		if err == nil {
			c.log.Info("broker reconnected", "attempts", attempt+1)
			return s, true
		}
		if c.ctx.Err() != nil {
			return nil, false
		}
		c.log.Warn("broker reconnect failed", "attempt", attempt+1, "error", err)
	}
}

// backoff returns the wait before reconnect attempt n (from 0): ReconnectMin
// doubled n times, capped at ReconnectMax, of which a random half is dropped so
// that many replicas do not reconnect in lockstep.
func (c *Conn) backoff(n int) time.Duration {
	d := c.cfg.ReconnectMax
	if n < 30 {
		d = min(c.cfg.ReconnectMin<<n, c.cfg.ReconnectMax)
	}
	half := d / 2
	return half + rand.N(d-half+1) //nolint:gosec // G404: reconnect jitter only spreads load; nothing depends on it being unpredictable
}

// publisher returns the session's confirm channel, opening it if needed. Opening
// is a round trip amqp091 cannot cancel, so it runs on its own and publisher waits
// for it only until ctx ends: a hung broker does not hold publishers longer than
// their deadline.
func (s *session) publisher(ctx context.Context, log *slog.Logger) (*confirmChannel, error) {
	s.mu.Lock()
	if s.pub != nil && !s.pub.isClosed() {
		defer s.mu.Unlock()
		return s.pub, nil
	}
	if s.opening == nil {
		opening := make(chan struct{})
		s.opening = opening
		go func() {
			pub, err := openConfirmChannel(s.conn, log)
			s.mu.Lock()
			s.pub, s.openErr, s.opening = pub, err, nil
			s.mu.Unlock()
			close(opening)
		}()
	}
	opening := s.opening
	s.mu.Unlock()

	select {
	case <-opening:
	case <-ctx.Done():
		return nil, fmt.Errorf("open publisher channel: %w", context.Cause(ctx))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub == nil {
		return nil, fmt.Errorf("open publisher channel: %w", s.openErr)
	}
	return s.pub, nil
}
