package broker

import "errors"

// permanentError marks a handler error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: a handler returning it (possibly wrapped further)
// sends the message straight to the dead-letter queue instead of retrying it. Use it for
// input that will never be valid, such as a body that does not parse. Permanent(nil) is
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err means the message can never be applied: err or an
// error it wraps was marked with Permanent, or it is a database error that says the data
// itself is wrong (SQLSTATE class 22, data exception, or 23, integrity constraint
// violation). Everything else — lost connections, timeouts, serialization failures,
// deadlocks, a database that is shutting down, a panic — is transient: retried, however
// long it lasts, and never dead-lettered. This is the one place that decides.
func IsPermanent(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	// pgconn.PgError has SQLState(); matching the method keeps pgx out of this package.
	var sqlErr interface{ SQLState() string }
	if errors.As(err, &sqlErr) {
		switch code := sqlErr.SQLState(); {
		case len(code) < 2:
		case code[:2] == "22", code[:2] == "23":
			return true
		}
	}
	return false
}
