// Package authn authenticates every gRPC call (and so every REST call, which the gateway
// turns into one) from its "authorization: Bearer <token>" metadata, puts the caller in
// the context, and checks roles.
package authn

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/ates/ates/gen/auth/v1"
)

// User is the authenticated caller.
type User struct {
	ID    uuid.UUID
	Name  string
	Email string
	Role  authv1.Role
}

// ErrUnauthenticated is what an Authenticator returns for an unknown or expired token.
var ErrUnauthenticated = errors.New("unknown or expired token")

// Authenticator resolves a token to its user; the auth service does it from its store,
// the other services through auth's Authenticate RPC.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (User, error)
}

type ctxKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, ctxKey{}, u)
}

// UserFrom returns the caller put in ctx by the interceptor.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(ctxKey{}).(User)
	return u, ok
}

// Require returns the caller if their role is one of roles, and otherwise an
// Unauthenticated or PermissionDenied status error.
func Require(ctx context.Context, roles ...authv1.Role) (User, error) {
	u, ok := UserFrom(ctx)
	if !ok {
		return User{}, status.Error(codes.Unauthenticated, "authentication required")
	}
	for _, r := range roles {
		if u.Role == r {
			return u, nil
		}
	}
	return User{}, status.Errorf(codes.PermissionDenied, "role %s may not do this", RoleName(u.Role))
}

// RoleName is the role as docs/product.md writes it: worker, manager, admin, accountant.
func RoleName(r authv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// Option tunes the interceptor.
type Option func(*options)

type options struct {
	optional map[string]bool
}

// Optional lets calls to these full method names through without a token; a token that
// is sent is still checked.
func Optional(fullMethods ...string) Option {
	return func(o *options) {
		for _, m := range fullMethods {
			o.optional[m] = true
		}
	}
}

// UnaryServerInterceptor authenticates each call with a, except the gRPC health check:
// load balancers and orchestrators probe it without a token, and a service's health
// must not hang on auth's (a token sent with it is ignored, not checked). Health's Watch
// streams and no stream is authenticated here.
func UnaryServerInterceptor(a Authenticator, opts ...Option) grpc.UnaryServerInterceptor {
	o := options{optional: map[string]bool{}}
	for _, opt := range opts {
		opt(&o)
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info.FullMethod == healthpb.Health_Check_FullMethodName {
			return handler(ctx, req)
		}
		token, err := BearerToken(ctx)
		switch {
		case errors.Is(err, errNoToken) && o.optional[info.FullMethod]:
			return handler(ctx, req)
		case err != nil:
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		u, err := a.Authenticate(ctx, token)
		switch {
		case errors.Is(err, ErrUnauthenticated):
			return nil, status.Error(codes.Unauthenticated, "invalid or expired token")
		case status.Code(err) == codes.Unauthenticated:
			return nil, err
		case err != nil:
			return nil, status.Error(codes.Unavailable, "authentication service unavailable")
		}
		return handler(WithUser(ctx, u), req)
	}
}

var errNoToken = errors.New("missing authorization: send \"authorization: Bearer <token>\"")

// BearerToken reads the token from the call's authorization metadata.
func BearerToken(ctx context.Context) (string, error) {
	values := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(values) == 0 {
		return "", errNoToken
	}
	if len(values) > 1 {
		return "", errors.New("malformed authorization: more than one value")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" || strings.ContainsFunc(token, notVisibleASCII) {
		return "", errors.New("malformed authorization: want \"Bearer <token>\"")
	}
	return token, nil
}

// notVisibleASCII is true for what no token holds: blanks, control characters and
// anything outside printable ASCII (HTTP's VCHAR).
func notVisibleASCII(r rune) bool { return r <= ' ' || r > '~' }

// ParseRole is the inverse of RoleName; unknown names give ROLE_UNSPECIFIED.
func ParseRole[S ~string](name S) authv1.Role {
	return authv1.Role(authv1.Role_value["ROLE_"+strings.ToUpper(string(name))])
}
