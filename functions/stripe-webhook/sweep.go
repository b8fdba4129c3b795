package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
)

// endGraceExpired ends the access of subscriptions (all, or the one named) that have an
// invoice failed longer ago than the grace period and still unpaid: access_ended_at is set
// (reason payment_failed) and install.revoke.requested is written, once per subscription. It
// runs in tx and returns how many it ended.
func (h *Handler) endGraceExpired(ctx context.Context, tx pgx.Tx, subscriptionID string) (int, error) {
	now := h.now().UTC()
	rows, err := tx.Query(ctx, `UPDATE subscriptions s SET access_ended_at = $1, access_end_reason = 'payment_failed', updated_at = now()
		FROM (SELECT p.stripe_subscription_id AS sub, min(p.failed_at) AS since,
				(array_agg(p.id::text ORDER BY p.failed_at))[1] AS payment
			FROM payments p WHERE p.status = 'failed' AND p.stripe_subscription_id IS NOT NULL
				AND ($3 = '' OR p.stripe_subscription_id = $3)
			GROUP BY p.stripe_subscription_id) f
		WHERE s.stripe_subscription_id = f.sub AND s.access_ended_at IS NULL AND s.status <> 'canceled'
			AND f.since <= $2
		RETURNING s.stripe_subscription_id, s.user_id, s.integration_id::text, f.payment`,
		now, now.Add(-h.cfg.GracePeriod), subscriptionID)
	if err != nil {
		return 0, fmt.Errorf("grace periods: %w", err)
	}
	type ended struct{ sub, user, integration, payment string }
	var out []ended
	for rows.Next() {
		var e ended
		if err := rows.Scan(&e.sub, &e.user, &e.integration, &e.payment); err != nil {
			rows.Close()
			return 0, err
		}
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("grace periods: %w", err)
	}
	for _, e := range out {
		if err := h.emitRevoke(ctx, tx, e.sub, e.integration, e.user, e.payment, now); err != nil {
			return 0, err
		}
	}
	return len(out), nil
}

func (h *Handler) emitRevoke(ctx context.Context, tx pgx.Tx, sub, integration, user, payment string, at time.Time) error {
	w := &writer{h: h, tx: tx, res: &result{}}
	// The id is derived from the subscription: the grace period ends once per subscription.
	return w.emitKeyed(ctx, "grace/"+sub, events.TypeInstallRevokeRequested, integration, events.InstallRevokeRequested{
		IntegrationID: integration, UserID: user, Reason: events.RevokePaymentFailed, PaymentID: payment, RequestedAt: at,
	})
}

// Sweep ends every subscription whose grace period has passed, in one transaction, and
// returns how many it ended.
func (h *Handler) Sweep(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error {
		var err error
		n, err = h.endGraceExpired(ctx, tx, "")
		return err
	})
	return n, err
}

// RunSweep sweeps now and at every tick until ctx ends; errors are logged (the next tick
// tries again).
func (h *Handler) RunSweep(ctx context.Context, tick <-chan time.Time) {
	for {
		if n, err := h.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Error("grace period sweep failed", slog.Any("err", err))
		} else if n > 0 {
			h.log.Info("installs ended after the grace period", slog.Int("subscriptions", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}
