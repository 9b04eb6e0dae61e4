package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	authv1 "github.com/ates/ates/gen/auth/v1"
	"github.com/ates/ates/services/auth/internal/authdb"
	"github.com/ates/ates/services/internal/authn"
	"github.com/ates/ates/services/internal/pgutil"
)

// Errors the store answers with, beyond pgutil's.
var (
	ErrEmailTaken     = errors.New("email is already registered")
	ErrPhotoHashTaken = errors.New("photo_hash is already registered")
	ErrRequestIDUsed  = errors.New("request_id was already used for a different registration")
)

// Store keeps users and tokens. Photo hashes are stored only as HMAC-SHA-256 under the
// server key, tokens only as SHA-256 (they are random, so no key is needed).
type Store struct {
	pool *pgxpool.Pool
	q    *authdb.Queries
	key  []byte
	now  func() time.Time
}

// NewStore returns a store on pool keyed with hmacKey.
func NewStore(pool *pgxpool.Pool, hmacKey []byte) *Store {
	return &Store{pool: pool, q: authdb.New(pool), key: hmacKey, now: time.Now}
}

// NewUser is what registration stores.
type NewUser struct {
	// ID is the new user's id when the caller derived it from a request id (a retry of the
	// registration then finds the user it made); zero for a new UUIDv7.
	ID                     uuid.UUID
	Name, Email, PhotoHash string
	Role                   authv1.Role
}

// CreateUser stores a new user. With nu.ID set, a user already stored under that id with
// the same name, email, role and photo hash is the one a first attempt created: it is
// returned as if created now. Another registration under the id is ErrRequestIDUsed.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (authdb.User, error) {
	id := nu.ID
	if id == uuid.Nil {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return authdb.User{}, fmt.Errorf("new user id: %w", err)
		}
	}
	mac := s.photoMAC(nu.PhotoHash)
	u, err := s.q.UserInsert(ctx, authdb.UserInsertParams{
		ID:           id,
		Name:         nu.Name,
		Email:        nu.Email,
		Role:         authdb.UserRole(authn.RoleName(nu.Role)),
		PhotoHashMac: mac,
	})
	constraint := pgutil.ConstraintOf(err, "23505")
	if constraint != "" && nu.ID != uuid.Nil {
		// Whichever constraint PostgreSQL checked first, a retry collides on all of them.
		switch first, err := s.q.UserGet(ctx, id); {
		case err == nil && first.Name == nu.Name && strings.EqualFold(first.Email, nu.Email) &&
			authn.ParseRole(first.Role) == nu.Role && hmac.Equal(first.PhotoHashMac, mac):
			return first, nil
		case err == nil:
			return authdb.User{}, ErrRequestIDUsed
		case !errors.Is(err, pgx.ErrNoRows):
			return authdb.User{}, fmt.Errorf("read user %s: %w", id, err)
		}
	}
	switch constraint {
	case "":
	case "users_email_key":
		return authdb.User{}, ErrEmailTaken
	case "users_photo_hash_mac_key":
		return authdb.User{}, ErrPhotoHashTaken
	default:
		return authdb.User{}, pgutil.Translate(err)
	}
	if err != nil {
		return authdb.User{}, fmt.Errorf("insert user: %w", err)
	}
	return u, nil
}

// TokenPolicy is how long a login's token lives and how many live tokens a user keeps.
type TokenPolicy struct {
	TTL time.Duration
	// Max is the most unexpired tokens one user holds; a login beyond it revokes the
	// oldest.
	Max int
}

// Login finds the user with photoHash and issues a token valid for p.TTL. In the same
// transaction, under the user's row lock, it revokes the user's oldest tokens so that
// with the new one at most p.Max remain, and deletes the user's expired ones.
func (s *Store) Login(ctx context.Context, photoHash string, p TokenPolicy) (authdb.User, string, time.Time, error) {
	raw := make([]byte, 32) // 256 bits
	if _, err := rand.Read(raw); err != nil {
		return authdb.User{}, "", time.Time{}, fmt.Errorf("make token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	var (
		u       authdb.User
		expires time.Time
	)
	err := pgutil.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		var err error
		if u, err = q.UserLockForLogin(ctx, s.photoMAC(photoHash)); err != nil {
			return fmt.Errorf("find user by photo hash: %w", pgutil.Translate(err))
		}
		now := s.now()
		if _, err := q.TokenDeleteAllButNewest(ctx, authdb.TokenDeleteAllButNewestParams{
			UserID: u.ID, Now: now, Keep: int32(p.Max - 1), //nolint:gosec // G115: the token limit is a small validated setting (config)
		}); err != nil {
			return fmt.Errorf("revoke the oldest tokens: %w", err)
		}
		expires = now.Add(p.TTL).UTC().Truncate(time.Microsecond)
		if err := q.TokenInsert(ctx, authdb.TokenInsertParams{TokenHash: tokenHash(token), UserID: u.ID, ExpiresAt: expires}); err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		return nil
	})
	if err != nil {
		return authdb.User{}, "", time.Time{}, err
	}
	return u, token, expires, nil
}

// UserByToken returns the active user behind an unexpired token, or pgutil.ErrNotFound.
func (s *Store) UserByToken(ctx context.Context, token string) (authdb.User, error) {
	row, err := s.q.TokenGetUser(ctx, authdb.TokenGetUserParams{TokenHash: tokenHash(token), ExpiresAt: s.now()})
	if err != nil {
		return authdb.User{}, fmt.Errorf("find token: %w", pgutil.Translate(err))
	}
	return row.User, nil
}

// DeleteExpiredTokens removes tokens that expired before now.
func (s *Store) DeleteExpiredTokens(ctx context.Context) (int64, error) {
	n, err := s.q.TokenDeleteExpired(ctx, s.now())
	if err != nil {
		return 0, fmt.Errorf("delete expired tokens: %w", err)
	}
	return n, nil
}

// RevokeToken deletes one token; ErrNotFound if it was already gone.
func (s *Store) RevokeToken(ctx context.Context, token string) error {
	n, err := s.q.TokenDelete(ctx, tokenHash(token))
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n == 0 {
		return pgutil.ErrNotFound
	}
	return nil
}

// RevokeUserTokens deletes every token of a user and counts the unexpired ones.
func (s *Store) RevokeUserTokens(ctx context.Context, userID uuid.UUID) (int64, error) {
	n, err := s.q.TokenDeleteByUser(ctx, authdb.TokenDeleteByUserParams{UserID: userID, Now: s.now()})
	if err != nil {
		return 0, fmt.Errorf("revoke the tokens of %s: %w", userID, err)
	}
	return n, nil
}

// Authenticate implements authn.Authenticator from the store, for auth's own calls.
func (s *Store) Authenticate(ctx context.Context, token string) (authn.User, error) {
	u, err := s.UserByToken(ctx, token)
	if errors.Is(err, pgutil.ErrNotFound) {
		return authn.User{}, authn.ErrUnauthenticated
	}
	if err != nil {
		return authn.User{}, err
	}
	return authn.User{ID: u.ID, Name: u.Name, Email: u.Email, Role: authn.ParseRole(u.Role)}, nil
}

func (s *Store) photoMAC(photoHash string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(photoHash))
	return m.Sum(nil)
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
