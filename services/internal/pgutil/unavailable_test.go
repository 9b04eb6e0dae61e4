package pgutil_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/apperr"
	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/pgutil"
)

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	pgErr := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code}) }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"a connection failure (08006) is", pgErr("08006"), true},
		{"a refused connection (08001) is", pgErr("08001"), true},
		{"an administrator shutdown (57P01) is", pgErr("57P01"), true},
		{"a crash shutdown (57P02) is", pgErr("57P02"), true},
		{"a server that cannot connect now (57P03) is", pgErr("57P03"), true},
		{"too many connections (53300) is", pgErr("53300"), true},
		{"a reset connection is", fmt.Errorf("read: %w", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), true},
		{"some other network error is not", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("no such host")}, false},
		{"a unique violation is not", pgErr("23505"), false},
		{"a syntax error is not", pgErr("42601"), false},
		{"a missing row is not", pgx.ErrNoRows, false},
		{"the caller's deadline is not", fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{"the caller giving up is not", context.Canceled, false},
		{"nil is not", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, pgutil.IsUnavailable(tc.err), "%v", tc.err)
			// The gRPC layer classifies with apperr, which knows no driver types.
			require.Equal(t, tc.want, apperr.IsUnavailable(tc.err), "apperr: %v", tc.err)
		})
	}
}

// TestIsUnavailableOnRealFailures classifies what pgx really returns when the server is
// not there and when it drops the connection.
func TestIsUnavailableOnRealFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, err = pgx.Connect(ctx, "postgres://postgres@"+addr+"/ates?connect_timeout=1")
	require.Error(t, err)
	require.True(t, pgutil.IsUnavailable(err), "refused: %v", err)
	require.True(t, apperr.IsUnavailable(err), "refused, apperr: %v", err)

	pool, _ := pgtest.NewDB(t)
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	var pid int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	_, err = pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT 1")
	require.Error(t, err)
	require.True(t, pgutil.IsUnavailable(err), "terminated: %v", err)
	require.True(t, apperr.IsUnavailable(err), "terminated, apperr: %v", err)
}
