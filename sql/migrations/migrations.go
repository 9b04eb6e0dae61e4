// Package migrations embeds the goose migrations of the aTES schema.
package migrations

import "embed"

// FS holds the migration files, applied in name order by goose.
//
//go:embed *.sql
var FS embed.FS
