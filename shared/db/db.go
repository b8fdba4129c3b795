// Package db opens the PostgreSQL pool of a function and applies the marketplace schema.
//
// Migrations are the numbered SQL files embedded in the schemas module, applied by goose under a
// PostgreSQL session advisory lock, so many function instances starting at once apply them
// exactly once. Applying is idempotent: a database that is up to date is left alone.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

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

// OpenMigrated opens a pool like Open and makes sure the schema is current: one query reads the
// newest applied migration, to compare with the newest embedded one, and only when the
// database is behind are the migrations applied (under the advisory lock). Functions that use
// the database call this at start-up, before they say they are ready.
//
// The check is the whole cost of a start on a current schema, so it is kept to one round trip
// after the connection: the version query is the first use of the pool (it dials the
// connection, and its answer proves the server answers, so there is no separate ping), and it
// is sent with the simple protocol (one message, where pgx's default prepares first, a second
// round trip). That connection stays in the pool for the function's first requests.
func OpenMigrated(ctx context.Context, url string, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, cfg, err := newPool(ctx, url)
	if err != nil {
		return nil, err
	}
	current, err := schemaCurrent(ctx, pool)
	if err != nil {
		pool.Close()
		var connErr *pgconn.ConnectError
		var pgErr *pgconn.PgError
		if errors.As(err, &connErr) || !errors.As(err, &pgErr) { // no answer to the query itself
			return nil, fmt.Errorf("db: connect %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
		}
		return nil, fmt.Errorf("db: read schema version: %w", err)
	}
	if !current {
		if _, err := MigrateWithLog(ctx, url, log); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
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

// schemaCurrent reports whether the newest embedded migration is applied. A database without
// goose's table has never been migrated: not current, no error.
func schemaCurrent(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	latest, err := LatestVersion()
	if err != nil {
		return false, err
	}
	var applied *int64
	err = pool.QueryRow(ctx, schemaVersionSQL, pgx.QueryExecModeSimpleProtocol).Scan(&applied)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return applied != nil && *applied >= latest, nil
}

// Migrate applies every pending migration to the database at url and returns the versions it
// applied. It holds an advisory lock while it runs.
func Migrate(ctx context.Context, url string) error {
	_, err := MigrateWithLog(ctx, url, nil)
	return err
}

// MigrateWithLog is Migrate that logs each applied migration to log (if not nil) and returns
// the applied versions.
func MigrateWithLog(ctx context.Context, url string, log *slog.Logger) ([]int64, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("db: DATABASE_URL is not a valid PostgreSQL connection string")
	}
	sqlDB := stdlib.OpenDB(*cfg.ConnConfig)
	defer sqlDB.Close()
	return migrate(ctx, sqlDB, log)
}

func migrate(ctx context.Context, sqlDB *sql.DB, log *slog.Logger) ([]int64, error) {
	migrations, err := fs.Sub(schemas.Migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("db: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: apply migrations: %w", err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
		if log != nil {
			log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
	}
	return applied, nil
}
