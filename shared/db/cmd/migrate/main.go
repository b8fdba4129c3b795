// Command migrate applies the pending migrations of the marketplace schema to DATABASE_URL and
// exits: the migration Job a deployment runs before the functions roll out, with the
// migration-owner role (the owner of every table and of goose's table; it needs CREATEROLE the
// first time, when migration 00004 creates the functions' group roles, and CREATE on the
// database for the publication). The functions' own roles cannot run DDL; they only check the
// version at start (shared/db.OpenCurrent). See docs/decisions/0004-database-roles.md.
//
// It is safe to run again and from several Jobs at once: goose holds an advisory lock and a
// current schema is left alone. With -check it applies nothing and exits 0 when the schema is
// current, 3 when it is behind.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/db/migrate"
	"github.com/myscrollr/connect/shared/logging"
)

func main() {
	check := flag.Bool("check", false, "apply nothing: exit 0 when the schema is current, 3 when it is behind")
	flag.Parse()
	log := logging.New(os.Stdout, "migrate", slog.LevelInfo)
	url := strings.TrimSpace(os.Getenv("DATABASE_URL"))
	if url == "" {
		log.Error("invalid configuration", slog.Any("error", errors.New("DATABASE_URL: required (the migration-owner role's URL)")))
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *check {
		applied, latest, err := db.Version(ctx, url)
		if err != nil {
			log.Error("read schema version", slog.Any("error", err))
			os.Exit(1)
		}
		log.Info("schema version", slog.Int64("applied", applied), slog.Int64("needed", latest))
		if applied < latest {
			os.Exit(3)
		}
		return
	}
	applied, err := migrate.UpWithLog(ctx, url, log)
	if err != nil {
		log.Error("migrate", slog.Any("error", err))
		os.Exit(1)
	}
	log.Info("schema current", slog.Int("applied_now", len(applied)))
}
