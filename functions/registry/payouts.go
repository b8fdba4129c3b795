package main

// Payouts: a developer's Stripe Connect onboarding, the paid-publish check, and revenue in the
// developer's stats (docs/decisions/0011-payments.md).
//
//	POST /v1/developer/payouts   create (once) the developer's Express account; answer an Account Link
//	GET  /v1/developer/payouts   the account's state: charges/payouts enabled, details submitted
//
// The account is created under a per-developer advisory lock, in the transaction that stores
// it in developer_accounts, with Idempotency-Key payments.IdempotencyKey("account", developer
// id) and metadata developer_id (stripe-webhook finds the row by that metadata when
// account.updated beats this commit, and may have made the row already: the stored id is kept).
// A failed commit after Stripe answered makes the retry send the same key, so Stripe answers
// the same account. A repeat reuses the stored account without creating anything; only the
// Account Link (single-use, minutes long) is new each time. An account the developer
// disconnected (account.application.deauthorized) is replaced by a new one, keyed by the
// developer id and the old account id.
//
// Its flags are kept by stripe-webhook (account.updated); GET shows them as stored.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/client"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/payments"
)

// metaDeveloper is the account metadata key stripe-webhook reads.
const metaDeveloper = "developer_id"

// payouts is the registry's Stripe side.
type payouts struct {
	api                *client.API
	returnURL, refresh string
}

// enablePayouts turns the payouts routes on (nil cfg: they answer 503). hc sends to Stripe (nil:
// payments.NewClient's default).
func (s *Service) enablePayouts(cfg *payments.Config, returnURL, refreshURL string, hc *http.Client) {
	if cfg == nil {
		s.payouts = nil
		return
	}
	s.payouts = &payouts{api: payments.NewClient(*cfg, hc), returnURL: returnURL, refresh: refreshURL}
}

// payoutURLs derives the return and refresh URLs: the settings, else FRONTEND_URL with
// ?payouts=return / ?payouts=refresh.
func payoutURLs(frontend, returnURL, refreshURL string) (string, string) {
	with := func(v string) string {
		if frontend == "" {
			return ""
		}
		u, err := url.Parse(frontend)
		if err != nil {
			return ""
		}
		q := u.Query()
		q.Set("payouts", v)
		u.RawQuery = q.Encode()
		return u.String()
	}
	if returnURL == "" {
		returnURL = with("return")
	}
	if refreshURL == "" {
		refreshURL = with("refresh")
	}
	return returnURL, refreshURL
}

// PayoutAccount is the answer of GET /v1/developer/payouts and part of POST's.
type PayoutAccount struct {
	AccountID        *string    `json:"account_id"` // acct_..., null before onboarding starts
	ChargesEnabled   bool       `json:"charges_enabled"`
	PayoutsEnabled   bool       `json:"payouts_enabled"`
	DetailsSubmitted bool       `json:"details_submitted"`
	DeauthorizedAt   *time.Time `json:"deauthorized_at,omitempty"`
}

// Onboarding answers POST /v1/developer/payouts: the account and the link to Stripe's hosted
// onboarding (single-use; ask again when it expired).
type Onboarding struct {
	PayoutAccount
	OnboardingURL string    `json:"onboarding_url"`
	ExpiresAt     time.Time `json:"expires_at"`
}

func readAccount(ctx context.Context, q querier, developer string) (PayoutAccount, error) {
	var a PayoutAccount
	err := q.QueryRow(ctx, `SELECT stripe_account_id, charges_enabled, payouts_enabled, details_submitted, deauthorized_at
		FROM developer_accounts WHERE developer_id = $1`, developer).
		Scan(&a.AccountID, &a.ChargesEnabled, &a.PayoutsEnabled, &a.DetailsSubmitted, &a.DeauthorizedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return PayoutAccount{}, nil
	}
	if a.DeauthorizedAt != nil {
		t := a.DeauthorizedAt.UTC()
		a.DeauthorizedAt = &t
	}
	return a, err
}

func (s *Service) getPayouts(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	a, err := readAccount(r.Context(), s.pool, p.Subject)
	if err != nil {
		return fmt.Errorf("registry: payouts of %s: %w", p.Subject, err)
	}
	httpx.WriteJSON(w, http.StatusOK, a)
	return nil
}

func (s *Service) startPayouts(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	if s.payouts == nil {
		return httpx.Unavailable("payments are not configured", nil)
	}
	if len(p.Subject) > 128 {
		return httpx.Forbidden("the token's subject is not a developer id")
	}
	ctx := r.Context()
	dev := p.Subject
	created := false
	var acct PayoutAccount
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		created = false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('payouts/' || $1, 0))`, dev); err != nil {
			return err
		}
		old, err := readAccount(ctx, tx, dev)
		if err != nil {
			return err
		}
		if old.AccountID != nil && old.DeauthorizedAt == nil {
			acct = old
			return nil
		}
		key := payments.IdempotencyKey("account", dev)
		if old.AccountID != nil {
			key = payments.IdempotencyKey("account", dev+"/"+*old.AccountID)
		}
		params := &stripe.AccountParams{
			Type:     stripe.String(string(stripe.AccountTypeExpress)),
			Metadata: map[string]string{metaDeveloper: dev},
			Capabilities: &stripe.AccountCapabilitiesParams{
				CardPayments: &stripe.AccountCapabilitiesCardPaymentsParams{Requested: stripe.Bool(true)},
				Transfers:    &stripe.AccountCapabilitiesTransfersParams{Requested: stripe.Bool(true)},
			},
		}
		params.SetIdempotencyKey(key)
		a, err := s.payouts.api.Accounts.New(params)
		if err != nil {
			return stripeUnavailable(err)
		}
		// A row made by stripe-webhook from account.updated (same account, by metadata) keeps
		// its flags; a deauthorized account is replaced with fresh ones.
		if _, err := tx.Exec(ctx, `INSERT INTO developer_accounts AS d (developer_id, stripe_account_id, charges_enabled,
				payouts_enabled, details_submitted)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (developer_id) DO UPDATE SET stripe_account_id = EXCLUDED.stripe_account_id,
				charges_enabled = EXCLUDED.charges_enabled, payouts_enabled = EXCLUDED.payouts_enabled,
				details_submitted = EXCLUDED.details_submitted, deauthorized_at = NULL, updated_at = now()
			WHERE d.stripe_account_id IS NULL OR d.deauthorized_at IS NOT NULL`,
			dev, a.ID, a.ChargesEnabled, a.PayoutsEnabled, a.DetailsSubmitted); err != nil {
			return err
		}
		created = true
		acct, err = readAccount(ctx, tx, dev)
		return err
	})
	if err != nil {
		var pr *httpx.Problem
		if errors.As(err, &pr) {
			return pr
		}
		return fmt.Errorf("registry: payouts account of %s: %w", dev, err)
	}
	link, err := s.payouts.api.AccountLinks.New(&stripe.AccountLinkParams{
		Account:    acct.AccountID,
		Type:       stripe.String(string(stripe.AccountLinkTypeAccountOnboarding)),
		ReturnURL:  stripe.String(s.payouts.returnURL),
		RefreshURL: stripe.String(s.payouts.refresh),
	})
	if err != nil {
		// The account is stored: asking again answers a link for it.
		return stripeUnavailable(err)
	}
	exp := time.Unix(link.ExpiresAt, 0).UTC()
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpx.WriteJSON(w, status, Onboarding{PayoutAccount: acct, OnboardingURL: link.URL, ExpiresAt: exp})
	return nil
}

func stripeUnavailable(err error) error {
	return httpx.Unavailable("the payment provider could not be reached or refused the request; try again", err)
}

// chargeable refuses to publish a paid listing while its developer's account cannot take
// charges (422 naming payouts): installing it would fail at checkout.
func chargeable(ctx context.Context, q querier, developer string) error {
	a, err := readAccount(ctx, q, developer)
	if err != nil {
		return err
	}
	var why string
	switch {
	case a.AccountID == nil:
		why = "no Stripe account: start onboarding with POST /v1/developer/payouts"
	case a.DeauthorizedAt != nil:
		why = "the Stripe account was disconnected: onboard again with POST /v1/developer/payouts"
	case !a.ChargesEnabled:
		why = "the Stripe account cannot take charges yet: finish onboarding (POST /v1/developer/payouts gives a new link)"
	default:
		return nil
	}
	return &httpx.Problem{Title: http.StatusText(http.StatusUnprocessableEntity), Status: http.StatusUnprocessableEntity,
		Detail: "a paid listing is published only once its developer can take charges",
		Errors: []httpx.FieldError{{Field: "payouts", Reason: why}}}
}

// MonthRevenue is one month's succeeded payments of an integration in one currency (UTC
// months; refunded payments excluded). Net is what the developer receives before Stripe's own
// processing fee (direct charges).
type MonthRevenue struct {
	Month    string `json:"month"` // YYYY-MM
	Currency string `json:"currency"`
	Gross    int64  `json:"gross_cents"`
	Fee      int64  `json:"platform_fee_cents"`
	Net      int64  `json:"net_cents"`
	Payments int64  `json:"payments"`
}

// revenueMonths is how far back revenue_by_month reaches (the current month included).
const revenueMonths = 12

// revenue fills the payments side of an integration's stats.
func (s *Service) revenue(ctx context.Context, q querier, integrationID string, st *Stats) error {
	from := s.now().UTC()
	from = time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -(revenueMonths - 1), 0)
	rows, err := q.Query(ctx, `SELECT to_char(date_trunc('month', paid_at AT TIME ZONE 'UTC'), 'YYYY-MM'), currency,
			sum(amount_cents)::bigint, sum(platform_fee_cents)::bigint, sum(net_cents)::bigint, count(*)
		FROM payments WHERE integration_id = $1 AND status = 'succeeded' AND paid_at >= $2
		GROUP BY 1, 2 ORDER BY 1, 2`, integrationID, from)
	if err != nil {
		return err
	}
	st.RevenueByMonth, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (MonthRevenue, error) {
		var m MonthRevenue
		return m, r.Scan(&m.Month, &m.Currency, &m.Gross, &m.Fee, &m.Net, &m.Payments)
	})
	if err != nil {
		return err
	}
	if st.RevenueByMonth == nil {
		st.RevenueByMonth = []MonthRevenue{}
	}
	return q.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE integration_id = $1
		AND status IN ('trialing', 'active', 'past_due') AND access_ended_at IS NULL`, integrationID).Scan(&st.ActiveSubscriptions)
}
