// Command catalog serves the published catalog of MyScrollr Connect: GET /v1/integrations
// (search, filter, sort and keyset paging) and GET /v1/integrations/{name}.
//
// Configuration (environment): see Config (DATABASE_URL); PORT, LOG_LEVEL and the other
// runtime settings are read by shared/runtime.
//
// Paging is by keyset: next_cursor is an opaque token holding the sort key and id of the last
// item, so a page is an index range scan however deep the client pages, and items inserted
// meanwhile do not shift pages. A cursor is only valid with the sort it was made for.
//
// Bad input is a 400 problem naming the parameter, never a 500: every query parameter, and the
// {name} segment, must be UTF-8 text without NUL bytes (PostgreSQL's text type refuses both),
// and a cursor is checked before any query (a known sort, a UUID id, a key that is a value of
// that sort's type: a 64-bit integer, a decimal, an RFC 3339 time, or text), so a forged one
// is refused with a reason instead of failing in PostgreSQL. FuzzCatalogHTTP holds the whole
// handler to this over a real, seeded database.
package main

import (
	"context"
	"os"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main("catalog", setup)
}

func setup(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return runtime.Function{}, err
	}
	pool, err := db.OpenCurrent(ctx, cfg.DatabaseURL)
	if err != nil {
		return runtime.Function{}, err
	}
	return runtime.Function{
		Name:  "catalog",
		HTTP:  Routes(&Store{pool: pool}),
		Ready: pool.Ping,
		Close: func() error { pool.Close(); return nil },
	}, nil
}
