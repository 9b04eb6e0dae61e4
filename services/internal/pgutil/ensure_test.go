package pgutil_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/pgutil"
)

// TestEnsureDatabaseWithoutCreatedb: `ates migrate` run by a user who may not create
// databases says who must and with what command.
func TestEnsureDatabaseWithoutCreatedb(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")
	role, name := "ates_nocreatedb_"+suffix, "ates_missing_"+suffix
	admin, err := pgx.Connect(ctx, pgtest.URL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOCREATEDB")
	require.NoError(t, err)
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, pgtest.URL())
		if err != nil {
			t.Logf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+role); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})

	u, err := url.Parse(pgtest.URL())
	require.NoError(t, err)
	u.User = url.User(role)
	u.Path = "/" + name
	created, err := pgutil.EnsureDatabase(ctx, u.String())
	require.False(t, created)
	require.ErrorContains(t, err, fmt.Sprintf("have a superuser run `createdb -h %s -p %s -O %s %s`", u.Hostname(), u.Port(), role, name))
}
