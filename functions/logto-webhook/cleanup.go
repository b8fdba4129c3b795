package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// cleanupBatch bounds the rows one cleanup statement deletes, so a large backlog never holds
// one long transaction.
const cleanupBatch = 5000

// Cleanup deletes the tombstones recorded before now minus Config.TombstoneRetention, in
// batches, and returns how many it deleted. It is idempotent: running it again, or on several
// instances at once, deletes nothing more than the expired rows.
func (h *Handler) Cleanup(ctx context.Context) (int64, error) {
	cutoff := h.now().UTC().Add(-h.cfg.TombstoneRetention)
	var total int64
	for {
		tag, err := h.pool.Exec(ctx, `DELETE FROM logto_tombstones WHERE (kind, id) IN
			(SELECT kind, id FROM logto_tombstones WHERE recorded_at < $1 ORDER BY recorded_at LIMIT $2)`, cutoff, cleanupBatch)
		if err != nil {
			return total, fmt.Errorf("logto-webhook: delete expired tombstones: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < cleanupBatch {
			return total, nil
		}
	}
}

// RunCleanup runs Cleanup at once and then at every tick, until ctx ends. A failure is logged
// and left to the next tick: an expired tombstone kept a little longer harms nothing. done,
// when not nil, is called after each run (tests use it to wait for a run).
func (h *Handler) RunCleanup(ctx context.Context, ticks <-chan time.Time, done func(deleted int64, err error)) {
	for {
		n, err := h.Cleanup(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			h.log.Warn("tombstone cleanup", slog.Any("error", err))
		case n > 0:
			h.log.Info("tombstone cleanup", slog.Int64("deleted", n))
		}
		if done != nil {
			done(n, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}
