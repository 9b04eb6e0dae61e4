// Package apperr holds the errors that cross layers: stores return them, and the gRPC
// layer (services/internal/server) maps them to status codes without importing the
// database packages.
package apperr

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// ErrNotFound is what stores return for a missing row.
var ErrNotFound = errors.New("not found")

// ErrAlreadyExists is what stores return for a unique violation.
var ErrAlreadyExists = errors.New("already exists")

// sqlStater is what a PostgreSQL error (pgconn.PgError) reports its SQLSTATE through.
type sqlStater interface{ SQLState() string }

// IsUnavailable reports whether err says the database cannot be reached or is not
// serving right now, so the same call may pass later, as opposed to a fault of the query
// or the data: a refused, reset or broken connection, a network timeout, SQLSTATE class
// 08 (connection exception), 57P01-57P03 (shutting down, crashed, not accepting
// connections yet) or 53300 (too many connections). The end of the caller's own context
// is not the database's fault and does not count. pgutil.IsUnavailable adds the driver's
// own connect errors.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr sqlStater
	if errors.As(err, &pgErr) {
		switch code := pgErr.SQLState(); code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		default:
			return strings.HasPrefix(code, "08")
		}
	}
	for _, broken := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, io.ErrUnexpectedEOF, net.ErrClosed} {
		if errors.Is(err, broken) {
			return true
		}
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
