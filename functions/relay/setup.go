package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/logging"
)

// Setup makes sure the relay's replication slot exists (and the publication, which migration
// 00004 creates) and returns: the work of `relay -setup`, the one-shot Job a deployment runs
// with the relay's login role (which has REPLICATION) before the relay rolls out, so that the
// slot exists, and holds the WAL, from before the first outbox write. It is idempotent: a slot
// that exists, even one a running relay holds, is left alone. The relay still creates a missing
// slot at start (prepare), so local runs and tests need no Job.
func (r *Relay) Setup(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, r.sqlCfg)
	if err != nil {
		return fmt.Errorf("relay setup: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := r.prepare(ctx, conn); err != nil && !errors.Is(err, errSlotActive) {
		return fmt.Errorf("relay setup: %w", err)
	}
	return nil
}

// runSetup is main for -setup: cfg (from ConfigFromEnv, whose error is cfgErr) is the relay's
// own configuration, so the Job declares the same settings as the relay's Service. It returns
// the exit code.
func runSetup(cfg Config, cfgErr error) int {
	log := logging.New(os.Stdout, "relay", slog.LevelInfo)
	if cfgErr != nil {
		log.Error("invalid configuration", slog.Any("error", cfgErr))
		return 1
	}
	r, err := New(cfg, Deps{Logger: log})
	if err != nil {
		log.Error("invalid configuration", slog.Any("error", err))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := r.Setup(ctx); err != nil {
		log.Error("setup failed", slog.Any("error", err))
		return 1
	}
	log.Info("setup done: replication slot and publication exist", slog.String("slot", cfg.Slot), slog.String("publication", cfg.Publication))
	return 0
}
