package authn

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/internal/telemetry"
)

// Client authenticates tokens through the auth service's Authenticate RPC, reusing a
// positive answer for a configurable time. That time is also how long a token revoked in
// auth (Logout, RevokeAll, a login past ATES_AUTH_MAX_TOKENS) keeps working through this
// client: config caps it at config.MaxAuthCacheTTL (30s), and the default is 5s.
type Client struct {
	conn  *grpc.ClientConn
	auth  authv1.AuthServiceClient
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
}

type cached struct {
	user    User
	expires time.Time
}

// maxCached bounds the cache; past it, expired entries are swept and, if that is not
// enough, the cache starts afresh.
const maxCached = 10_000

// Dial connects to auth at addr, in plaintext unless opts give transport credentials
// (tlsconf.GRPCDial); cacheTTL 0 disables the cache.
func Dial(addr string, cacheTTL time.Duration, opts ...grpc.DialOption) (*Client, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(telemetry.GRPCClientHandler()),
	}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial auth at %s: %w", addr, err)
	}
	return &Client{
		conn:  conn,
		auth:  authv1.NewAuthServiceClient(conn),
		ttl:   cacheTTL,
		now:   time.Now,
		cache: map[[sha256.Size]byte]cached{},
	}, nil
}

// Check asks auth's gRPC health service whether it serves: a service that cannot reach
// auth can authenticate nobody, so it is not ready.
func (c *Client) Check(ctx context.Context) error {
	resp, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("auth health check: %w", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("auth is %s", s)
	}
	return nil
}

// Close closes the connection to auth.
func (c *Client) Close() error { return c.conn.Close() }

// Authenticate implements Authenticator.
func (c *Client) Authenticate(ctx context.Context, token string) (User, error) {
	key := sha256.Sum256([]byte(token))
	if u, ok := c.lookup(key); ok {
		return u, nil
	}
	resp, err := c.auth.Authenticate(ctx, &authv1.AuthenticateRequest{Token: token})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unauthenticated, codes.InvalidArgument:
		return User{}, ErrUnauthenticated
	default:
		return User{}, fmt.Errorf("call auth: %w", err)
	}
	id, err := uuid.Parse(resp.GetUser().GetId())
	if err != nil {
		return User{}, fmt.Errorf("auth answered a bad user id %q: %w", resp.GetUser().GetId(), err)
	}
	u := User{ID: id, Name: resp.GetUser().GetName(), Email: resp.GetUser().GetEmail(), Role: resp.GetUser().GetRole()}
	c.store(key, u)
	return u, nil
}

func (c *Client) lookup(key [sha256.Size]byte) (User, bool) {
	if c.ttl <= 0 {
		return User{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[key]
	if !ok || !c.now().Before(e.expires) {
		return User{}, false
	}
	return e.user, true
}

func (c *Client) store(key [sha256.Size]byte, u User) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.cache) >= maxCached {
		for k, e := range c.cache {
			if !now.Before(e.expires) {
				delete(c.cache, k)
			}
		}
		if len(c.cache) >= maxCached {
			clear(c.cache)
		}
	}
	c.cache[key] = cached{user: u, expires: now.Add(c.ttl)}
}
