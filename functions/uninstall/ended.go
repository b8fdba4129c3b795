package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/inbox"
)

// subscriptionEnded revokes the user's install of the integration whose subscription ended
// (reason subscription_ended).
func (s *Service) subscriptionEnded(ctx context.Context, e event.Event) error {
	if err := checkEvent(e); err != nil {
		return err
	}
	var d events.SubscriptionEnded
	if err := e.DataAs(&d); err != nil {
		return events.Permanent(fmt.Errorf("uninstall: data of %s: %w", e.Type(), err))
	}
	return s.revokeForEvent(ctx, e, d.UserID, d.IntegrationID, events.RevokeSubscriptionEnd)
}

// revokeRequested revokes the install the payments ask to end, with their reason
// (payment_failed or refunded; the JSON Schema admits no other).
func (s *Service) revokeRequested(ctx context.Context, e event.Event) error {
	if err := checkEvent(e); err != nil {
		return err
	}
	var d events.InstallRevokeRequested
	if err := e.DataAs(&d); err != nil {
		return events.Permanent(fmt.Errorf("uninstall: data of %s: %w", e.Type(), err))
	}
	if d.Reason != events.RevokePaymentFailed && d.Reason != events.RevokeRefunded {
		return events.Permanent(fmt.Errorf("uninstall: data of %s: field \"reason\": %q is not payment_failed or refunded", e.Type(), d.Reason))
	}
	return s.revokeForEvent(ctx, e, d.UserID, d.IntegrationID, d.Reason)
}

// revokeForEvent ends one install for a consumed event, idempotently: the event is claimed
// (shared/inbox) in the transaction that deletes the install, a committed event is skipped
// before Logto is called, and the install.revoked id is derived from the event.
func (s *Service) revokeForEvent(ctx context.Context, e event.Event, userID, integrationID, reason string) error {
	if r := badText(userID, maxUserIDBytes); r != "" {
		return events.Permanent(fmt.Errorf("uninstall: data of %s: field \"user_id\": %s", e.Type(), r))
	}
	id, err := uuid.Parse(integrationID)
	if err != nil {
		return events.Permanent(fmt.Errorf("uninstall: data of %s: field \"integration_id\": not a UUID", e.Type()))
	}
	log := s.logger(ctx).With(slog.String("user_id", userID), slog.String("integration_id", id.String()),
		slog.String("event_id", e.ID()), slog.String("reason", reason))
	done, err := inbox.Seen(ctx, s.pool, consumer, e.Source(), e.ID())
	if err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	if done {
		log.Debug("already handled")
		return nil
	}
	claim := func(ctx context.Context, tx pgx.Tx) (bool, error) {
		return inbox.Claim(ctx, tx, consumer, e.Source(), e.ID())
	}
	ref, err := integrationByID(ctx, s.pool, id.String())
	if errors.Is(err, pgx.ErrNoRows) {
		// The integration is gone, and its installs with it (ON DELETE CASCADE).
		log.Info("integration not found: nothing to revoke")
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { _, err := claim(ctx, tx); return err })
	}
	if err != nil {
		return err
	}
	res, err := s.revokeInstall(ctx, revocation{UserID: userID, Integration: ref, Reason: reason,
		Claim: claim, EventID: derivedEventID(e.Source(), e.ID())})
	if err != nil {
		return err // ErrLogto included: redelivered
	}
	log.Info("install revoked", slog.Bool("revoked", res.Revoked), slog.String("install_id", res.InstallID))
	return nil
}

// integrationByID reads the integration; pgx.ErrNoRows when there is none.
func integrationByID(ctx context.Context, q querier, id string) (integrationRef, error) {
	return integrationWhere(ctx, q, `id = $1::uuid`, id)
}

// integrationByName reads the integration; pgx.ErrNoRows when there is none.
func integrationByName(ctx context.Context, q querier, name string) (integrationRef, error) {
	return integrationWhere(ctx, q, `name = $1`, name)
}

func integrationWhere(ctx context.Context, q querier, cond string, arg string) (integrationRef, error) {
	rows, err := q.Query(ctx, `SELECT id::text, name, logto_app_id FROM integrations WHERE `+cond, arg)
	if err != nil {
		return integrationRef{}, fmt.Errorf("uninstall: find integration: %w", err)
	}
	ref, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[integrationRef])
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return integrationRef{}, fmt.Errorf("uninstall: find integration: %w", err)
	}
	return ref, err
}
