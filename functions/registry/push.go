package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest"
)

// Push credentials (docs/decisions/0010-push-ingest.md).
//
// A push data source pushes its records to POST /v1/ingest (or its Kafka topic) as itself,
// with a client-credentials token carrying data:write. Its main Logto application is a
// third-party web application, which cannot use client credentials, so registration gives a
// push source a second, machine-to-machine application and a role of its own carrying
// data:write on the API resource (logto.Client.CreateM2M). The application's id is written to
// integrations.push_client_id (ingest finds the push source by the token's client_id), the
// role's to push_role_id. The secret is returned once, beside the main application's, and
// kept nowhere: the platform never acts as the push client, so there is nothing to seal.
//
// The registry deletes no integration, so nothing deletes push credentials after a
// successful registration; a failed registration deletes them with the main application.

// PushApps is what registering a push source needs of the Logto Management API;
// *logto.Client satisfies it.
type PushApps interface {
	CreateM2M(ctx context.Context, m logto.NewM2M) (*logto.M2M, error)
	DeleteM2M(ctx context.Context, m logto.M2M) error
}

// PushCredentials is the push application of a push data source, in the answer of its
// registration: the only place its secret is shown.
type PushCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// Scope is the scope its client-credentials tokens carry (data:write), Resource the API
	// resource to ask them for (the token's aud).
	Scope    string `json:"scope"`
	Resource string `json:"resource"`
}

// createPush makes the push credentials of m when it is a push data source (nil, nil for
// anything else).
func (s *Service) createPush(ctx context.Context, m *manifest.Manifest) (*logto.M2M, error) {
	if m.EffectiveDeliveryMode() != manifest.DeliveryPush {
		return nil, nil
	}
	if s.resource == "" {
		return nil, errors.New("registry: Config.APIResource (LOGTO_API_RESOURCE) is required to register a push source")
	}
	lctx, cancel := withDeadline(ctx)
	defer cancel()
	return s.apps.CreateM2M(lctx, logto.NewM2M{
		Name:        clip.String("push "+m.Name, 256),
		Description: clip.String("Pushes the records of "+m.DisplayName+" ("+m.Name+")", 500),
		Resource:    s.resource,
		Scopes:      []string{auth.ScopeDataWrite},
	})
}

// deletePush removes push credentials made for a registration that failed. Not the request's
// context: the client may be gone, the credentials must go anyway.
func (s *Service) deletePush(ctx context.Context, push *logto.M2M) {
	if push == nil {
		return
	}
	dctx, cancel := withDeadline(context.WithoutCancel(ctx))
	defer cancel()
	if err := s.apps.DeleteM2M(dctx, *push); err != nil {
		logging.From(ctx).Error("registry: orphaned push credentials", slog.String("app_id", push.AppID),
			slog.String("role_id", push.RoleID), slog.Any("error", err))
	}
}

// pushCredentials is the answer's view of push (nil: not a push source).
func (s *Service) pushCredentials(push *logto.M2M) *PushCredentials {
	if push == nil {
		return nil
	}
	return &PushCredentials{ClientID: push.AppID, ClientSecret: push.Secret, Scope: auth.ScopeDataWrite, Resource: s.resource}
}

// pushIDs are the values of integrations.push_client_id and push_role_id (NULL for a source
// that is not pushed).
func pushIDs(push *logto.M2M) (clientID, roleID *string) {
	if push == nil {
		return nil, nil
	}
	return &push.AppID, &push.RoleID
}
