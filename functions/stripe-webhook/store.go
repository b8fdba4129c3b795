package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v79"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/inbox"
	"github.com/myscrollr/connect/shared/outbox"
	"github.com/myscrollr/connect/shared/payments"
)

// consumer is this function's name in processed_events; claimSource is the source of every
// Stripe event there (Stripe's event ids are unique across accounts).
const (
	consumer    = "stripe-webhook"
	claimSource = "stripe"
)

// eventIDSpace is the namespace of the name-based UUIDs of outbox events, derived from the
// Stripe event id, so a redelivery that slipped past the claim would carry the same ids.
var eventIDSpace = uuid.MustParse("6b0c3f5e-1d7a-4e2b-9c48-5a1f0d2e7b93")

// Metadata keys the platform puts on Checkout Sessions and subscriptions (functions/install).
const (
	metaUser           = "user_id"
	metaIntegration    = "integration_id"
	metaPendingInstall = "pending_install_id"
	metaDeveloper      = "developer_id"
	metaFee            = "platform_fee_cents"
)

func handled(t stripe.EventType) bool {
	switch t {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded",
		"invoice.paid", "invoice.payment_failed",
		"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
		"charge.refunded", "account.updated", "account.application.deauthorized":
		return true
	}
	return false
}

type result struct {
	duplicate bool
	stale     bool   // the object was older than what is on record
	events    int    // outbox events written
	note      string // why nothing changed, when it did not
}

// writer applies one Stripe event in a transaction.
type writer struct {
	h   *Handler
	tx  pgx.Tx
	ev  *stripe.Event
	log *slog.Logger
	res *result
}

// apply claims the event and stores its effects and outbox events in one transaction.
func (h *Handler) apply(ctx context.Context, log *slog.Logger, ev *stripe.Event) (result, error) {
	var res result
	err := pgx.BeginFunc(ctx, h.pool, func(tx pgx.Tx) error {
		res = result{}
		claimed, err := inbox.Claim(ctx, tx, consumer, claimSource, ev.ID)
		if err != nil {
			return err
		}
		if !claimed {
			res.duplicate = true
			return nil
		}
		w := &writer{h: h, tx: tx, ev: ev, log: log, res: &res}
		switch ev.Type {
		case "checkout.session.completed", "checkout.session.async_payment_succeeded":
			return w.checkoutCompleted(ctx)
		case "invoice.paid", "invoice.payment_failed":
			return w.invoice(ctx, ev.Type == "invoice.paid")
		case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
			return w.subscription(ctx)
		case "charge.refunded":
			return w.chargeRefunded(ctx)
		case "account.updated":
			return w.accountUpdated(ctx)
		case "account.application.deauthorized":
			return w.accountDeauthorized(ctx)
		}
		return nil
	})
	return res, err
}

// object decodes data.object into dst; a malformed object is a 400 naming it.
func (w *writer) object(dst any) error {
	if err := json.Unmarshal(w.ev.Data.Raw, dst); err != nil {
		return httpx.BadRequest("the event cannot be processed", httpx.FieldError{Field: "data.object", Reason: clipErr(err)})
	}
	return nil
}

func (w *writer) at() time.Time { return time.Unix(w.ev.Created, 0).UTC() }

// emit writes one outbox event about integration (the Kafka key, so one integration's payment
// events stay in order); key tells two events of one type from one Stripe event apart.
func (w *writer) emit(ctx context.Context, typ, integrationID, key string, data any) error {
	return w.emitKeyed(ctx, w.ev.ID+"/"+typ+"/"+key, typ, integrationID, data)
}

// emitKeyed writes one outbox event whose id is derived from idKey.
func (w *writer) emitKeyed(ctx context.Context, idKey, typ, integrationID string, data any) error {
	ce, err := outbox.New(events.Source(consumer), typ, data)
	if err != nil {
		return err
	}
	ce.SetID(uuid.NewSHA1(eventIDSpace, []byte(idKey)).String())
	ce.SetTime(w.h.now().UTC())
	aggregate := "integration"
	if typ == events.TypeDeveloperAccountUpdated {
		aggregate = "developer" // keyed by the developer id
	}
	if _, err := outbox.Write(ctx, w.tx, outbox.Event{AggregateType: aggregate, AggregateID: integrationID, CloudEvent: ce}); err != nil {
		return err
	}
	w.res.events++
	return nil
}

// advance records that the event is the newest applied to objectID, when it is: a later
// created, or the same second with a higher rank (the state with fewer privileges). It
// reports false, changing nothing, for an event not newer than what is on record.
func (w *writer) advance(ctx context.Context, objectID string, rank int) (bool, error) {
	tag, err := w.tx.Exec(ctx, `INSERT INTO stripe_object_versions AS v (object_id, event_created, rank, event_id)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (object_id) DO UPDATE SET event_created = EXCLUDED.event_created, rank = EXCLUDED.rank,
			event_id = EXCLUDED.event_id, updated_at = now()
		WHERE (v.event_created, v.rank) < (EXCLUDED.event_created, EXCLUDED.rank)`, objectID, w.ev.Created, rank, w.ev.ID)
	if err != nil {
		return false, fmt.Errorf("object version %s: %w", objectID, err)
	}
	if tag.RowsAffected() == 0 {
		w.res.stale = true
		return false, nil
	}
	return true, nil
}

// owner is who a payment is for, from the metadata the platform set.
type owner struct {
	user, integration, pendingInstall string
}

// ownerFrom reads the metadata; ok is false when it does not name a user and an existing
// integration (an object the platform did not create: ignored).
func (w *writer) ownerFrom(ctx context.Context, md map[string]string) (owner, bool, error) {
	o := owner{user: md[metaUser], integration: md[metaIntegration], pendingInstall: md[metaPendingInstall]}
	if o.user == "" || len(o.user) > 128 || uuid.Validate(o.integration) != nil {
		return o, false, nil
	}
	if o.pendingInstall != "" && uuid.Validate(o.pendingInstall) != nil {
		o.pendingInstall = ""
	}
	var exists bool
	if err := w.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE id = $1)`, o.integration).Scan(&exists); err != nil {
		return o, false, fmt.Errorf("integration %s: %w", o.integration, err)
	}
	return o, exists, nil
}

func (w *writer) ignore(note string) error {
	w.res.note = note
	w.log.Warn("stripe webhook changed nothing", slog.String("why", note))
	return nil
}

// pay records a payment as succeeded (a one-time Checkout Session, or a subscription's
// invoice) and announces it once: only the delivery that moves the row to succeeded emits
// payment.succeeded. A refunded row stays refunded.
func (w *writer) pay(ctx context.Context, objectID, kind, subID, intentID string, o owner, amount, fee int64, currency string) error {
	if fee < 0 || fee > amount {
		fee = payments.Fee(amount, w.h.cfg.FeePercent)
	}
	var paymentID string
	err := w.tx.QueryRow(ctx, `INSERT INTO payments AS p (user_id, integration_id, stripe_object_id, stripe_subscription_id,
			amount_cents, platform_fee_cents, currency, status, kind, stripe_account_id, stripe_payment_intent_id,
			pending_install_id, paid_at)
		VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7, 'succeeded', $8, nullif($9, ''), nullif($10, ''), nullif($11, '')::uuid, $12)
		ON CONFLICT (stripe_object_id) DO UPDATE SET status = 'succeeded', amount_cents = EXCLUDED.amount_cents,
			platform_fee_cents = EXCLUDED.platform_fee_cents, currency = EXCLUDED.currency, paid_at = EXCLUDED.paid_at,
			stripe_payment_intent_id = coalesce(p.stripe_payment_intent_id, EXCLUDED.stripe_payment_intent_id),
			pending_install_id = coalesce(p.pending_install_id, EXCLUDED.pending_install_id), updated_at = now()
		WHERE p.status IN ('pending', 'failed')
		RETURNING id::text`,
		o.user, o.integration, objectID, subID, amount, fee, currency, kind, w.ev.Account, intentID, o.pendingInstall, w.at(),
	).Scan(&paymentID)
	if errors.Is(err, pgx.ErrNoRows) {
		return w.ignore("payment already recorded as " + objectID)
	}
	if err != nil {
		return fmt.Errorf("record payment %s: %w", objectID, err)
	}
	return w.emit(ctx, events.TypePaymentSucceeded, o.integration, objectID, events.PaymentSucceeded{
		PaymentID: paymentID, StripeObjectID: objectID, StripeSubscriptionID: subID, IntegrationID: o.integration,
		UserID: o.user, AmountCents: amount, PlatformFeeCents: fee, Currency: currency, PaidAt: w.at(),
		PendingInstallID: o.pendingInstall,
	})
}

func feeFromMetadata(md map[string]string) int64 {
	var fee int64 = -1
	if v, ok := md[metaFee]; ok {
		if _, err := fmt.Sscanf(v, "%d", &fee); err != nil {
			fee = -1
		}
	}
	return fee
}

// checkoutCompleted: a one-time purchase is paid by its session (the row is the session); a
// subscription's first payment is its first invoice (the row is the invoice, shared with that
// invoice's invoice.paid, so it is counted once). Either way payment.succeeded carries the
// pending install, which install continues to consent.
func (w *writer) checkoutCompleted(ctx context.Context) error {
	var s stripe.CheckoutSession
	if err := w.object(&s); err != nil {
		return err
	}
	if s.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid && s.PaymentStatus != stripe.CheckoutSessionPaymentStatusNoPaymentRequired {
		return w.ignore("session " + s.ID + " not paid yet (" + string(s.PaymentStatus) + ")")
	}
	o, ok, err := w.ownerFrom(ctx, s.Metadata)
	if err != nil || !ok {
		if err == nil {
			err = w.ignore("session " + s.ID + " names no user and integration of this platform")
		}
		return err
	}
	if o.pendingInstall == "" && uuid.Validate(s.ClientReferenceID) == nil {
		o.pendingInstall = s.ClientReferenceID
	}
	var intent string
	if s.PaymentIntent != nil {
		intent = s.PaymentIntent.ID
	}
	if s.Mode == stripe.CheckoutSessionModeSubscription {
		if s.Invoice == nil || s.Invoice.ID == "" || s.Subscription == nil {
			return w.ignore("subscription session " + s.ID + " without its invoice")
		}
		return w.pay(ctx, s.Invoice.ID, "subscription", s.Subscription.ID, intent, o, s.AmountTotal, -1, string(s.Currency))
	}
	return w.pay(ctx, s.ID, "one_time", "", intent, o, s.AmountTotal, feeFromMetadata(s.Metadata), string(s.Currency))
}

// invoice: a subscription's period paid, or its payment failed. Each invoice is one payments
// row; paid is terminal for it (a failure delivered after the payment changes nothing), and a
// failure keeps the time of the first one, from which the grace period runs.
func (w *writer) invoice(ctx context.Context, paid bool) error {
	var inv stripe.Invoice
	if err := w.object(&inv); err != nil {
		return err
	}
	if inv.Subscription == nil || inv.Subscription.ID == "" {
		return w.ignore("invoice " + inv.ID + " is not a subscription's")
	}
	var md map[string]string
	if inv.SubscriptionDetails != nil {
		md = inv.SubscriptionDetails.Metadata
	}
	o, ok, err := w.ownerFrom(ctx, md)
	if err != nil {
		return err
	}
	if !ok {
		// Older invoices lack subscription_details: the subscription's row says who pays.
		err := w.tx.QueryRow(ctx, `SELECT user_id, integration_id::text, coalesce(pending_install_id::text, '')
			FROM subscriptions WHERE stripe_subscription_id = $1`, inv.Subscription.ID).Scan(&o.user, &o.integration, &o.pendingInstall)
		if errors.Is(err, pgx.ErrNoRows) {
			return w.ignore("invoice " + inv.ID + " of a subscription that is not the platform's")
		}
		if err != nil {
			return fmt.Errorf("subscription of invoice %s: %w", inv.ID, err)
		}
	}
	if inv.BillingReason != stripe.InvoiceBillingReasonSubscriptionCreate {
		o.pendingInstall = "" // renewals continue no install
	}
	var intent string
	if inv.PaymentIntent != nil {
		intent = inv.PaymentIntent.ID
	}
	currency := string(inv.Currency)
	if paid {
		fee := inv.ApplicationFeeAmount
		if fee == 0 {
			fee = -1
		}
		if err := w.pay(ctx, inv.ID, "subscription", inv.Subscription.ID, intent, o, inv.AmountPaid, fee, currency); err != nil {
			return err
		}
		return nil
	}
	var paymentID string
	err = w.tx.QueryRow(ctx, `INSERT INTO payments AS p (user_id, integration_id, stripe_object_id, stripe_subscription_id,
			amount_cents, platform_fee_cents, currency, status, kind, stripe_account_id, stripe_payment_intent_id, failed_at)
		VALUES ($1, $2, $3, $4, $5, 0, $6, 'failed', 'subscription', nullif($7, ''), nullif($8, ''), $9)
		ON CONFLICT (stripe_object_id) DO UPDATE SET status = 'failed', failed_at = least(p.failed_at, EXCLUDED.failed_at), updated_at = now()
		WHERE p.status IN ('pending', 'failed') AND p.failed_at IS DISTINCT FROM least(p.failed_at, EXCLUDED.failed_at)
		RETURNING id::text`,
		o.user, o.integration, inv.ID, inv.Subscription.ID, inv.AmountDue, currency, w.ev.Account, intent, w.at()).Scan(&paymentID)
	if errors.Is(err, pgx.ErrNoRows) {
		return w.ignore("invoice " + inv.ID + " already paid, or its failure already on record")
	}
	if err != nil {
		return fmt.Errorf("record failed invoice %s: %w", inv.ID, err)
	}
	if err := w.emit(ctx, events.TypePaymentFailed, o.integration, inv.ID, events.PaymentFailed{
		PaymentID: paymentID, StripeObjectID: inv.ID, StripeSubscriptionID: inv.Subscription.ID, IntegrationID: o.integration,
		UserID: o.user, AmountCents: inv.AmountDue, Currency: currency, FailedAt: w.at(),
	}); err != nil {
		return err
	}
	_, err = w.h.endGraceExpired(ctx, w.tx, inv.Subscription.ID)
	return err
}

// statusRank orders subscription states of one second: the later in a subscription's life,
// and the fewer privileges, the higher. canceled is terminal.
func statusRank(s stripe.SubscriptionStatus) int {
	switch s {
	case stripe.SubscriptionStatusIncomplete:
		return 0
	case stripe.SubscriptionStatusTrialing:
		return 1
	case stripe.SubscriptionStatusActive:
		return 2
	case stripe.SubscriptionStatusPaused:
		return 3
	case stripe.SubscriptionStatusPastDue:
		return 4
	case stripe.SubscriptionStatusUnpaid:
		return 5
	case stripe.SubscriptionStatusIncompleteExpired:
		return 6
	case stripe.SubscriptionStatusCanceled:
		return 7
	}
	return -1
}

// subscription applies the subscription object when it is newer than the one on record, and
// announces it (subscription.updated); the first time it is over (canceled, or expired before
// its first payment) it also announces subscription.ended, which uninstall acts on.
func (w *writer) subscription(ctx context.Context) error {
	var s stripe.Subscription
	if err := w.object(&s); err != nil {
		return err
	}
	rank := statusRank(s.Status)
	if rank < 0 || s.ID == "" {
		return httpx.BadRequest("the event cannot be processed", httpx.FieldError{Field: "data.object.status", Reason: "unknown subscription status"})
	}
	o, ok, err := w.ownerFrom(ctx, s.Metadata)
	if err != nil || !ok {
		if err == nil {
			err = w.ignore("subscription " + s.ID + " names no user and integration of this platform")
		}
		return err
	}
	newer, err := w.advance(ctx, s.ID, rank)
	if err != nil || !newer {
		if err == nil {
			w.res.note = "an older state of " + s.ID
		}
		return err
	}
	var periodEnd *time.Time
	if s.CurrentPeriodEnd > 0 {
		t := time.Unix(s.CurrentPeriodEnd, 0).UTC()
		periodEnd = &t
	}
	var customer string
	if s.Customer != nil {
		customer = s.Customer.ID
	}
	ended := s.Status == stripe.SubscriptionStatusCanceled || s.Status == stripe.SubscriptionStatusIncompleteExpired
	var endedAt *time.Time
	if ended {
		t := w.at()
		if s.EndedAt > 0 {
			t = time.Unix(s.EndedAt, 0).UTC()
		}
		endedAt = &t
	}
	// The end is announced once: by the first state that ends a subscription whose access has
	// not ended yet. (advance holds the object's row lock, so events of one subscription run
	// one at a time.)
	var accessEnded bool
	err = w.tx.QueryRow(ctx, `SELECT access_ended_at IS NOT NULL FROM subscriptions WHERE stripe_subscription_id = $1`, s.ID).Scan(&accessEnded)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("subscription %s: %w", s.ID, err)
	}
	announceEnd := ended && !accessEnded
	// A canceled row never changes again (Stripe cannot revive a canceled subscription).
	_, err = w.tx.Exec(ctx, `INSERT INTO subscriptions AS s (stripe_subscription_id, user_id, integration_id, pending_install_id,
			stripe_account_id, stripe_customer_id, status, cancel_at_period_end, current_period_end, ended_at,
			access_ended_at, access_end_reason)
		VALUES ($1, $2, $3, nullif($4, '')::uuid, nullif($5, ''), nullif($6, ''), $7, $8, $9, $10,
			CASE WHEN $11 THEN $12::timestamptz END, CASE WHEN $11 THEN 'subscription_ended' END)
		ON CONFLICT (stripe_subscription_id) DO UPDATE SET status = EXCLUDED.status,
			cancel_at_period_end = EXCLUDED.cancel_at_period_end, current_period_end = EXCLUDED.current_period_end,
			ended_at = EXCLUDED.ended_at,
			access_ended_at = coalesce(s.access_ended_at, EXCLUDED.access_ended_at),
			access_end_reason = coalesce(s.access_end_reason, EXCLUDED.access_end_reason), updated_at = now()
		WHERE s.status <> 'canceled'`,
		s.ID, o.user, o.integration, o.pendingInstall, w.ev.Account, customer, string(s.Status), s.CancelAtPeriodEnd,
		periodEnd, endedAt, ended, w.h.now().UTC())
	if err != nil {
		return fmt.Errorf("store subscription %s: %w", s.ID, err)
	}
	up := events.SubscriptionUpdated{StripeSubscriptionID: s.ID, IntegrationID: o.integration, UserID: o.user,
		Status: string(s.Status), CancelAtPeriodEnd: s.CancelAtPeriodEnd, UpdatedAt: w.at()}
	if periodEnd != nil {
		up.CurrentPeriodEnd = *periodEnd
	}
	if err := w.emit(ctx, events.TypeSubscriptionUpdated, o.integration, s.ID, up); err != nil {
		return err
	}
	if !announceEnd {
		return nil
	}
	var reason string
	if s.CancellationDetails != nil {
		reason = string(s.CancellationDetails.Reason)
	}
	return w.emit(ctx, events.TypeSubscriptionEnded, o.integration, s.ID, events.SubscriptionEnded{
		StripeSubscriptionID: s.ID, IntegrationID: o.integration, UserID: o.user, Reason: reason, EndedAt: *endedAt,
	})
}

// errRetry is a 503: the event refers to something not on record yet; Stripe retries it.
func errRetry(what string) error {
	return httpx.Unavailable(what+" is not recorded yet; retry later", nil)
}

// chargeRefunded: a fully refunded charge refunds its payment (found by payment intent) once;
// a refunded one-time purchase also asks uninstall to end the install.
func (w *writer) chargeRefunded(ctx context.Context) error {
	var c stripe.Charge
	if err := w.object(&c); err != nil {
		return err
	}
	if !c.Refunded {
		return w.ignore("charge " + c.ID + " refunded in part")
	}
	if c.PaymentIntent == nil || c.PaymentIntent.ID == "" {
		return w.ignore("charge " + c.ID + " without a payment intent")
	}
	var p struct {
		id, object, sub, user, integration, kind string
	}
	err := w.tx.QueryRow(ctx, `UPDATE payments SET status = 'refunded', refunded_at = $2, updated_at = now()
		WHERE stripe_payment_intent_id = $1 AND status <> 'refunded'
		RETURNING id::text, stripe_object_id, coalesce(stripe_subscription_id, ''), user_id, integration_id::text, kind`,
		c.PaymentIntent.ID, w.at()).Scan(&p.id, &p.object, &p.sub, &p.user, &p.integration, &p.kind)
	if errors.Is(err, pgx.ErrNoRows) {
		var known bool
		if err := w.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM payments WHERE stripe_payment_intent_id = $1)`, c.PaymentIntent.ID).Scan(&known); err != nil {
			return fmt.Errorf("payment of %s: %w", c.PaymentIntent.ID, err)
		}
		if known {
			return w.ignore("payment of " + c.PaymentIntent.ID + " already refunded")
		}
		// Out of order: the refund came before the payment. Stripe retries; nothing is written.
		return errRetry("the payment of " + c.PaymentIntent.ID)
	}
	if err != nil {
		return fmt.Errorf("refund %s: %w", c.PaymentIntent.ID, err)
	}
	if err := w.emit(ctx, events.TypePaymentRefunded, p.integration, p.object, events.PaymentRefunded{
		PaymentID: p.id, StripeObjectID: p.object, StripeSubscriptionID: p.sub, IntegrationID: p.integration, UserID: p.user,
		AmountCents: c.AmountRefunded, Currency: string(c.Currency), RefundedAt: w.at(),
	}); err != nil {
		return err
	}
	if p.kind != "one_time" {
		return nil
	}
	return w.emit(ctx, events.TypeInstallRevokeRequested, p.integration, p.object, events.InstallRevokeRequested{
		IntegrationID: p.integration, UserID: p.user, Reason: events.RevokeRefunded, PaymentID: p.id, RequestedAt: w.at(),
	})
}

// accountUpdated keeps a connected account's capabilities, newest state first. The account
// is found by its id, else by the developer_id the registry put in its metadata (the webhook
// can arrive before the registry's own commit). A deauthorized account stays disabled.
func (w *writer) accountUpdated(ctx context.Context) error {
	var a stripe.Account
	if err := w.object(&a); err != nil {
		return err
	}
	if a.ID == "" {
		return httpx.BadRequest("the event cannot be processed", httpx.FieldError{Field: "data.object.id", Reason: "missing"})
	}
	newer, err := w.advance(ctx, a.ID, 0)
	if err != nil || !newer {
		return err
	}
	dev := a.Metadata[metaDeveloper]
	var developer string
	var deauthorized bool
	err = w.tx.QueryRow(ctx, `UPDATE developer_accounts SET charges_enabled = $2 AND deauthorized_at IS NULL,
			payouts_enabled = $3 AND deauthorized_at IS NULL, details_submitted = $4, updated_at = now()
		WHERE stripe_account_id = $1 RETURNING developer_id, deauthorized_at IS NOT NULL`,
		a.ID, a.ChargesEnabled, a.PayoutsEnabled, a.DetailsSubmitted).Scan(&developer, &deauthorized)
	if errors.Is(err, pgx.ErrNoRows) {
		if dev == "" || len(dev) > 128 {
			return w.ignore("account " + a.ID + " is not a developer's")
		}
		err = w.tx.QueryRow(ctx, `INSERT INTO developer_accounts AS d (developer_id, stripe_account_id, charges_enabled, payouts_enabled, details_submitted)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (developer_id) DO UPDATE SET stripe_account_id = EXCLUDED.stripe_account_id,
				charges_enabled = EXCLUDED.charges_enabled, payouts_enabled = EXCLUDED.payouts_enabled,
				details_submitted = EXCLUDED.details_submitted, updated_at = now()
			WHERE d.stripe_account_id IS NULL
			RETURNING developer_id, false`, dev, a.ID, a.ChargesEnabled, a.PayoutsEnabled, a.DetailsSubmitted).Scan(&developer, &deauthorized)
		if errors.Is(err, pgx.ErrNoRows) {
			return w.ignore("developer " + dev + " has another account than " + a.ID)
		}
	}
	if err != nil {
		return fmt.Errorf("account %s: %w", a.ID, err)
	}
	return w.emit(ctx, events.TypeDeveloperAccountUpdated, developer, a.ID, events.DeveloperAccountUpdated{
		DeveloperID: developer, StripeAccountID: a.ID, ChargesEnabled: a.ChargesEnabled && !deauthorized,
		PayoutsEnabled: a.PayoutsEnabled && !deauthorized, DetailsSubmitted: a.DetailsSubmitted, Deauthorized: deauthorized,
		UpdatedAt: w.at(),
	})
}

// accountDeauthorized: the developer's account left the platform. It can take no charges, and
// the developer's paid listings leave the catalog (integration.unpublished each).
func (w *writer) accountDeauthorized(ctx context.Context) error {
	acct := w.ev.Account
	if acct == "" {
		return httpx.BadRequest("the event cannot be processed", httpx.FieldError{Field: "account", Reason: "missing: the connected account that deauthorized"})
	}
	var developer string
	err := w.tx.QueryRow(ctx, `UPDATE developer_accounts SET charges_enabled = false, payouts_enabled = false,
			deauthorized_at = coalesce(deauthorized_at, $2), updated_at = now()
		WHERE stripe_account_id = $1 RETURNING developer_id`, acct, w.at()).Scan(&developer)
	if errors.Is(err, pgx.ErrNoRows) {
		return w.ignore("account " + acct + " is not a developer's")
	}
	if err != nil {
		return fmt.Errorf("deauthorize %s: %w", acct, err)
	}
	rows, err := w.tx.Query(ctx, `UPDATE integrations SET is_published = false, updated_at = now()
		WHERE developer_id = $1 AND pricing_model <> 'free' AND is_published RETURNING id::text, name`, developer)
	if err != nil {
		return fmt.Errorf("unpublish %s: %w", developer, err)
	}
	type listing struct{ id, name string }
	var gone []listing
	for rows.Next() {
		var l listing
		if err := rows.Scan(&l.id, &l.name); err != nil {
			rows.Close()
			return err
		}
		gone = append(gone, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("unpublish %s: %w", developer, err)
	}
	ids := []string{}
	for _, l := range gone {
		ids = append(ids, l.id)
		if err := w.emit(ctx, events.TypeIntegrationUnpublished, l.id, l.id, events.IntegrationUnpublished{
			IntegrationID: l.id, Name: l.name, Reason: "the developer's Stripe account was disconnected", UnpublishedAt: w.at(),
		}); err != nil {
			return err
		}
	}
	return w.emit(ctx, events.TypeDeveloperAccountUpdated, developer, acct, events.DeveloperAccountUpdated{
		DeveloperID: developer, StripeAccountID: acct, Deauthorized: true, Unpublished: ids, UpdatedAt: w.at(),
	})
}
