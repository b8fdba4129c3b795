package main

// The platform event install consumes at POST /events: com.myscrollr.connect.payment.succeeded
// (functions/stripe-webhook, Trigger install-payment-succeeded). One that names a pending
// install continues it to consent (ContinueAfterPayment); renewals name none and are ignored.
//
// Idempotency: ContinueAfterPayment is itself idempotent for one payment, and the event is
// claimed in processed_events (shared/inbox, consumer "install", the CloudEvent source + id)
// once it has been handled, so a redelivery of a handled event changes nothing (it is skipped
// before anything is read). A pending install that is gone (completed, replaced, its
// integration deleted) or already continued by another payment is claimed and logged: a retry
// cannot help. Anything else (the database down) is an ordinary error: Knative redelivers.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/eventschema"
	"github.com/myscrollr/connect/shared/inbox"
)

// consumer is this function's name in processed_events.
const consumer = "install"

// Bounds of the claimed key (processed_events: id and source).
const (
	maxEventIDBytes     = 256
	maxEventSourceBytes = 1024
)

// HandleEvent handles the platform events install's Triggers deliver; any other type is a
// permanent error (dead letter), since no Trigger should send it.
func (s *Service) HandleEvent(ctx context.Context, e event.Event) error {
	switch e.Type() {
	case events.TypePaymentSucceeded:
		return s.paymentSucceeded(ctx, e)
	default:
		return events.Permanent(fmt.Errorf("install: unexpected event type %q", e.Type()))
	}
}

func (s *Service) paymentSucceeded(ctx context.Context, e event.Event) error {
	if id := e.ID(); id == "" || len(id) > maxEventIDBytes || !utf8.ValidString(id) {
		return events.Permanent(fmt.Errorf("install: %s event: attribute \"id\": empty, over %d bytes or not UTF-8", e.Type(), maxEventIDBytes))
	}
	if src := e.Source(); src == "" || len(src) > maxEventSourceBytes || !utf8.ValidString(src) {
		return events.Permanent(fmt.Errorf("install: %s event: attribute \"source\": empty, over %d bytes or not UTF-8", e.Type(), maxEventSourceBytes))
	}
	if err := eventschema.Validate(e.Type(), e.Data()); err != nil {
		var se *eventschema.Error
		if errors.As(err, &se) {
			return events.Permanent(fmt.Errorf("install: %w", err))
		}
		return fmt.Errorf("install: validate %s: %w", e.Type(), err)
	}
	var d events.PaymentSucceeded
	if err := e.DataAs(&d); err != nil {
		return events.Permanent(fmt.Errorf("install: data of %s: %w", e.Type(), err))
	}
	log := s.log.With(slog.String("event_id", e.ID()), slog.String("payment_id", d.PaymentID),
		slog.String("pending_install_id", d.PendingInstallID))
	if d.PendingInstallID == "" {
		log.Debug("payment continues no install (a renewal)")
		return nil
	}
	if uuid.Validate(d.PendingInstallID) != nil {
		return events.Permanent(fmt.Errorf("install: data of %s: field \"pending_install_id\": not a UUID", e.Type()))
	}
	if uuid.Validate(d.PaymentID) != nil {
		return events.Permanent(fmt.Errorf("install: data of %s: field \"payment_id\": not a UUID", e.Type()))
	}
	done, err := inbox.Seen(ctx, s.pool, consumer, e.Source(), e.ID())
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if done {
		log.Debug("already handled")
		return nil
	}
	// The payment must be for the pending install's user and integration: a payment of
	// someone else never opens another person's consent.
	var user, integrationID string
	err = s.pool.QueryRow(ctx, `SELECT user_id, integration_id::text FROM install_attempts WHERE id = $1`, d.PendingInstallID).
		Scan(&user, &integrationID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		log.Warn("payment for a pending install that no longer exists")
		return s.claimEvent(ctx, e)
	case err != nil:
		return fmt.Errorf("install: pending install %s: %w", d.PendingInstallID, err)
	case user != d.UserID || integrationID != d.IntegrationID:
		log.Warn("payment names another user or integration than its pending install; ignored")
		return s.claimEvent(ctx, e)
	}
	_, err = s.ContinueAfterPayment(ctx, d.PendingInstallID, d.PaymentID)
	switch {
	case errors.Is(err, ErrNoPendingInstall), errors.Is(err, ErrNotAwaitingPayment):
		log.Warn("payment did not continue its pending install", slog.String("why", err.Error()))
	case err != nil:
		return err
	default:
		log.Info("paid install continued to consent")
	}
	return s.claimEvent(ctx, e)
}

// claimEvent records e as handled.
func (s *Service) claimEvent(ctx context.Context, e event.Event) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := inbox.Claim(ctx, tx, consumer, e.Source(), e.ID())
		return err
	})
}
