package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/outbox"
)

// Statuses of a POST /v1/installs answer; the first two are install_attempts.status values.
const (
	StatusAwaitingPayment = "awaiting_payment"
	StatusAwaitingConsent = "awaiting_consent"
	StatusInstalled       = "installed"
	statusExchanging      = "exchanging"
)

// StartRequest is the body of POST /v1/installs.
type StartRequest struct {
	// Integration is the integration's name.
	Integration string `json:"integration"`
	// Scopes, when present, are the scopes asked for, each one of the manifest's; absent
	// means all of the manifest's.
	Scopes *[]string `json:"scopes,omitempty"`
}

// StartResponse answers POST /v1/installs: what the frontend does next.
type StartResponse struct {
	// Status: awaiting_consent (send the browser to ConsentURL), awaiting_payment (the
	// payments step continues it) or installed (Install).
	Status           string     `json:"status"`
	PendingInstallID string     `json:"pending_install_id,omitempty"`
	ConsentURL       string     `json:"consent_url,omitempty"`
	StateExpiresAt   *time.Time `json:"state_expires_at,omitempty"`
	Install          *Install   `json:"install,omitempty"`

	// CheckoutURL (awaiting_payment): the Stripe Checkout page to send the browser to (checkout.go).
	CheckoutURL string `json:"checkout_url,omitempty"`
}

// maxStartBody bounds the body of POST /v1/installs.
const maxStartBody = 16 << 10

// attempt is an install_attempts row.
type attempt struct {
	ID, Status     string
	Scopes         []string
	Sandbox        bool
	PaymentID      *string
	StateSealed    *string
	StateCreatedAt *time.Time
	StateExpiresAt *time.Time
}

func (s *Service) start(w http.ResponseWriter, r *http.Request) error {
	user := userOf(r)
	var in StartRequest
	if err := httpx.DecodeJSON(r, &in, maxStartBody); err != nil {
		return err
	}
	if !integrationName.MatchString(in.Integration) {
		return httpx.BadRequest("invalid install request", httpx.FieldError{Field: "integration",
			Reason: "must be an integration name (2-63 of a-z, 0-9, '-', starting with a letter or digit)"})
	}
	ctx := r.Context()
	l, err := loadListing(ctx, s.pool, "name = $1", in.Integration)
	if err != nil {
		return fmt.Errorf("install: load %s: %w", in.Integration, err)
	}
	if l == nil || (!l.Published && l.DeveloperID != user) {
		return notAvailable(in.Integration)
	}
	scopes := slices.Clone(l.Scopes)
	if in.Scopes != nil {
		var bad []httpx.FieldError
		scopes = []string{}
		for i, sc := range *in.Scopes {
			field := "scopes/" + strconv.Itoa(i)
			switch {
			case !slices.Contains(l.Scopes, sc):
				bad = append(bad, httpx.FieldError{Field: field, Reason: "not a scope of the integration's manifest"})
			case slices.Contains(scopes, sc):
				bad = append(bad, httpx.FieldError{Field: field, Reason: "listed twice"})
			default:
				scopes = append(scopes, sc)
			}
		}
		if len(bad) > 0 {
			return httpx.BadRequest("invalid install request", bad...)
		}
	}
	if l.AppID == nil || l.SecretSealed == nil {
		return httpx.Conflict("the integration has no identity application and cannot be installed")
	}
	acct, err := s.chargeableAccount(ctx, user, l)
	if err != nil {
		return err
	}
	res, created, err := s.startTx(ctx, user, l, scopes)
	if err != nil {
		return err
	}
	if res.Status == StatusAwaitingPayment {
		if res.CheckoutURL, err = s.checkoutURL(ctx, user, l, acct, res.PendingInstallID); err != nil {
			return err
		}
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpx.WriteJSON(w, status, res)
	return nil
}

// startTx finds or makes the user's install attempt under the (user, integration) lock, so any
// number of concurrent requests for one install agree on one attempt and write one
// install.requested.
func (s *Service) startTx(ctx context.Context, user string, l *listing, scopes []string) (StartResponse, bool, error) {
	sandbox := !l.Published
	// A developer's sandbox install is never charged: it is their own integration.
	paid := l.PricingModel != events.PricingFree && !sandbox
	var res StartResponse
	created := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		created = false
		now := s.now().UTC()
		if err := lockInstall(ctx, tx, user, l.ID); err != nil {
			return err
		}
		in, err := userInstall(ctx, tx, user, l.ID)
		if err != nil || in != nil {
			res = StartResponse{Status: StatusInstalled, Install: in}
			return err
		}
		var revokedAt *time.Time
		if err := tx.QueryRow(ctx, `SELECT revoked_at FROM install_revocations WHERE user_id = $1 AND integration_id = $2`,
			user, l.ID).Scan(&revokedAt); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var a attempt
		err = tx.QueryRow(ctx, `SELECT id::text, status, scopes, sandbox, payment_id, state_sealed, state_created_at, state_expires_at
			FROM install_attempts WHERE user_id = $1 AND integration_id = $2`, user, l.ID).
			Scan(&a.ID, &a.Status, &a.Scopes, &a.Sandbox, &a.PaymentID, &a.StateSealed, &a.StateCreatedAt, &a.StateExpiresAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case a.Status == StatusAwaitingPayment && paid:
			// Payment is for the integration, not the scopes: the same pending install, with
			// the scopes asked now.
			if !slices.Equal(a.Scopes, scopes) {
				if _, err := tx.Exec(ctx, `UPDATE install_attempts SET scopes = $2 WHERE id = $1`, a.ID, scopes); err != nil {
					return err
				}
			}
			res = StartResponse{Status: StatusAwaitingPayment, PendingInstallID: a.ID}
			return nil
		case a.Status == StatusAwaitingConsent && slices.Equal(a.Scopes, scopes) && a.StateExpiresAt.After(now) &&
			(revokedAt == nil || !revokedAt.After(*a.StateCreatedAt)):
			state, err := s.keys.Open(*a.StateSealed, stateAAD(a.ID))
			if err != nil {
				return fmt.Errorf("install: open the state of attempt %s: %w", a.ID, err)
			}
			var verifierSealed string
			if err := tx.QueryRow(ctx, `SELECT verifier_sealed FROM install_attempts WHERE id = $1`, a.ID).Scan(&verifierSealed); err != nil {
				return err
			}
			verifier, err := s.keys.Open(verifierSealed, verifierAAD(a.ID))
			if err != nil {
				return fmt.Errorf("install: open the verifier of attempt %s: %w", a.ID, err)
			}
			exp := a.StateExpiresAt.UTC()
			res = StartResponse{Status: StatusAwaitingConsent, PendingInstallID: a.ID,
				ConsentURL: s.consentURL(*l.AppID, string(state), string(verifier), a.Scopes), StateExpiresAt: &exp}
			return nil
		case a.Status == StatusAwaitingConsent && a.PaymentID != nil && paid &&
			(revokedAt == nil || !revokedAt.After(*a.StateCreatedAt)):
			// Paid already: an expired consent URL (or other scopes) gets a fresh state, never a
			// second payment (checkout.go).
			res, err = s.renewPaidConsent(ctx, tx, l, a, scopes, now)
			return err
		case a.Status == statusExchanging && a.StateExpiresAt.After(now):
			return httpx.Conflict("the consent to this integration is being completed; try again in a moment")
		default:
			// Expired, other scopes, revoked since, or a paid attempt of a listing that is free
			// now: start again.
			if _, err := tx.Exec(ctx, `DELETE FROM install_attempts WHERE id = $1`, a.ID); err != nil {
				return err
			}
		}

		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		a = attempt{ID: id.String(), Scopes: scopes, Sandbox: sandbox}
		var amount int64
		if paid {
			a.Status, amount = StatusAwaitingPayment, l.PriceCents
			if _, err := tx.Exec(ctx, `INSERT INTO install_attempts (id, user_id, integration_id, scopes, sandbox, status, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ID, user, l.ID, scopes, sandbox, a.Status, now); err != nil {
				return err
			}
			res = StartResponse{Status: StatusAwaitingPayment, PendingInstallID: a.ID}
		} else {
			c, err := s.newConsent(a.ID, *l.AppID, scopes, now)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO install_attempts (id, user_id, integration_id, scopes, sandbox, status,
				state_hash, state_sealed, verifier_sealed, state_created_at, state_expires_at, created_at)
				VALUES ($1, $2, $3, $4, $5, 'awaiting_consent', $6, $7, $8, $9, $10, $9)`,
				a.ID, user, l.ID, scopes, sandbox, c.hash, c.stateSealed, c.verifierSealed, now, c.ExpiresAt); err != nil {
				return err
			}
			exp := c.ExpiresAt
			res = StartResponse{Status: StatusAwaitingConsent, PendingInstallID: a.ID, ConsentURL: c.URL, StateExpiresAt: &exp}
		}
		ce, err := outbox.New(source, events.TypeInstallRequested, events.InstallRequested{
			RequestID: a.ID, IntegrationID: l.ID, Name: l.Name, UserID: user, Scopes: nonNil(scopes),
			PricingModel: l.PricingModel, AmountCents: amount, Currency: l.Currency, Sandbox: sandbox, RequestedAt: now,
		})
		if err != nil {
			return err
		}
		ce.SetTime(now)
		ce.SetSubject(a.ID)
		if _, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: events.InstallKey(l.ID, user), CloudEvent: ce}); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		var p *httpx.Problem
		if errors.As(err, &p) {
			return res, false, p
		}
		return res, false, fmt.Errorf("install: start %s for %s: %w", l.Name, user, err)
	}
	return res, created, nil
}

// Consent is the consent step of an install: the URL to send the user's browser to, valid
// until ExpiresAt.
type Consent struct {
	URL       string
	ExpiresAt time.Time

	hash                        []byte
	stateSealed, verifierSealed string
}

// newConsent makes a state and a PKCE verifier for attempt id, sealed for storage.
func (s *Service) newConsent(id, appID string, scopes []string, now time.Time) (Consent, error) {
	state, verifier := random32(), random32()
	ss, err := s.keys.Seal([]byte(state), stateAAD(id))
	if err != nil {
		return Consent{}, err
	}
	vs, err := s.keys.Seal([]byte(verifier), verifierAAD(id))
	if err != nil {
		return Consent{}, err
	}
	return Consent{URL: s.consentURL(appID, state, verifier, scopes), ExpiresAt: now.Add(StateTTL),
		hash: stateHash(state), stateSealed: ss, verifierSealed: vs}, nil
}

// Errors of ContinueAfterPayment.
var (
	// ErrNoPendingInstall: no install attempt has that id (never made, completed, replaced,
	// or its integration deleted).
	ErrNoPendingInstall = errors.New("install: no pending install with that id")
	// ErrNotAwaitingPayment: the attempt is not waiting for a payment (another payment
	// already continued it).
	ErrNotAwaitingPayment = errors.New("install: the pending install is not awaiting payment")
)

// ContinueAfterPayment is the seam the payments work (issue 9) calls once the payment of a
// paid install has succeeded: it turns pending install pendingID (the pending_install_id
// answered by POST /v1/installs, status awaiting_payment) into the consent step, recording paymentID
// (payments.id, a UUID) to be carried by install.completed, and returns the consent URL to
// send the user's browser to. Calling it again with the same payment returns a consent URL for
// the same attempt while its state is valid (and a fresh state once it expired), so a retried
// webhook or redirect is harmless.
func (s *Service) ContinueAfterPayment(ctx context.Context, pendingID, paymentID string) (Consent, error) {
	if _, err := uuid.Parse(pendingID); err != nil {
		return Consent{}, ErrNoPendingInstall
	}
	if _, err := uuid.Parse(paymentID); err != nil {
		return Consent{}, fmt.Errorf("install: payment id %q is not a UUID", paymentID)
	}
	var user, integrationID string
	err := s.pool.QueryRow(ctx, `SELECT user_id, integration_id::text FROM install_attempts WHERE id = $1`, pendingID).
		Scan(&user, &integrationID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Consent{}, ErrNoPendingInstall
	}
	if err != nil {
		return Consent{}, fmt.Errorf("install: continue %s: %w", pendingID, err)
	}
	var c Consent
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now().UTC()
		if err := lockInstall(ctx, tx, user, integrationID); err != nil {
			return err
		}
		var a attempt
		var verifierSealed *string
		err := tx.QueryRow(ctx, `SELECT status, scopes, payment_id, state_sealed, verifier_sealed, state_expires_at
			FROM install_attempts WHERE id = $1`, pendingID).
			Scan(&a.Status, &a.Scopes, &a.PaymentID, &a.StateSealed, &verifierSealed, &a.StateExpiresAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoPendingInstall
		}
		if err != nil {
			return err
		}
		l, err := loadListing(ctx, tx, "id = $1", integrationID)
		if err != nil {
			return err
		}
		if l == nil || l.AppID == nil {
			return ErrNoPendingInstall
		}
		samePayment := a.PaymentID != nil && *a.PaymentID == paymentID
		switch {
		case a.Status == StatusAwaitingConsent && samePayment && a.StateExpiresAt.After(now):
			state, err := s.keys.Open(*a.StateSealed, stateAAD(pendingID))
			if err != nil {
				return err
			}
			verifier, err := s.keys.Open(*verifierSealed, verifierAAD(pendingID))
			if err != nil {
				return err
			}
			c = Consent{URL: s.consentURL(*l.AppID, string(state), string(verifier), a.Scopes), ExpiresAt: a.StateExpiresAt.UTC()}
			return nil
		case a.Status == StatusAwaitingPayment, a.Status == StatusAwaitingConsent && samePayment:
		default:
			return ErrNotAwaitingPayment
		}
		c, err = s.newConsent(pendingID, *l.AppID, a.Scopes, now)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE install_attempts SET status = 'awaiting_consent', payment_id = $2, state_hash = $3,
			state_sealed = $4, verifier_sealed = $5, state_created_at = $6, state_expires_at = $7 WHERE id = $1`,
			pendingID, paymentID, c.hash, c.stateSealed, c.verifierSealed, now, c.ExpiresAt)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNoPendingInstall) || errors.Is(err, ErrNotAwaitingPayment) {
			return Consent{}, err
		}
		return Consent{}, fmt.Errorf("install: continue %s: %w", pendingID, err)
	}
	return c, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
