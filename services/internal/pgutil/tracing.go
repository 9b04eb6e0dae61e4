package pgutil

import (
	"context"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
)

// queryTracer makes every statement run inside a traced request or event a span (a
// child of the request's or event's span; statements outside one make none), named after
// the sqlc query ("TaskGet") or else the statement's first word ("SELECT"), with the
// statement's text but never its arguments, which hold users' data.
func queryTracer() pgx.QueryTracer {
	return otelpgx.NewTracer(otelpgx.WithSpanNameCtxFunc(queryName))
}

// queryName is the name in sqlc's "-- name: TaskGet :one" first line, or the SQL
// operation.
func queryName(ctx context.Context, stmt string) string {
	if rest, ok := strings.CutPrefix(strings.TrimLeft(stmt, " \t\n"), "-- name: "); ok {
		if name, _, ok := strings.Cut(rest, " "); ok && name != "" {
			return name
		}
	}
	return otelpgx.SQLOperationName(ctx, stmt)
}
