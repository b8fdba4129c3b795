package main

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config is the catalog's configuration, read from the environment by ConfigFromEnv. The
// runtime's own settings (PORT, LOG_LEVEL, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required) is the PostgreSQL database holding the catalog;
	// the schema version is checked at start (shared/db.OpenCurrent: a function never
	// migrates; the migration Job or make dev does).
	DatabaseURL string
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{DatabaseURL: strings.TrimSpace(getenv("DATABASE_URL"))}
	return c, c.validate()
}

// validate names the field and the environment variable of every problem.
func (c Config) validate() error {
	if c.DatabaseURL == "" {
		return errors.New("catalog: Config.DatabaseURL (DATABASE_URL): required")
	}
	if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
		// pgconn's message may echo the password; say only what is wrong.
		return errors.New("catalog: Config.DatabaseURL (DATABASE_URL): not a valid PostgreSQL connection string")
	}
	return nil
}
