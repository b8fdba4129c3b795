package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest"
)

// The integration client (docs/decisions/0007-install-and-tokens.md, 0010-push-ingest.md).
//
// An integration calls the platform as itself (the routes under /v1/integration/: claiming an
// install's tokens, catching up on lifecycle events; and for a push data source, ingest and
// its Kafka topic) with a client-credentials token whose client_id names it. Its main Logto application is a
// third-party web application, the OIDC client of the install consent, and Logto gives such an
// application no client-credentials token. So registration gives every integration a second,
// machine-to-machine application, its integration client, with a role of its own
// (logto.Client.CreateM2M): the role carries data:write on the API resource for a push data
// source and no scope for anything else, so the client's tokens say who calls and nothing
// more. The application's id is written to integrations.m2m_app_id (the functions find the
// integration by the token's client_id), the role's to m2m_role_id. The secret is returned
// once, beside the main application's, and kept nowhere: the platform never acts as the
// integration client, so there is nothing to seal.
//
// The registry deletes no integration, so nothing deletes an integration client after a
// successful registration; a failed registration deletes it with the main application.
// Rotating its secret is not offered yet (the secret route rotates the main application's).

// ClientApps is what making an integration client needs of the Logto Management API;
// *logto.Client satisfies it.
type ClientApps interface {
	CreateM2M(ctx context.Context, m logto.NewM2M) (*logto.M2M, error)
	DeleteM2M(ctx context.Context, m logto.M2M) error
}

// IntegrationClient is the integration client in the answer of a registration: the only place
// its secret is shown.
type IntegrationClient struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// Scope is the scope its client-credentials tokens carry: data:write for a push data
	// source, empty for the others. Resource is the API resource to ask them for (the
	// token's aud).
	Scope    string `json:"scope"`
	Resource string `json:"resource"`
}

// clientScopes are the scopes of m's integration client: data:write for a push data source,
// none for the others.
func clientScopes(m *manifest.Manifest) []string {
	if m.EffectiveDeliveryMode() == manifest.DeliveryPush {
		return []string{auth.ScopeDataWrite}
	}
	return nil
}

// createClient makes the integration client of m.
func (s *Service) createClient(ctx context.Context, m *manifest.Manifest) (*logto.M2M, error) {
	lctx, cancel := withDeadline(ctx)
	defer cancel()
	return s.apps.CreateM2M(lctx, logto.NewM2M{
		Name:        clip.String("client "+m.Name, 256),
		Description: clip.String(m.DisplayName+" ("+m.Name+") calling MyScrollr Connect as itself", 500),
		Resource:    s.resource,
		Scopes:      clientScopes(m),
	})
}

// deleteClient removes the integration client made for a registration that failed. Not the
// request's context: the client may be gone, the application must go anyway.
func (s *Service) deleteClient(ctx context.Context, c *logto.M2M) {
	if c == nil {
		return
	}
	dctx, cancel := withDeadline(context.WithoutCancel(ctx))
	defer cancel()
	if err := s.apps.DeleteM2M(dctx, *c); err != nil {
		logging.From(ctx).Error("registry: orphaned integration client", slog.String("app_id", c.AppID),
			slog.String("role_id", c.RoleID), slog.Any("error", err))
	}
}

// integrationClient is the answer's view of c, made for m.
func (s *Service) integrationClient(c *logto.M2M, m *manifest.Manifest) IntegrationClient {
	return IntegrationClient{ClientID: c.AppID, ClientSecret: c.Secret, Scope: strings.Join(clientScopes(m), " "),
		Resource: s.resource}
}
