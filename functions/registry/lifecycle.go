package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/manifest"
)

// publish puts the latest version in the catalog: every required check of it must have
// passed (else 422 naming each failing check), and a paid listing needs the verified or
// featured tier (else 409). The version's fields are copied into the listing.
func (s *Service) publish(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	ctx := r.Context()
	now := s.now().UTC()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		it, err := owned(ctx, tx, name, p.Subject)
		if err != nil {
			return err
		}
		if it.LatestVersion == nil {
			return errNoLatest
		}
		version := *it.LatestVersion
		if it.IsPublished && it.CurrentVersion != nil && *it.CurrentVersion == version {
			return nil // already so: no change, no event
		}
		var raw []byte
		if err := tx.QueryRow(ctx, `SELECT manifest FROM integration_versions WHERE integration_id = $1 AND version = $2`,
			it.ID, version).Scan(&raw); err != nil {
			return err
		}
		var m manifest.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("registry: stored manifest of %s %s: %w", it.Name, version, err)
		}
		rows, err := tx.Query(ctx, `SELECT name, passed, reason FROM integration_checks
			WHERE integration_id = $1 AND version = $2 AND required ORDER BY name`, it.ID, version)
		if err != nil {
			return err
		}
		var failing []httpx.FieldError
		n := 0
		for rows.Next() {
			var cname, reason string
			var passed bool
			if err := rows.Scan(&cname, &passed, &reason); err != nil {
				rows.Close()
				return err
			}
			n++
			if !passed {
				if reason == "" {
					reason = "failed"
				}
				failing = append(failing, httpx.FieldError{Field: "checks/" + cname, Reason: reason})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n == 0 {
			failing = append(failing, httpx.FieldError{Field: "checks", Reason: "no required check has run on version " + version})
		}
		if len(failing) > 0 {
			names := make([]string, len(failing))
			for i, f := range failing {
				names[i] = strings.TrimPrefix(f.Field, "checks/")
			}
			return &httpx.Problem{Title: "Unprocessable Entity", Status: http.StatusUnprocessableEntity,
				Detail: fmt.Sprintf("version %s cannot be published: required checks failing: %s", version, strings.Join(names, ", ")),
				Errors: failing}
		}
		pricing := m.EffectivePricing()
		if pricing.Model != manifest.PricingFree && it.Tier == TierUnverified {
			p := httpx.Conflict("a paid listing is published only once verified; request verification first")
			p.Errors = []httpx.FieldError{{Field: "/pricing/model", Reason: "paid (" + pricing.Model + ") needs the verified or featured tier; the tier is unverified"}}
			return p
		}
		if pricing.Model != manifest.PricingFree {
			if err := chargeable(ctx, tx, p.Subject); err != nil { // payouts.go
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE integrations SET display_name = $2, description = $3, category = $4, tags = $5,
				pricing_model = $6, price_cents = $7, currency = $8, base_url = $9, manifest = $10, current_version = $11,
				is_published = true, published_at = $12, updated_at = $12
			WHERE id = $1`, it.ID, m.DisplayName, m.Description, category(&m), nonNil(m.Tags), pricing.Model,
			pricing.PriceCents, currencyOf(pricing), m.BaseURL, raw, version, now); err != nil {
			return err
		}
		return emit(ctx, tx, it.ID, events.TypeIntegrationPublished, events.IntegrationPublished{
			IntegrationID: it.ID, Name: it.Name, Version: version, PublishedAt: now,
		}, now)
	})
	if err != nil {
		return err
	}
	return s.answer(w, r, http.StatusOK, name, p.Subject)
}

// answer writes the integration as the caller now sees it.
func (s *Service) answer(w http.ResponseWriter, r *http.Request, status int, name, developer string) error {
	it, err := s.load(r.Context(), s.pool, name, developer)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, status, it)
	return nil
}

// unpublish takes the listing out of the catalog; unpublishing an unpublished listing changes
// nothing and announces nothing.
func (s *Service) unpublish(w http.ResponseWriter, r *http.Request) error {
	decode := func(r *http.Request, _ time.Time) (UnpublishRequest, error) { return decodeUnpublish(r) }
	return change(s, w, r, http.StatusOK, decode, func(ctx context.Context, tx pgx.Tx, it row, body UnpublishRequest, _ string, now time.Time) error {
		if !it.IsPublished {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE integrations SET is_published = false, updated_at = $2 WHERE id = $1`, it.ID, now); err != nil {
			return err
		}
		return emit(ctx, tx, it.ID, events.TypeIntegrationUnpublished, events.IntegrationUnpublished{
			IntegrationID: it.ID, Name: it.Name, Reason: body.Reason, UnpublishedAt: now,
		}, now)
	})
}

// change is the shape of a developer's change to one of their integrations: the caller must own
// name (404 before the body is read), decode reads the body, and apply runs in one transaction
// on the caller's row, locked; the answer (status) is the integration as the caller now sees it.
func change[B any](s *Service, w http.ResponseWriter, r *http.Request, status int,
	decode func(*http.Request, time.Time) (B, error),
	apply func(ctx context.Context, tx pgx.Tx, it row, body B, developer string, now time.Time) error) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := s.exists(r, name, p.Subject); err != nil {
		return err
	}
	now := s.now().UTC()
	body, err := decode(r, now)
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		it, err := owned(ctx, tx, name, p.Subject)
		if err != nil {
			return err
		}
		return apply(ctx, tx, it, body, p.Subject, now)
	})
	if err != nil {
		return err
	}
	return s.answer(w, r, status, name, p.Subject)
}

// exists answers 404 before a body is read when the integration is not the caller's.
func (s *Service) exists(r *http.Request, name, developer string) error {
	var ok bool
	if err := s.pool.QueryRow(r.Context(), `SELECT EXISTS (SELECT 1 FROM integrations WHERE name = $1 AND developer_id = $2)`,
		name, developer).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return notYours(name)
	}
	return nil
}

// deprecate records (or replaces) the deprecation notice. The replacement must be another
// integration that exists.
func (s *Service) deprecate(w http.ResponseWriter, r *http.Request) error {
	return change(s, w, r, http.StatusOK, decodeDeprecate, func(ctx context.Context, tx pgx.Tx, it row, d DeprecateRequest, _ string, now time.Time) error {
		var sunset, replacement *string
		if d.Sunset != "" {
			sunset = &d.Sunset
		}
		if d.Replacement != "" {
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE name = $1)`, d.Replacement).Scan(&ok); err != nil {
				return err
			}
			if !ok || d.Replacement == it.Name {
				return httpx.BadRequest("invalid request", httpx.FieldError{Field: "replacement", Reason: "must name another integration"})
			}
			replacement = &d.Replacement
		}
		if _, err := tx.Exec(ctx, `UPDATE integrations SET deprecated_at = $2, deprecation_message = $3,
			deprecation_sunset = $4::date, deprecation_replacement = $5, updated_at = $2 WHERE id = $1`,
			it.ID, now, d.Message, sunset, replacement); err != nil {
			return err
		}
		return emit(ctx, tx, it.ID, events.TypeIntegrationDeprecated, events.IntegrationDeprecated{
			IntegrationID: it.ID, Name: it.Name, Message: d.Message, Sunset: d.Sunset, Replacement: d.Replacement, DeprecatedAt: now,
		}, now)
	})
}

// SecretRotated is the body of POST .../{name}/secret: the new secret, shown once.
type SecretRotated struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// rotateSecret asks Logto for a new secret (the old ones are deleted there), seals it and
// stores it. If the store fails after Logto rotated, the stored secret is stale until the
// developer rotates again (which converges); the error says so.
func (s *Service) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	ctx := r.Context()
	var it row
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		it, err = owned(ctx, tx, name, p.Subject)
		return err
	})
	if err != nil {
		return err
	}
	if it.LogtoAppID == nil {
		return httpx.Conflict("this integration has no Logto application")
	}
	lctx, cancel := withDeadline(ctx)
	secret, err := s.apps.RotateSecret(lctx, *it.LogtoAppID)
	cancel()
	if err != nil {
		return httpx.Unavailable("the identity provider could not rotate the secret; try again", err)
	}
	sealedSecret, err := s.keys.Seal([]byte(secret), secretAAD(it.ID))
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE integrations SET client_secret_sealed = $2, updated_at = $3 WHERE id = $1 AND developer_id = $4`,
		it.ID, sealedSecret, s.now().UTC(), p.Subject)
	if err == nil && tag.RowsAffected() != 1 {
		err = errors.New("registry: integration vanished during rotation")
	}
	if err != nil {
		logging.From(ctx).Error("registry: secret rotated at Logto but not stored; rotate again", slog.String("integration", it.Name))
		return httpx.Unavailable("the secret was rotated but could not be stored; rotate again", err)
	}
	httpx.WriteJSON(w, http.StatusOK, SecretRotated{ClientID: *it.LogtoAppID, ClientSecret: secret})
	return nil
}

// requestVerification files a review request for the latest version: one pending at a time
// (409 otherwise), and only while unverified.
func (s *Service) requestVerification(w http.ResponseWriter, r *http.Request) error {
	decode := func(r *http.Request, _ time.Time) (VerificationRequest, error) { return decodeVerification(r) }
	return change(s, w, r, http.StatusCreated, decode, func(ctx context.Context, tx pgx.Tx, it row, body VerificationRequest, developer string, now time.Time) error {
		if it.Tier != TierUnverified {
			return httpx.Conflict("the integration is already " + it.Tier)
		}
		if it.LatestVersion == nil {
			return errNoLatest
		}
		id := uuid.New().String()
		if _, err := tx.Exec(ctx, `INSERT INTO verification_requests (id, integration_id, version, note, requested_by, requested_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, it.ID, *it.LatestVersion, body.Note, developer, now); err != nil {
			if isUnique(err, "verification_requests_pending_idx") {
				return httpx.Conflict("a verification request is already pending")
			}
			return err
		}
		return emit(ctx, tx, it.ID, events.TypeVerificationRequested, events.VerificationRequested{
			IntegrationID: it.ID, Name: it.Name, RequestID: id, Version: *it.LatestVersion, RequestedBy: developer, RequestedAt: now,
		}, now)
	})
}
