package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/infra/local/demo"
	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/sealed"
)

// registerDemoApps gives every demo listing what the registry gives a registered integration,
// so a user of make dev can install them: a Logto application (the OIDC client of the install
// consent) whose redirect URI is this front door's install callback, the manifest's scopes as
// its consent scopes, and the client secret sealed with CLIENT_SECRET_KEYS under the registry's
// additional data ("integration <id> client_secret", functions/registry); and its integration
// client (functions/registry's client.go: a machine-to-machine application whose role carries
// data:write for a push data source and no scope otherwise), stored in m2m_app_id and
// m2m_role_id. The demo integration gets both applications' credentials: the integration
// client's are what it calls the platform with as itself (token claims, the lifecycle
// catch-up, pushes).
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
		app, client, err := s.identityApp(ctx, lc, keys, conn, id, in.Manifest())
		if err != nil {
			return fmt.Errorf("stack: demo %s: %w", in.Name, err)
		}
		s.demo.Integrations[i].AppID, s.demo.Integrations[i].AppSecret = app.ID, app.Secret
		s.demo.Integrations[i].ClientID, s.demo.Integrations[i].ClientSecret = client.AppID, client.Secret
	}
	return nil
}

// identityApp creates the Logto application of integration id, described by m (redirect URI:
// this front door's install callback; consent scopes: m's), and its integration client (a
// machine-to-machine application with a role carrying data:write when m is a push data source,
// no scope otherwise), and stores their ids, the role's and the sealed secret on the row.
func (s *Stack) identityApp(ctx context.Context, lc *logto.Client, keys *sealed.Keys, conn *pgx.Conn, id string, m *manifest.Manifest) (*logto.Application, *logto.M2M, error) {
	app, err := lc.CreateApplication(ctx, logto.NewApplication{Name: m.DisplayName, RedirectURIs: []string{s.URL + "/v1/installs/callback"}})
	if err != nil {
		return nil, nil, fmt.Errorf("Logto application: %w", err)
	}
	if len(m.Scopes) > 0 {
		if err := lc.AssignUserConsentScopes(ctx, app.ID, logto.ConsentScopes{ResourceScopes: m.Scopes}); err != nil {
			return nil, nil, fmt.Errorf("consent scopes: %w", err)
		}
	}
	var scopes []string
	if m.EffectiveDeliveryMode() == manifest.DeliveryPush {
		scopes = []string{auth.ScopeDataWrite}
	}
	client, err := lc.CreateM2M(ctx, logto.NewM2M{Name: "client " + m.Name, Resource: s.APIResource, Scopes: scopes})
	if err != nil {
		return nil, nil, fmt.Errorf("integration client: %w", err)
	}
	secret, err := keys.Seal([]byte(app.Secret), []byte("integration "+id+" client_secret"))
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.Exec(ctx, `UPDATE integrations SET logto_app_id = $2, client_secret_sealed = $3, m2m_app_id = $4,
			m2m_role_id = $5 WHERE id = $1`, id, app.ID, secret, client.AppID, client.RoleID); err != nil {
		return nil, nil, err
	}
	return app, client, nil
}

// Listing is an integration a test or a load tool publishes directly (PublishListing), skipping
// the registry's checks: the integration under test is often not reachable the way checks want.
type Listing struct {
	Manifest    *manifest.Manifest
	DeveloperID string // default "dev-load"
}

// Published is what PublishListing made: the listing's id, its Logto application (AppID,
// AppSecret: the OIDC client of the install consent) and its integration client (ClientID,
// ClientSecret: the client credentials with which the integration calls the platform as
// itself, e.g. to claim an install's tokens).
type Published struct {
	ID, AppID, AppSecret   string
	ClientID, ClientSecret string
}

// PublishListing writes l as a published, free-or-paid listing at its manifest's version, with
// a Logto application, a sealed client secret and an integration client as the registry makes
// them, so it can be installed through the front door.
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
	app, client, err := s.identityApp(ctx, lc, keys, conn, id, m)
	if err != nil {
		return Published{}, fmt.Errorf("stack: publish %s: %w", m.Name, err)
	}
	return Published{ID: id, AppID: app.ID, AppSecret: app.Secret, ClientID: client.AppID, ClientSecret: client.Secret}, nil
}

// DemoIntegrations are the running demo integrations with their Logto applications and
// integration clients (nil when the stack runs without the demo).
func (s *Stack) DemoIntegrations() []demo.Integration {
	if s.demo == nil {
		return nil
	}
	return slices.Clone(s.demo.Integrations)
}
