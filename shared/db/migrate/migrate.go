// Package migrate applies the marketplace schema: the numbered SQL files embedded in the schemas
// module, with goose, under a PostgreSQL session advisory lock, so many instances starting at
// once apply them exactly once. Applying is idempotent: a database that is up to date is left
// alone.
//
// Functions never import this package (package db only checks the version, see its doc); the
// migration Job (shared/db/cmd/migrate), the local stack and the test harness do.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/shared/db"
)

// Up applies every pending migration to the database at url. It holds an advisory lock while
// it runs.
func Up(ctx context.Context, url string) error {
	_, err := UpWithLog(ctx, url, nil)
	return err
}

// UpWithLog is Up that logs each applied migration to log (if not nil) and returns the applied
// versions.
func UpWithLog(ctx context.Context, url string, log *slog.Logger) ([]int64, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("db: DATABASE_URL is not a valid PostgreSQL connection string")
	}
	sqlDB := stdlib.OpenDB(*cfg.ConnConfig)
	defer sqlDB.Close()
	return up(ctx, sqlDB, log)
}

// Open is db.OpenCurrent that applies the pending migrations (under the advisory lock) when the
// database is behind and the role may (it is, or is a member of, the owner of goose's table),
// and returns db.ErrSchemaBehind when it may not. For tools and tests with one URL; functions
// use db.OpenCurrent.
func Open(ctx context.Context, url string, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, applied, latest, err := db.OpenChecked(ctx, url)
	if err != nil {
		return nil, err
	}
	if applied < latest {
		if err := db.MayMigrate(ctx, pool, applied, latest); err != nil {
			pool.Close()
			return nil, err
		}
		if _, err := UpWithLog(ctx, url, log); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

func up(ctx context.Context, sqlDB *sql.DB, log *slog.Logger) ([]int64, error) {
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
