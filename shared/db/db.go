// Package db opens the PostgreSQL pool of a function and checks that the schema is the one the
// build needs; package migrate (shared/db/migrate) applies the migrations.
//
// Migrations are the numbered SQL files embedded in the schemas module. They are applied by
// package migrate (goose, under a PostgreSQL session advisory lock, so many instances starting
// at once apply them exactly once), which functions do not import: goose, database/sql and
// pgx's stdlib driver stay out of every function binary (4 MB and a few milliseconds of start).
//
// # Who migrates
//
// Each function connects with a role of its own that holds only the privileges its SQL needs
// (roles.go, migration 00004, docs/decisions/0004-database-roles.md); such a role cannot run
// DDL. In a deployment the migrations are applied before the functions roll out, by a Job
// running command migrate (shared/db/cmd/migrate) with the migration-owner role, the owner of
// goose's table and of every table; locally the stack (make dev) and the test harness migrate
// before anything starts. A function only checks the version at start (OpenCurrent): current
// (or ahead, during a rollback), it starts; behind, it refuses to start with ErrSchemaBehind,
// naming both versions and the role, so the old revision keeps serving until the Job has run.
// migrate.Open is the same check that applies the migrations instead when the role may (tools
// and tests with one URL).
package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/schemas"
)

// Open connects a pool to url and checks that the server answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, cfg, err := newPool(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: ping %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// newPool makes the pool without connecting: pgxpool dials on the first acquire.
func newPool(ctx context.Context, url string) (*pgxpool.Pool, *pgxpool.Config, error) {
	if url == "" {
		return nil, nil, errors.New("db: DATABASE_URL is empty")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may echo the URL, password included; say only what is wrong.
		return nil, nil, errors.New("db: DATABASE_URL is not a valid PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("db: open pool: %w", err)
	}
	return pool, cfg, nil
}

// OpenCurrent opens a pool like Open and checks that the schema is current: one query reads
// the newest applied migration, to compare with the newest embedded one. A database that is
// behind gets ErrSchemaBehind (see the package doc). Functions that use the database call this
// at start-up, before they say they are ready.
func OpenCurrent(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, applied, latest, err := OpenChecked(ctx, url)
	if err != nil {
		return nil, err
	}
	if applied < latest {
		err := MayMigrate(ctx, pool, applied, latest)
		if err == nil { // the role could migrate; functions still never do
			err = fmt.Errorf("%w: it is at version %d and this build needs %d: run the migrations (command migrate) first", ErrSchemaBehind, applied, latest)
		}
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// OpenChecked opens a pool and returns the newest applied migration (0 when none is) and the
// newest embedded one, for the caller to decide.
//
// The check is the whole cost of a start on a current schema, so it is kept to one round trip
// after the connection: the version query is the first use of the pool (it dials the
// connection, and its answer proves the server answers, so there is no separate ping), and it
// is sent with the simple protocol (one message, where pgx's default prepares first, a second
// round trip). That connection stays in the pool for the function's first requests.
func OpenChecked(ctx context.Context, url string) (pool *pgxpool.Pool, applied, latest int64, err error) {
	pool, cfg, err := newPool(ctx, url)
	if err != nil {
		return nil, 0, 0, err
	}
	applied, latest, err = schemaVersion(ctx, pool)
	if err != nil {
		pool.Close()
		var connErr *pgconn.ConnectError
		var pgErr *pgconn.PgError
		if errors.As(err, &connErr) || !errors.As(err, &pgErr) { // no answer to the query itself
			return nil, 0, 0, fmt.Errorf("db: connect %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
		}
		return nil, 0, 0, fmt.Errorf("db: read schema version: %w", err)
	}
	return pool, applied, latest, nil
}

// ErrSchemaBehind is returned (wrapped) by OpenCurrent when the database lacks migrations this
// build needs (and by migrate.Open when the role it connects as may not apply them): the
// migration Job has not run.
var ErrSchemaBehind = errors.New("db: the database schema is behind this build")

// mayMigrateSQL reports the connected role, the owner of goose's table and whether the role
// may act as that owner (is it or a member of it, or a superuser); for a database without
// goose's table, whether the role may create tables in the current schema.
const mayMigrateSQL = `SELECT current_user::text, coalesce(o.rolname::text, ''),
	CASE WHEN c.oid IS NULL THEN coalesce(has_schema_privilege(current_schema(), 'CREATE'), false)
	     ELSE pg_has_role(current_user, c.relowner, 'USAGE') END
	FROM (SELECT to_regclass('goose_db_version') AS oid) t
	LEFT JOIN pg_class c ON c.oid = t.oid LEFT JOIN pg_roles o ON o.oid = c.relowner`

// MayMigrate returns nil when the role pool connects as may apply the pending migrations, and
// an ErrSchemaBehind naming both versions and the roles otherwise.
func MayMigrate(ctx context.Context, pool *pgxpool.Pool, applied, latest int64) error {
	var role, owner string
	var may bool
	if err := pool.QueryRow(ctx, mayMigrateSQL).Scan(&role, &owner, &may); err != nil {
		return fmt.Errorf("db: may role migrate: %w", err)
	}
	if may {
		return nil
	}
	if owner == "" {
		return fmt.Errorf("%w: it has no migrations applied and this build needs version %d; role %q may not apply them: run the migrations (command migrate, the migration Job) with the migration-owner role first",
			ErrSchemaBehind, latest, role)
	}
	return fmt.Errorf("%w: it is at version %d and this build needs %d; role %q may not apply migrations (they run as %q, the owner of goose_db_version): run the migration Job (command migrate) first",
		ErrSchemaBehind, applied, latest, role, owner)
}

// LatestVersion is the version of the newest embedded migration.
func LatestVersion() (int64, error) {
	entries, err := fs.ReadDir(schemas.Migrations, "migrations")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		digits := e.Name()
		if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i > 0 {
			digits = digits[:i]
		}
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("db: migration file %s does not start with a version number", e.Name())
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// schemaVersionSQL reads the newest applied migration; NULL when none is.
const schemaVersionSQL = `SELECT max(version_id) FROM goose_db_version WHERE is_applied`

// Version connects to url and returns the newest applied migration (0 when none is) and the
// newest embedded one, the version this build needs.
func Version(ctx context.Context, url string) (applied, latest int64, err error) {
	pool, cfg, err := newPool(ctx, url)
	if err != nil {
		return 0, 0, err
	}
	defer pool.Close()
	applied, latest, err = schemaVersion(ctx, pool)
	if err != nil {
		return 0, 0, fmt.Errorf("db: read schema version of %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return applied, latest, nil
}

// schemaVersion returns the newest applied migration (0 when none is: a database without
// goose's table has never been migrated, which is no error) and the newest embedded one.
func schemaVersion(ctx context.Context, pool *pgxpool.Pool) (applied, latest int64, err error) {
	latest, err = LatestVersion()
	if err != nil {
		return 0, 0, err
	}
	var v *int64
	err = pool.QueryRow(ctx, schemaVersionSQL, pgx.QueryExecModeSimpleProtocol).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return 0, latest, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if v != nil {
		applied = *v
	}
	return applied, latest, nil
}
