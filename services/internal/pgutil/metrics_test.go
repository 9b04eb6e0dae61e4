package pgutil_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ates/ates/services/internal/pgtest"
	"github.com/ates/ates/services/internal/pgutil"
)

func TestPoolMetrics(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewDB(t)
	reg := prometheus.NewRegistry()
	pgutil.RegisterPoolMetrics(reg, pool)

	held, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	defer held.Release()
	before := pool.Stat().AcquireCount()

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ates_db_pool_connections PostgreSQL pool connections by state: acquired (in use), idle, constructing.
# TYPE ates_db_pool_connections gauge
ates_db_pool_connections{state="acquired"} 1
ates_db_pool_connections{state="constructing"} 0
ates_db_pool_connections{state="idle"} `+itoa(pool.Stat().IdleConns())+`
# HELP ates_db_pool_max_connections The PostgreSQL pool's maximum size.
# TYPE ates_db_pool_max_connections gauge
ates_db_pool_max_connections `+itoa(pool.Stat().MaxConns())+`
`), "ates_db_pool_connections", "ates_db_pool_max_connections"))

	require.NoError(t, pool.Ping(t.Context()))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var acquires float64
	for _, mf := range mfs {
		if mf.GetName() == "ates_db_pool_acquires_total" {
			acquires = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.Equal(t, float64(before+1), acquires, "the ping acquired one more connection")
}

func itoa[N ~int32 | ~int64](n N) string { return strconv.FormatInt(int64(n), 10) }
