package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest"
)

// Registered is the body of a 201 from POST /v1/developer/integrations: the only place,
// besides a rotation, where the client secret is shown, and the only place the integration
// client's is.
type Registered struct {
	// ClientID and ClientSecret are the integration's main Logto application, the OIDC client
	// of the install consent.
	ClientID     string      `json:"client_id"`
	ClientSecret string      `json:"client_secret"`
	Integration  Integration `json:"integration"`
	// IntegrationClient is the machine-to-machine application with which the integration
	// calls as itself (client.go).
	IntegrationClient IntegrationClient `json:"integration_client"`
}

// register: validate, refuse a taken name, run the checks, create the Logto application and
// the integration client, seal the application's secret, then commit the integration, its first version, the check results and
// integration.registered in one transaction. A failure after the application was created
// deletes them, so no application is left without an integration.
func (s *Service) register(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	m, err := s.readManifest(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// Cheap refusals first: the checks and Logto are not called for a request that cannot
	// succeed. The insert below decides races.
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkCategory(ctx, tx, m); err != nil {
			return err
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE name = $1)`, m.Name).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return nameTaken(m.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	results := s.runChecks(ctx, m)
	doc, err := json.Marshal(m)
	if err != nil {
		return err
	}

	lctx, cancel := withDeadline(ctx)
	app, err := s.apps.CreateApplication(lctx, logto.NewApplication{
		Name: m.DisplayName, Description: clip.String(m.Description, 500),
		RedirectURIs: append([]string{s.callback}, m.RedirectURIs...),
	})
	cancel()
	if err != nil {
		return httpx.Unavailable("the identity provider could not create the application; try again", err)
	}
	log := logging.From(ctx)
	var client *logto.M2M // the integration client (client.go)
	cleanup := func(cause error) error {
		// Not the request's context: the client may be gone, the application must go anyway.
		dctx, cancel := withDeadline(context.WithoutCancel(ctx))
		defer cancel()
		if derr := s.apps.DeleteApplication(dctx, app.ID); derr != nil {
			log.Error("registry: orphaned Logto application", slog.String("app_id", app.ID), slog.Any("error", derr))
		}
		s.deleteClient(ctx, client)
		return cause
	}
	if len(m.Scopes) > 0 {
		lctx, cancel := withDeadline(ctx)
		err := s.apps.AssignUserConsentScopes(lctx, app.ID, logto.ConsentScopes{ResourceScopes: m.Scopes})
		cancel()
		if err != nil {
			return cleanup(httpx.Unavailable("the identity provider could not set the consent scopes; try again", err))
		}
	}
	if app.Secret == "" {
		return cleanup(errors.New("registry: the new Logto application has no secret"))
	}
	if client, err = s.createClient(ctx, m); err != nil {
		return cleanup(httpx.Unavailable("the identity provider could not create the integration client; try again", err))
	}
	id := uuid.New().String()
	sealedSecret, err := s.keys.Seal([]byte(app.Secret), secretAAD(id))
	if err != nil {
		return cleanup(err)
	}
	now := s.now().UTC()
	pricing := m.EffectivePricing()
	var delivery *string
	if d := m.EffectiveDeliveryMode(); d != "" {
		delivery = &d
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO integrations
			(id, developer_id, logto_app_id, name, display_name, type, delivery_mode, description, base_url,
			 category, tags, manifest, pricing_model, price_cents, currency, latest_version, client_secret_sealed,
			 created_at, updated_at, m2m_app_id, m2m_role_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, $19, $20)`,
			id, p.Subject, app.ID, m.Name, m.DisplayName, m.Type, delivery, m.Description, m.BaseURL,
			category(m), nonNil(m.Tags), doc, pricing.Model, pricing.PriceCents, currencyOf(pricing), m.Version,
			sealedSecret, now, client.AppID, client.RoleID); err != nil {
			if isUnique(err, "integrations_name_key") {
				return nameTaken(m.Name)
			}
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO integration_versions (integration_id, version, manifest, created_at)
			VALUES ($1, $2, $3, $4)`, id, m.Version, doc, now); err != nil {
			return err
		}
		if err := insertChecks(ctx, tx, id, m.Version, results, now); err != nil {
			return err
		}
		return emit(ctx, tx, id, events.TypeIntegrationRegistered, events.IntegrationRegistered{
			IntegrationID: id, Name: m.Name, DisplayName: m.DisplayName, Type: m.Type,
			DeliveryMode: m.EffectiveDeliveryMode(), DeveloperID: p.Subject, LogtoAppID: app.ID,
			Version: m.Version, RegisteredAt: now,
		}, now)
	})
	if err != nil {
		return cleanup(err)
	}
	it, err := s.load(ctx, s.pool, m.Name, p.Subject)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, Registered{ClientID: app.ID, ClientSecret: app.Secret, Integration: *it,
		IntegrationClient: s.integrationClient(client, m)})
	return nil
}

func nameTaken(name string) error {
	p := httpx.Conflict(fmt.Sprintf("the name %q is taken", clip.String(name, 64)))
	p.Errors = []httpx.FieldError{{Field: "/name", Reason: "taken"}}
	return p
}

// secretAAD binds a sealed client secret to its integration row.
func secretAAD(integrationID string) []byte {
	return []byte("integration " + integrationID + " client_secret")
}

func currencyOf(p manifest.Pricing) string {
	if p.Currency == "" {
		return "usd"
	}
	return p.Currency
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// newVersion registers a new manifest of an integration: same name, type and delivery mode,
// a greater semantic version; its checks run and are stored with it. It stays a draft until
// published.
func (s *Service) newVersion(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	ctx := r.Context()
	// Ownership before the body: another developer learns nothing from the manifest's errors.
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE name = $1 AND developer_id = $2)`,
		name, p.Subject).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return notYours(name)
	}
	m, err := s.readManifest(w, r)
	if err != nil {
		return err
	}
	check := func(it row) error {
		var fields []httpx.FieldError
		if m.Name != it.Name {
			fields = append(fields, httpx.FieldError{Field: "/name", Reason: "must be " + it.Name + ", the integration's name"})
		}
		if m.Type != it.Type {
			fields = append(fields, httpx.FieldError{Field: "/type", Reason: "must stay " + it.Type + "; register a new integration to change it"})
		}
		if d := m.EffectiveDeliveryMode(); it.DeliveryMode != nil && d != *it.DeliveryMode {
			fields = append(fields, httpx.FieldError{Field: "/delivery_mode", Reason: "must stay " + *it.DeliveryMode})
		}
		if len(fields) > 0 {
			return httpx.BadRequest("invalid manifest", fields...)
		}
		if it.LatestVersion != nil && !semverLess(*it.LatestVersion, m.Version) {
			p := httpx.Conflict(fmt.Sprintf("version %s is not greater than the latest, %s", m.Version, *it.LatestVersion))
			p.Errors = []httpx.FieldError{{Field: "/version", Reason: "must be greater than " + *it.LatestVersion}}
			return p
		}
		return nil
	}
	// Refuse before running the checks; the transaction checks again under lock.
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		it, err := owned(ctx, tx, name, p.Subject)
		if err != nil {
			return err
		}
		if err := check(it); err != nil {
			return err
		}
		return checkCategory(ctx, tx, m)
	})
	if err != nil {
		return err
	}
	results := s.runChecks(ctx, m)
	doc, err := json.Marshal(m)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		it, err := owned(ctx, tx, name, p.Subject)
		if err != nil {
			return err
		}
		if err := check(it); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO integration_versions (integration_id, version, manifest, created_at)
			VALUES ($1, $2, $3, $4)`, it.ID, m.Version, doc, now); err != nil {
			if isUnique(err, "") {
				return httpx.Conflict("version " + m.Version + " exists")
			}
			return err
		}
		if err := insertChecks(ctx, tx, it.ID, m.Version, results, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE integrations SET latest_version = $2, updated_at = $3 WHERE id = $1`, it.ID, m.Version, now); err != nil {
			return err
		}
		return emit(ctx, tx, it.ID, events.TypeIntegrationVersionCreated, events.IntegrationVersionCreated{
			IntegrationID: it.ID, Name: it.Name, Version: m.Version, CreatedAt: now,
		}, now)
	})
	if err != nil {
		return err
	}
	it, err := s.load(ctx, s.pool, name, p.Subject)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, it)
	return nil
}
