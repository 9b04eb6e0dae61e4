package auth

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth/internal/authdb"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/idempotency"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/ratelimit"
	"github.com/ates/ates/services/internal/server"
)

// Server implements authv1.AuthServiceServer.
type Server struct {
	authv1.UnimplementedAuthServiceServer
	store  *Store
	tokens TokenPolicy
	log    *slog.Logger
	limits limits
}

// limits are auth's abuse limits (docs/security-limits.md), each keyed by client
// address (ratelimit.AddrKey) but failedLogins, which has the one key allClients.
type limits struct {
	failedLoginsPerAddr *ratelimit.Limiter
	failedLogins        *ratelimit.Limiter
	registerPerAddr     *ratelimit.Limiter
}

const allClients = ""

// Register creates a user; only an admin may create anything but a worker. With a
// request_id the new user's id is derived from it (and the caller, if any), so a retry
// of the registration answers the user the first attempt created.
func (s *Server) Register(ctx context.Context, req *authv1.RegisterRequest) (*authv1.RegisterResponse, error) {
	caller, _ := authn.UserFrom(ctx) // anyone may register a worker: no caller then
	byAdmin := caller.Role == authv1.Role_ROLE_ADMIN
	if !byAdmin { // an admin registering staff is not a flood
		if err := s.limits.registerPerAddr.Allow(ratelimit.AddrKey(server.ClientAddr(ctx))); err != nil {
			return nil, err
		}
	}
	if req.GetRole() != authv1.Role_ROLE_WORKER && !byAdmin {
		return nil, status.Errorf(codes.PermissionDenied, "only an admin may register a %s", authn.RoleName(req.GetRole()))
	}
	var id uuid.UUID
	if req.GetRequestId() != "" {
		requestID, err := uuid.Parse(req.GetRequestId())
		if err != nil { // protovalidate checked the shape; this guards against drift
			return nil, server.InvalidField("request_id", "must be a UUID")
		}
		id = idempotency.ID(caller.ID, authv1.AuthService_Register_FullMethodName, requestID, "user")
	}
	u, err := s.store.CreateUser(ctx, NewUser{
		ID:        id,
		Name:      req.GetName(),
		Email:     req.GetEmail(),
		PhotoHash: req.GetPhotoHash(),
		Role:      req.GetRole(),
	})
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	s.log.InfoContext(ctx, "user registered", "user_id", u.ID, "role", u.Role)
	return &authv1.RegisterResponse{User: toProto(u)}, nil
}

// Login exchanges a photo hash for a new token. Failed logins are limited per client
// address and overall; while either limit is reached, logins are refused without
// looking at the photo hash, so a refused guess tells nothing. A successful login
// counts against neither.
func (s *Server) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	// Each attempt takes its tokens before the photo hash is looked at, so that attempts
	// sent at once cannot all pass; only an attempt that failed keeps them.
	addr := ratelimit.AddrKey(server.ClientAddr(ctx))
	doneAddr, err := s.limits.failedLoginsPerAddr.Take(ctx, addr)
	if err != nil {
		return nil, err
	}
	doneAll, err := s.limits.failedLogins.Take(ctx, allClients)
	if err != nil {
		doneAddr(true)
		return nil, err
	}
	failed := false
	defer func() { doneAddr(!failed); doneAll(!failed) }()
	u, token, expires, err := s.store.Login(ctx, req.GetPhotoHash(), s.tokens)
	if failed = errors.Is(err, pgutil.ErrNotFound); failed {
		return nil, status.Error(codes.Unauthenticated, "unknown photo_hash")
	}
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.LoginResponse{Token: token, ExpiresAt: timestamppb.New(expires), User: toProto(u)}, nil
}

// Authenticate resolves the given token, or the call's own bearer token.
func (s *Server) Authenticate(ctx context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	token := req.GetToken()
	if token == "" {
		var err error
		if token, err = authn.BearerToken(ctx); err != nil {
			return nil, status.Error(codes.Unauthenticated, "token: give a token, or call with \"authorization: Bearer <token>\"")
		}
	}
	u, err := s.store.UserByToken(ctx, token)
	if errors.Is(err, pgutil.ErrNotFound) {
		return nil, status.Error(codes.Unauthenticated, "invalid or expired token")
	}
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	return &authv1.AuthenticateResponse{User: toProto(u)}, nil
}

// AuthenticateCaller is Authenticate of the call's own bearer token, which the
// interceptor has already checked.
func (s *Server) AuthenticateCaller(ctx context.Context, _ *authv1.AuthenticateCallerRequest) (*authv1.AuthenticateCallerResponse, error) {
	resp, err := s.Authenticate(ctx, &authv1.AuthenticateRequest{})
	if err != nil {
		return nil, err
	}
	return &authv1.AuthenticateCallerResponse{User: resp.GetUser()}, nil
}

// Logout revokes the call's own bearer token.
func (s *Server) Logout(ctx context.Context, _ *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	token, err := authn.BearerToken(ctx)
	if err != nil { // the interceptor let no call without one through; this guards against drift
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	// A concurrent Logout or RevokeAll may have deleted it first: revoked either way.
	if err := s.store.RevokeToken(ctx, token); err != nil && !errors.Is(err, pgutil.ErrNotFound) {
		return nil, s.toStatus(ctx, err)
	}
	u, _ := authn.UserFrom(ctx)
	s.log.InfoContext(ctx, "logged out", "user_id", u.ID)
	return &authv1.LogoutResponse{}, nil
}

// RevokeAll revokes every token of the caller, or of the user named if the caller is an
// admin.
func (s *Server) RevokeAll(ctx context.Context, req *authv1.RevokeAllRequest) (*authv1.RevokeAllResponse, error) {
	caller, ok := authn.UserFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "authentication required")
	}
	target := caller.ID
	if req.GetUserId() != "" {
		id, err := uuid.Parse(req.GetUserId())
		if err != nil { // protovalidate checked the shape; this guards against drift
			return nil, server.InvalidField("user_id", "must be a UUID")
		}
		if id != caller.ID && caller.Role != authv1.Role_ROLE_ADMIN {
			return nil, status.Error(codes.PermissionDenied, "only an admin may revoke another user's tokens")
		}
		target = id
	}
	n, err := s.store.RevokeUserTokens(ctx, target)
	if err != nil {
		return nil, s.toStatus(ctx, err)
	}
	s.log.InfoContext(ctx, "tokens revoked", "user_id", target, "by", caller.ID, "count", n)
	return &authv1.RevokeAllResponse{Revoked: n}, nil
}

// toStatus is the one translation of store errors into gRPC statuses.
func (s *Server) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrEmailTaken), errors.Is(err, ErrPhotoHashTaken), errors.Is(err, ErrRequestIDUsed):
		return status.Error(codes.AlreadyExists, err.Error())
	}
	return server.Status(ctx, s.log, err)
}

func toProto(u authdb.User) *authv1.User {
	return &authv1.User{
		Id:        u.ID.String(),
		Name:      u.Name,
		Email:     u.Email,
		Role:      authn.ParseRole(u.Role),
		CreatedAt: timestamppb.New(u.CreatedAt),
	}
}
