package stack

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/logto"
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
	callback := s.URL + "/v1/installs/callback"
	for i, in := range s.demo.Integrations {
		var id string
		if err := conn.QueryRow(ctx, `SELECT id FROM integrations WHERE name = $1`, in.Name).Scan(&id); err != nil {
			return fmt.Errorf("stack: demo %s: %w", in.Name, err)
		}
		app, err := lc.CreateApplication(ctx, logto.NewApplication{Name: in.DisplayName, RedirectURIs: []string{callback}})
		if err != nil {
			return fmt.Errorf("stack: demo %s: Logto application: %w", in.Name, err)
		}
		if len(in.Scopes) > 0 {
			if err := lc.AssignUserConsentScopes(ctx, app.ID, logto.ConsentScopes{ResourceScopes: in.Scopes}); err != nil {
				return fmt.Errorf("stack: demo %s: consent scopes: %w", in.Name, err)
			}
		}
		secret, err := keys.Seal([]byte(app.Secret), []byte("integration "+id+" client_secret"))
		if err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, `UPDATE integrations SET logto_app_id = $2, client_secret_sealed = $3 WHERE id = $1`,
			id, app.ID, secret); err != nil {
			return fmt.Errorf("stack: demo %s: %w", in.Name, err)
		}
		s.demo.Integrations[i].AppID, s.demo.Integrations[i].AppSecret = app.ID, app.Secret
	}
	return nil
}
