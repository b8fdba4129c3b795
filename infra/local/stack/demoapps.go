package stack

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/sealed"
)

// registerDemoApps gives every demo listing what the registry gives a registered integration,
// so a user of make dev can install them: a Logto application (the OIDC client of the install
// consent) whose redirect URI is this front door's install callback, the manifest's scopes as
// its consent scopes, and the client secret sealed with CLIENT_SECRET_KEYS under the registry's
// additional data ("integration <id> client_secret", functions/registry). The demo app of the
// integration gets the application's id, so it can tell its own M2M tokens (token claims, the
// lifecycle catch-up) from others.
//
// It runs once the identity server is up and the front door's address is known, before the
// functions start.
func (s *Stack) registerDemoApps(ctx context.Context) error {
	if s.demo == nil {
		return nil
	}
	keys, err := sealed.Parse(s.clientSecretKeys)
	if err != nil {
		return fmt.Errorf("stack: CLIENT_SECRET_KEYS: %w", err)
	}
	lc, err := logto.New(logto.Config{Endpoint: s.LogtoEndpoint, AppID: s.m2mID, AppSecret: s.m2mSecret})
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return fmt.Errorf("stack: demo applications: %w", err)
	}
	defer conn.Close(ctx)
	for i, in := range s.demo.Integrations {
		var id string
		if err := conn.QueryRow(ctx, `SELECT id FROM integrations WHERE name = $1`, in.Name).Scan(&id); err != nil {
			return fmt.Errorf("stack: demo %s: %w", in.Name, err)
		}
		app, err := s.identityApp(ctx, lc, keys, conn, id, in.DisplayName, in.Scopes)
		if err != nil {
			return fmt.Errorf("stack: demo %s: %w", in.Name, err)
		}
		s.demo.Integrations[i].AppID, s.demo.Integrations[i].AppSecret = app.ID, app.Secret
	}
	return nil
}

// identityApp creates the Logto application of integration id (redirect URI: this front door's
// install callback; consent scopes: scopes) and stores its id and sealed secret on the row.
func (s *Stack) identityApp(ctx context.Context, lc *logto.Client, keys *sealed.Keys, conn *pgx.Conn, id, name string, scopes []string) (*logto.Application, error) {
	app, err := lc.CreateApplication(ctx, logto.NewApplication{Name: name, RedirectURIs: []string{s.URL + "/v1/installs/callback"}})
	if err != nil {
		return nil, fmt.Errorf("Logto application: %w", err)
	}
	if len(scopes) > 0 {
		if err := lc.AssignUserConsentScopes(ctx, app.ID, logto.ConsentScopes{ResourceScopes: scopes}); err != nil {
			return nil, fmt.Errorf("consent scopes: %w", err)
		}
	}
	secret, err := keys.Seal([]byte(app.Secret), []byte("integration "+id+" client_secret"))
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `UPDATE integrations SET logto_app_id = $2, client_secret_sealed = $3 WHERE id = $1`,
		id, app.ID, secret); err != nil {
		return nil, err
	}
	return app, nil
}

// Listing is an integration a test or a load tool publishes directly (PublishListing), skipping
// the registry's checks: the integration under test is often not reachable the way checks want.
type Listing struct {
	Manifest    *manifest.Manifest
	DeveloperID string // default "dev-load"
}

// Published is what PublishListing made: the listing's id and its Logto application.
type Published struct {
	ID, AppID, AppSecret string
}

// PublishListing writes l as a published, free-or-paid listing at its manifest's version, with
// a Logto application and a sealed client secret as the registry makes them, so it can be
// installed through the front door.
func (s *Stack) PublishListing(ctx context.Context, l Listing) (Published, error) {
	m := l.Manifest
	if l.DeveloperID == "" {
		l.DeveloperID = "dev-load"
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return Published{}, err
	}
	keys, err := sealed.Parse(s.clientSecretKeys)
	if err != nil {
		return Published{}, err
	}
	lc, err := logto.New(logto.Config{Endpoint: s.LogtoEndpoint, AppID: s.m2mID, AppSecret: s.m2mSecret})
	if err != nil {
		return Published{}, err
	}
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return Published{}, err
	}
	defer conn.Close(ctx)
	pricing, price, currency := "free", int64(0), "usd"
	if m.Pricing != nil && m.Pricing.Model != "" {
		pricing, price = m.Pricing.Model, m.Pricing.PriceCents
		if m.Pricing.Currency != "" {
			currency = m.Pricing.Currency
		}
	}
	var mode any
	if m.DeliveryMode != "" {
		mode = m.DeliveryMode
	}
	var id string
	if err := conn.QueryRow(ctx, `INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode,
			description, base_url, current_version, latest_version, manifest, pricing_model, price_cents, currency,
			is_published, published_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, true, now()) RETURNING id`,
		l.DeveloperID, m.Name, m.DisplayName, m.Type, mode, m.Description, m.BaseURL, m.Version, raw,
		pricing, price, currency).Scan(&id); err != nil {
		return Published{}, fmt.Errorf("stack: publish %s: %w", m.Name, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO integration_versions (integration_id, version, manifest) VALUES ($1, $2, $3)`,
		id, m.Version, raw); err != nil {
		return Published{}, fmt.Errorf("stack: publish %s: %w", m.Name, err)
	}
	app, err := s.identityApp(ctx, lc, keys, conn, id, m.DisplayName, m.Scopes)
	if err != nil {
		return Published{}, fmt.Errorf("stack: publish %s: %w", m.Name, err)
	}
	return Published{ID: id, AppID: app.ID, AppSecret: app.Secret}, nil
}
