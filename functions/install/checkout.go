package main

// Checkout: how a paid pending install reaches Stripe Checkout.
//
// A paid listing's pending install (install_attempts, status awaiting_payment) gets one Stripe
// Checkout Session on the developer's connected account (direct charges: Stripe-Account
// header, docs/decisions/0011-payments.md). It is created under the install lock of migration
// 00008, in the transaction that stores it in install_checkouts, with Idempotency-Key
// payments.IdempotencyKey("checkout", pending install id): a crash or a failed commit after
// Stripe answered makes the next POST /v1/installs send the same key, and Stripe answers the
// same session instead of making a second one. A repeat while the stored session is open
// answers it without calling Stripe. A session past its expiry is replaced by a new one whose
// key is derived from the pending install id and the expired session's id (durable, so the
// replacement is idempotent too).
//
// Stripe's expires_at is taken as the session's end. When it is not in the future (stripe-mock
// answers fixtures dated 2009) Stripe's default life of a session, 24 hours, is assumed.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/client"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/payments"
)

// Metadata keys on a Checkout Session and its subscription (functions/stripe-webhook reads
// them).
const (
	metaUser           = "user_id"
	metaIntegration    = "integration_id"
	metaPendingInstall = "pending_install_id"
	metaFee            = "platform_fee_cents"
)

// Checkout modes (install_checkouts.mode, Stripe's mode).
const (
	modePayment      = "payment"
	modeSubscription = "subscription"
)

// sessionLifetime is Stripe's default life of a Checkout Session, assumed when Stripe's own
// expires_at is not in the future.
const sessionLifetime = 24 * time.Hour

// sessionMargin: a stored session this close to its end is replaced rather than answered, so
// the user is not sent to a page that expires while it loads.
const sessionMargin = 5 * time.Minute

// checkouts creates Checkout Sessions through the platform's Stripe client.
type checkouts struct {
	api *client.API
	fee int // percent, from PLATFORM_FEE_PERCENT
}

// newCheckouts returns nil when cfg is nil (payments not configured). hc sends to Stripe (nil:
// payments.NewClient's default, 30 s).
func newCheckouts(cfg *payments.Config, hc *http.Client) *checkouts {
	if cfg == nil {
		return nil
	}
	return &checkouts{api: payments.NewClient(*cfg, hc), fee: cfg.Fee()}
}

// account is the developer's connected account that takes the charge.
type account struct {
	ID string // acct_...
}

// notChargeable is the 422 of a paid listing whose developer cannot take charges yet.
func notChargeable(name, why string) *httpx.Problem {
	return &httpx.Problem{Title: http.StatusText(http.StatusUnprocessableEntity), Status: http.StatusUnprocessableEntity,
		Detail: strconv.Quote(name) + " cannot be bought right now: its developer's Stripe account " + why,
		Errors: []httpx.FieldError{{Field: "integration", Reason: "the developer's Stripe account " + why}}}
}

// chargeableAccount returns the developer's account for a paid, non-sandbox install of l, nil
// for every other install. It is checked before the attempt is made, so an install that cannot
// be paid writes nothing and announces nothing.
func (s *Service) chargeableAccount(ctx context.Context, user string, l *listing) (*account, error) {
	if l.PricingModel == events.PricingFree || !l.Published { // free, or a sandbox install (never charged)
		return nil, nil
	}
	if s.pay == nil {
		return nil, httpx.Unavailable("payments are not configured, so paid integrations cannot be installed", nil)
	}
	var id *string
	var charges, deauthorized bool
	err := s.pool.QueryRow(ctx, `SELECT stripe_account_id, charges_enabled, deauthorized_at IS NOT NULL
		FROM developer_accounts WHERE developer_id = $1`, l.DeveloperID).Scan(&id, &charges, &deauthorized)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || err == nil && id == nil:
		return nil, notChargeable(l.Name, "is not set up")
	case err != nil:
		return nil, fmt.Errorf("install: developer account of %s: %w", l.Name, err)
	case deauthorized:
		return nil, notChargeable(l.Name, "has disconnected from the platform")
	case !charges:
		return nil, notChargeable(l.Name, "cannot take charges yet")
	}
	return &account{ID: *id}, nil
}

// storedCheckout is an install_checkouts row.
type storedCheckout struct {
	SessionID, URL string
	ExpiresAt      time.Time
}

// checkoutURL returns the URL of the pending install's open Checkout Session, creating it at
// Stripe when there is none (or it expired) and storing it in the same transaction, under the
// install lock, so concurrent requests agree on one session.
func (s *Service) checkoutURL(ctx context.Context, user string, l *listing, acct *account, pendingID string) (string, error) {
	if acct == nil || s.pay == nil {
		return "", errors.New("install: checkout without a chargeable account")
	}
	var out string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now().UTC()
		if err := lockInstall(ctx, tx, user, l.ID); err != nil {
			return err
		}
		var old storedCheckout
		err := tx.QueryRow(ctx, `SELECT stripe_session_id, url, expires_at FROM install_checkouts WHERE pending_install_id = $1`,
			pendingID).Scan(&old.SessionID, &old.URL, &old.ExpiresAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case old.ExpiresAt.After(now.Add(sessionMargin)):
			out = old.URL
			return nil
		}
		interval := "month"
		if err := tx.QueryRow(ctx, `SELECT coalesce(manifest->'pricing'->>'interval', 'month') FROM integrations WHERE id = $1`,
			l.ID).Scan(&interval); err != nil {
			return err
		}
		key := payments.IdempotencyKey("checkout", pendingID)
		if old.SessionID != "" {
			key = payments.IdempotencyKey("checkout", pendingID+"/"+old.SessionID)
		}
		p, mode, fee := s.sessionParams(user, l, acct, pendingID, interval)
		p.SetIdempotencyKey(key)
		sess, err := s.pay.api.CheckoutSessions.New(p)
		if err != nil {
			return stripeProblem(l.Name, err)
		}
		if sess.URL == "" || sess.ID == "" {
			return fmt.Errorf("install: Stripe answered a Checkout Session without id or url")
		}
		exp := time.Unix(sess.ExpiresAt, 0).UTC()
		if !exp.After(now) {
			exp = now.Add(sessionLifetime)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO install_checkouts (pending_install_id, stripe_account_id, stripe_session_id, url,
				mode, amount_cents, platform_fee_cents, currency, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (pending_install_id) DO UPDATE SET stripe_account_id = EXCLUDED.stripe_account_id,
				stripe_session_id = EXCLUDED.stripe_session_id, url = EXCLUDED.url, mode = EXCLUDED.mode,
				amount_cents = EXCLUDED.amount_cents, platform_fee_cents = EXCLUDED.platform_fee_cents,
				currency = EXCLUDED.currency, expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at`,
			pendingID, acct.ID, sess.ID, sess.URL, mode, l.PriceCents, fee, l.Currency, exp, now); err != nil {
			return err
		}
		out = sess.URL
		return nil
	})
	if err != nil {
		var p *httpx.Problem
		if errors.As(err, &p) {
			return "", p
		}
		return "", fmt.Errorf("install: checkout of %s for %s: %w", pendingID, user, err)
	}
	return out, nil
}

// sessionParams are the Checkout Session of a pending install: everything in them derives from
// durable data (the listing, the pending install, the settings), so a retry with the same
// idempotency key sends the same parameters, as Stripe requires.
func (s *Service) sessionParams(user string, l *listing, acct *account, pendingID, interval string) (*stripe.CheckoutSessionParams, string, int64) {
	md := map[string]string{metaUser: user, metaIntegration: l.ID, metaPendingInstall: pendingID}
	success := url.Values{"checkout": {"success"}, "integration": {l.Name}, "pending_install_id": {pendingID}}
	cancel := url.Values{"checkout": {"canceled"}, "integration": {l.Name}, "pending_install_id": {pendingID}}
	price := &stripe.CheckoutSessionLineItemPriceDataParams{
		Currency:    stripe.String(l.Currency),
		UnitAmount:  stripe.Int64(l.PriceCents),
		ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{Name: stripe.String(l.Name)},
	}
	p := &stripe.CheckoutSessionParams{
		ClientReferenceID: stripe.String(pendingID),
		SuccessURL:        stripe.String(s.frontend + "?" + success.Encode()),
		CancelURL:         stripe.String(s.frontend + "?" + cancel.Encode()),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{PriceData: price, Quantity: stripe.Int64(1)}},
	}
	p.SetStripeAccount(acct.ID)
	var fee int64
	if l.PricingModel == events.PricingSubscription {
		price.Recurring = &stripe.CheckoutSessionLineItemPriceDataRecurringParams{Interval: stripe.String(interval)}
		p.Mode = stripe.String(modeSubscription)
		p.SubscriptionData = &stripe.CheckoutSessionSubscriptionDataParams{Metadata: md}
		if s.pay.fee > 0 {
			p.SubscriptionData.ApplicationFeePercent = stripe.Float64(float64(s.pay.fee))
		}
		// Each invoice's fee is Stripe's, from the percentage; the first one is recorded here as
		// the same arithmetic gives it.
		fee = payments.Fee(l.PriceCents, s.pay.fee)
		p.Metadata = md
		return p, modeSubscription, fee
	}
	fee = payments.Fee(l.PriceCents, s.pay.fee)
	p.Mode = stripe.String(modePayment)
	p.PaymentIntentData = &stripe.CheckoutSessionPaymentIntentDataParams{Metadata: md}
	if fee > 0 {
		p.PaymentIntentData.ApplicationFeeAmount = stripe.Int64(fee)
	}
	p.Metadata = map[string]string{metaUser: user, metaIntegration: l.ID, metaPendingInstall: pendingID,
		metaFee: strconv.FormatInt(fee, 10)}
	return p, modePayment, fee
}

// stripeProblem maps a failed Stripe call: a refusal about the connected account (Stripe's 4xx)
// is the listing's problem (409, retrying will not help until the developer acts); the
// platform's own key refused (401, 403) and anything else (network, Stripe's 5xx, 429) is 503:
// nothing the user or the developer did, logged for the operators.
func stripeProblem(name string, err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != http.StatusTooManyRequests &&
		se.HTTPStatusCode != http.StatusUnauthorized && se.HTTPStatusCode != http.StatusForbidden {
		p := httpx.Conflict(strconv.Quote(name) + " cannot be bought right now: Stripe refused the checkout on its developer's account")
		p.Errors = []httpx.FieldError{{Field: "integration", Reason: "Stripe refused the checkout on the developer's account"}}
		p.Cause = err
		return p
	}
	return httpx.Unavailable("the payment provider could not be reached; try again", err)
}

// renewPaidConsent gives a paid attempt whose consent URL expired (or which is asked again
// with other scopes) a fresh state and verifier for the same attempt and payment: the payment
// is for the integration, so consenting again never costs a second one.
func (s *Service) renewPaidConsent(ctx context.Context, tx pgx.Tx, l *listing, a attempt, scopes []string, now time.Time) (StartResponse, error) {
	c, err := s.newConsent(a.ID, *l.AppID, scopes, now)
	if err != nil {
		return StartResponse{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE install_attempts SET scopes = $2, state_hash = $3, state_sealed = $4, verifier_sealed = $5,
		state_created_at = $6, state_expires_at = $7 WHERE id = $1`,
		a.ID, scopes, c.hash, c.stateSealed, c.verifierSealed, now, c.ExpiresAt); err != nil {
		return StartResponse{}, err
	}
	exp := c.ExpiresAt
	return StartResponse{Status: StatusAwaitingConsent, PendingInstallID: a.ID, ConsentURL: c.URL, StateExpiresAt: &exp}, nil
}
