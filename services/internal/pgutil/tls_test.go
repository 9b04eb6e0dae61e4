package pgutil_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/pgutil"
	"github.com/ates/ates/services/internal/tlsconf/tlstest"
)

// TestConnectVerifyFull: an ATES_DATABASE_URL with sslmode=verify-full and sslrootcert
// is honoured as written: the connection is TLS, and a server certificate that CA did
// not sign is refused. The server's TLS side is a proxy
// in front of the test PostgreSQL that accepts the SSLRequest.
func TestConnectVerifyFull(t *testing.T) {
	t.Parallel()
	files, other := tlstest.New(t), tlstest.New(t)
	base, err := url.Parse(pgtest.URL())
	require.NoError(t, err)
	proxy := tlstest.Terminate(t, files.ServerConfig(t), base.Host, tlstest.AcceptSSLRequest)
	dsn := func(host, rootCert string) string {
		u := *base
		u.Host = host
		u.RawQuery = url.Values{"sslmode": {"verify-full"}, "sslrootcert": {rootCert}, "connect_timeout": {"5"}}.Encode()
		return u.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("the certificate's CA is trusted", func(t *testing.T) {
		pool, err := pgutil.Connect(ctx, dsn(proxy, files.CA))
		require.NoError(t, err)
		defer pool.Close()
		var one int
		require.NoError(t, pool.QueryRow(ctx, "SELECT 1").Scan(&one))
	})

	t.Run("another CA is refused", func(t *testing.T) {
		_, err := pgutil.Connect(ctx, dsn(proxy, other.CA))
		require.ErrorContains(t, err, "certificate")
	})

}
