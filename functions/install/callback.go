package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/outbox"
)

// Reasons of a refused callback, sent to FRONTEND_URL as ?install_error=<reason>.
const (
	ReasonInvalidRequest = "invalid_request" // no state, no code, or a parameter too long
	ReasonUnknownState   = "unknown_state"   // never issued, or its install finished or was refused
	ReasonStateUsed      = "state_used"      // a callback with this state is being completed
	ReasonStateExpired   = "state_expired"   // older than 10 minutes
	ReasonDenied         = "access_denied"   // the user declined on the consent page
	ReasonWrongUser      = "wrong_user"      // signed in as someone other than who started the install
	ReasonRevoked        = "revoked"         // the install was revoked while the consent was under way
	ReasonExchangeFailed = "exchange_failed" // the identity server refused the code or could not be reached
)

// Bounds on the callback's query. States are 43 characters; codes are opaque but short.
const (
	maxStateLen = 128
	maxCodeLen  = 2048
	maxQueryLen = 8 << 10
)

// eventIDSpace is the namespace of install.completed ids: one per install (its id), so the
// event of an install has one id whoever writes it.
var eventIDSpace = uuid.MustParse("4f7c2a61-2d0e-4b86-9a3c-7e51d8f0b2a4")

// callbackParams is what the callback reads from its query.
type callbackParams struct {
	State, Code, Error string
}

// parseCallback reads the callback's query (url.ParseQuery, bounded): the reason is empty when
// the parameters are usable.
func parseCallback(rawQuery string) (callbackParams, string) {
	if len(rawQuery) > maxQueryLen {
		return callbackParams{}, ReasonInvalidRequest
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return callbackParams{}, ReasonInvalidRequest
	}
	p := callbackParams{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
	switch {
	case p.State == "" || len(p.State) > maxStateLen || len(q["state"]) > 1:
		return p, ReasonInvalidRequest
	case p.Error != "":
		return p, ""
	case p.Code == "" || len(p.Code) > maxCodeLen || len(q["code"]) > 1:
		return p, ReasonInvalidRequest
	}
	return p, ""
}

// consumed is an attempt whose state a callback has just consumed.
type consumed struct {
	ID, UserID, IntegrationID string
	Scopes                    []string
	Sandbox                   bool
	PaymentID                 *string
	VerifierSealed            string
	StateCreatedAt            time.Time
}

// handleCallback is GET /v1/installs/callback, the browser's return from the consent page. It always
// answers 303 to FRONTEND_URL: ?installed=<name>, or ?install_error=<reason> (a browser shows
// a problem+json body as text; the frontend explains the reason instead).
func (s *Service) handleCallback(w http.ResponseWriter, r *http.Request) error {
	log := logging.From(r.Context())
	name, reason := s.complete(r.Context(), log, r.URL.RawQuery)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if reason != "" {
		log.Info("install callback refused", slog.String("reason", reason))
		http.Redirect(w, r, s.frontendURL("install_error", reason), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, s.frontendURL("installed", name), http.StatusSeeOther)
	return nil
}

// complete runs the callback and returns the integration's name or the reason of a refusal.
func (s *Service) complete(ctx context.Context, log *slog.Logger, rawQuery string) (string, string) {
	p, reason := parseCallback(rawQuery)
	if reason != "" {
		return "", reason
	}
	s.sweep(ctx, log)
	a, reason, err := s.consume(ctx, stateHash(p.State))
	if err != nil {
		log.Error("install callback: consume the state", slog.Any("error", err))
		return "", ReasonExchangeFailed
	}
	if reason != "" {
		return "", reason
	}
	log = log.With(slog.String("attempt_id", a.ID), slog.String("integration_id", a.IntegrationID))
	// From here on the state is spent: whatever happens, the attempt ends.
	drop := func() {
		if _, err := s.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM install_attempts WHERE id = $1`, a.ID); err != nil {
			log.Error("install callback: delete the attempt", slog.Any("error", err))
		}
	}
	if p.Error != "" {
		drop()
		return "", ReasonDenied
	}
	l, err := loadListing(ctx, s.pool, "id = $1", a.IntegrationID)
	if err != nil || l == nil || l.AppID == nil || l.SecretSealed == nil {
		log.Error("install callback: the integration cannot exchange codes", slog.Any("error", err))
		drop()
		return "", ReasonExchangeFailed
	}
	secret, err := s.keys.Open(*l.SecretSealed, secretAAD(l.ID))
	if err != nil {
		log.Error("install callback: open the client secret", slog.Any("error", err))
		drop()
		return "", ReasonExchangeFailed
	}
	verifier, err := s.keys.Open(a.VerifierSealed, verifierAAD(a.ID))
	if err != nil {
		log.Error("install callback: open the verifier", slog.Any("error", err))
		drop()
		return "", ReasonExchangeFailed
	}
	now := s.now().UTC()
	x, err := s.exchangeCode(ctx, *l.AppID, string(secret), p.Code, string(verifier), now)
	if err != nil {
		level := slog.LevelError
		if errors.Is(err, errExchange) {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "install callback: code exchange failed", slog.Any("error", err))
		drop()
		return "", ReasonExchangeFailed
	}
	if x.Subject != a.UserID {
		// Someone else signed in on a consent page started by a.UserID: nothing is recorded,
		// and the grant the platform just obtained for them is dropped unless they have
		// installed the integration themselves.
		drop()
		s.revokeUnlessInstalled(ctx, log, x.Subject, l)
		return "", ReasonWrongUser
	}
	granted := []string{}
	for _, sc := range a.Scopes {
		if slices.Contains(x.Scopes, sc) {
			granted = append(granted, sc)
		}
	}
	revoked, err := s.record(ctx, a, l, granted, x.Tokens, now)
	if err != nil {
		log.Error("install callback: record the install", slog.Any("error", err))
		drop()
		return "", ReasonExchangeFailed
	}
	if revoked {
		// Migration 00008: revoked after the install started; the grant just made goes too.
		if _, err := s.revoker.RevokeGrants(context.WithoutCancel(ctx), a.UserID, *l.AppID); err != nil && !errors.Is(err, logto.ErrNotFound) {
			log.Error("install callback: revoke the grant of a revoked install", slog.Any("error", err))
		}
		return "", ReasonRevoked
	}
	log.Info("installed", slog.String("user_id", a.UserID), slog.Any("scopes", granted), slog.Bool("sandbox", a.Sandbox))
	return l.Name, ""
}

// consume spends a state: the one callback that moves its attempt from awaiting_consent to
// exchanging goes on; any other gets the reason, and nothing changes.
func (s *Service) consume(ctx context.Context, hash []byte) (consumed, string, error) {
	now := s.now().UTC()
	var a consumed
	err := s.pool.QueryRow(ctx, `UPDATE install_attempts SET status = 'exchanging'
		WHERE state_hash = $1 AND status = 'awaiting_consent' AND state_expires_at > $2
		RETURNING id::text, user_id, integration_id::text, scopes, sandbox, payment_id, verifier_sealed, state_created_at`,
		hash, now).Scan(&a.ID, &a.UserID, &a.IntegrationID, &a.Scopes, &a.Sandbox, &a.PaymentID, &a.VerifierSealed, &a.StateCreatedAt)
	if err == nil {
		return a, "", nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return a, "", err
	}
	var status string
	var expires time.Time
	err = s.pool.QueryRow(ctx, `SELECT status, state_expires_at FROM install_attempts WHERE state_hash = $1`, hash).Scan(&status, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return a, ReasonUnknownState, nil
	case err != nil:
		return a, "", err
	case !expires.After(now):
		return a, ReasonStateExpired, nil
	default:
		return a, ReasonStateUsed, nil
	}
}

// record commits the install under the (user, integration) lock: unless the install was
// revoked after its state was made (then it reports revoked and records nothing), the
// user_integrations row, the sealed tokens, the install count and install.completed, and the
// attempt's end, in one transaction. An install that already exists stays as it is.
func (s *Service) record(ctx context.Context, a consumed, l *listing, granted []string, tokens tokenSet, now time.Time) (bool, error) {
	revoked := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		revoked = false
		if err := lockInstall(ctx, tx, a.UserID, a.IntegrationID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM install_attempts WHERE id = $1`, a.ID); err != nil {
			return err
		}
		var revokedAt time.Time
		err := tx.QueryRow(ctx, `SELECT revoked_at FROM install_revocations WHERE user_id = $1 AND integration_id = $2`,
			a.UserID, a.IntegrationID).Scan(&revokedAt)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err == nil && revokedAt.After(a.StateCreatedAt) {
			revoked = true
			return nil
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		var installID string
		err = tx.QueryRow(ctx, `INSERT INTO user_integrations (id, user_id, integration_id, scopes, sandbox, installed_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, integration_id) DO NOTHING RETURNING id::text`,
			id, a.UserID, a.IntegrationID, granted, a.Sandbox, now).Scan(&installID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // installed already: the first consent's tokens and event stand
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE integrations SET install_count = install_count + 1, updated_at = $2 WHERE id = $1`,
			a.IntegrationID, now); err != nil {
			return err
		}
		plain, err := json.Marshal(tokens)
		if err != nil {
			return err
		}
		sealedTokens, err := s.keys.Seal(plain, tokensAAD(installID))
		clear(plain)
		if err != nil {
			return err
		}
		expires := now.Add(s.tokenTTL)
		if _, err := tx.Exec(ctx, `INSERT INTO install_tokens (install_id, sealed, expires_at, created_at) VALUES ($1, $2, $3, $4)`,
			installID, sealedTokens, expires, now); err != nil {
			return err
		}
		done := events.InstallCompleted{InstallID: installID, IntegrationID: a.IntegrationID, Name: l.Name, UserID: a.UserID,
			Scopes: granted, Sandbox: a.Sandbox, TokensExpireAt: expires, InstalledAt: now}
		if a.PaymentID != nil {
			done.PaymentID = *a.PaymentID
		}
		ce, err := outbox.New(source, events.TypeInstallCompleted, done)
		if err != nil {
			return err
		}
		ce.SetID(uuid.NewSHA1(eventIDSpace, []byte(installID)).String())
		ce.SetTime(now)
		ce.SetSubject(installID)
		_, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: events.InstallKey(a.IntegrationID, a.UserID), CloudEvent: ce})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("install: record %s for %s: %w", l.Name, a.UserID, err)
	}
	return revoked, nil
}

// revokeUnlessInstalled revokes user's grants to the integration's application unless the user
// has installed it (then the grant is the install's). Under the user's lock, so an install of
// theirs completing at the same moment is seen.
func (s *Service) revokeUnlessInstalled(ctx context.Context, log *slog.Logger, user string, l *listing) {
	ctx = context.WithoutCancel(ctx)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockInstall(ctx, tx, user, l.ID); err != nil {
			return err
		}
		in, err := userInstall(ctx, tx, user, l.ID)
		if err != nil || in != nil {
			return err
		}
		_, err = s.revoker.RevokeGrants(ctx, user, *l.AppID)
		if errors.Is(err, logto.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		log.Error("install callback: revoke the grant of the wrong user", slog.Any("error", err))
	}
}

// sweepBatch bounds one sweep: it runs on every callback and claim, so it stays cheap.
const sweepBatch = 100

// sweep deletes a batch of unclaimed tokens and abandoned attempts whose time has passed
// (attempts an hour after their state expired; attempts awaiting payment are the payments
// work's to end). Best effort: a failure is logged, and the next request sweeps again.
func (s *Service) sweep(ctx context.Context, log *slog.Logger) {
	now := s.now().UTC()
	_, err := s.pool.Exec(ctx, `WITH t AS (
			DELETE FROM install_tokens WHERE install_id IN
				(SELECT install_id FROM install_tokens WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)
			RETURNING 1)
		DELETE FROM install_attempts WHERE id IN
			(SELECT id FROM install_attempts WHERE state_expires_at <= $1 - interval '1 hour' ORDER BY state_expires_at LIMIT $2)`,
		now, sweepBatch)
	if err != nil && ctx.Err() == nil {
		log.Warn("install: sweep expired tokens and attempts", slog.Any("error", err))
	}
}
