package pgtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/pgtest"
)

func TestNewDB(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := pgtest.NewDB(t)
	b, _ := pgtest.NewDB(t)

	_, err := a.Exec(ctx, `INSERT INTO users (id, name, email, role, photo_hash_mac)
		VALUES (gen_random_uuid(), 'Ann', 'ann@example.com', 'worker', '\x01')`)
	require.NoError(t, err, "the schema is migrated")

	var n int
	require.NoError(t, b.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n))
	require.Zero(t, n, "each test has its own database")
}
