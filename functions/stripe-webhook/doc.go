// Command stripe-webhook receives Stripe's webhooks at POST /v1/webhooks/stripe (platform and
// connected-account events on one endpoint) and turns the ones the marketplace cares about into
// state (payments, subscriptions, developer accounts) and platform events, through the
// transactional outbox. The decisions behind it are in docs/decisions/0011-payments.md.
//
// # Request handling
//
//  1. The raw body is read up to MaxBody (512 KiB): larger is 413, before anything else.
//  2. The Stripe-Signature header is verified by stripe-go's webhook package against each
//     secret of STRIPE_WEBHOOK_SECRET (comma-separated, for rotation), with a 300 s tolerance.
//     A header with several v1 values (Stripe signs with the old and the new secret while one
//     is rolled) is accepted when any of them matches. Missing, malformed, wrong or stale
//     signatures are 400 problem+json naming Stripe-Signature; nothing is read further.
//  3. The body is decoded as a Stripe event: id (evt_), type, created, api_version (must be
//     stripe-go's pinned version), livemode (must match the mode of STRIPE_SECRET_KEY), and
//     data.object for the types handled. Anything wrong is 400 naming the field. Other event
//     types are answered 200 and ignored.
//  4. In one PostgreSQL transaction the event id is claimed (shared/inbox, consumer
//     "stripe-webhook", source "stripe"), its effects written and its platform events inserted
//     into the outbox; 200 only after the commit. A duplicate delivery finds the claim and
//     changes nothing. A database error is 503, so Stripe retries.
//
// # Ordering
//
// Stripe delivers late, twice and out of order. Each event carries created (seconds), and
// stripe_object_versions keeps, per Stripe object, the (created, rank) of the newest event
// applied. An object is applied only when its event is newer; within one second the rank
// breaks the tie towards the later, less privileged state (incomplete < trialing < active <
// paused < past_due < unpaid < incomplete_expired < canceled). A canceled subscription is
// terminal. Payments are per Stripe object too, with their own order: succeeded and refunded
// are never undone by a failure or a completion delivered late, and a refund that arrives
// before its payment is answered 503 (nothing written) so Stripe delivers it again later.
//
// # Events handled
//
//   - checkout.session.completed (and async_payment_succeeded), paid: a one-time purchase is a
//     payments row keyed by the session (fee from the session's platform_fee_cents metadata, else
//     PLATFORM_FEE_PERCENT); a subscription's first payment is the row of its first invoice.
//     payment.succeeded carries pending_install_id (metadata, else client_reference_id): the
//     install function continues that pending install to consent.
//   - invoice.paid: the invoice's payments row succeeded (fee = application_fee_amount);
//     payment.succeeded (pending_install_id only for the subscription's first invoice).
//   - invoice.payment_failed: the row failed, keeping the first failure's time; payment.failed.
//     When a subscription has an invoice failed longer than PAYMENT_GRACE_PERIOD and not paid
//     since, its access ends once (subscriptions.access_ended_at, reason payment_failed) and
//     install.revoke.requested (payment_failed) asks uninstall to end the install. This is
//     checked on each failure, when the function starts and every PAYMENT_SWEEP_INTERVAL.
//   - customer.subscription.created / updated / deleted: the subscription's current state;
//     subscription.updated; the first time it is over (canceled, incomplete_expired),
//     subscription.ended, on which uninstall revokes the install.
//   - charge.refunded (in full): the payment refunded; payment.refunded; for a one-time
//     purchase install.revoke.requested (refunded).
//   - account.updated: a connected account's charges/payouts/details flags, found by account id
//     or by the developer_id metadata the registry set (the webhook may beat the registry's
//     commit); developer.account.updated.
//   - account.application.deauthorized: the account can take no charges; the developer's paid
//     listings are unpublished (integration.unpublished each); developer.account.updated.
//
// Objects the platform did not create (no user_id / integration_id metadata naming an existing
// integration) are acknowledged 200 and logged, since a retry cannot help.
//
// # Configuration (environment)
//
//	DATABASE_URL            PostgreSQL connection URL (required)
//	STRIPE_WEBHOOK_SECRET   the endpoint's signing secret(s), comma-separated (required)
//	STRIPE_SECRET_KEY       the platform's key (required): its mode (sk_test_/sk_live_) is the
//	                        livemode events must carry
//	PLATFORM_FEE_PERCENT    platform fee, 0-50 (default 15), for payments that do not state it
//	PAYMENT_GRACE_PERIOD    unpaid renewal tolerated this long (Go duration, default 72h; 0 = none)
//	PAYMENT_SWEEP_INTERVAL  how often grace periods are checked while running (default 15m)
//	PORT, LOG_LEVEL, ...    see shared/runtime
package main
