package logto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Routes of the Management API the client uses, as (method, path template)
// in the notation of Logto's route definitions.
var routes = []route{
	{http.MethodPost, "/api/applications"},
	{http.MethodGet, "/api/applications/{id}"},
	{http.MethodDelete, "/api/applications/{id}"},
	{http.MethodPost, "/api/applications/{applicationId}/user-consent-scopes"},
	{http.MethodGet, "/api/applications/{id}/secrets"},
	{http.MethodPost, "/api/applications/{id}/secrets"},
	{http.MethodDelete, "/api/applications/{id}/secrets/{name}"},
	{http.MethodDelete, "/api/applications/{id}/legacy-secret"},
	{http.MethodGet, "/api/users/{userId}/grants"},
	{http.MethodDelete, "/api/users/{userId}/grants/{grantId}"},
	{http.MethodGet, "/api/resources"},
	{http.MethodGet, "/api/resources/{resourceId}/scopes"},
	{http.MethodPost, "/api/roles"},
	{http.MethodGet, "/api/roles/{id}"},
	{http.MethodDelete, "/api/roles/{id}"},
	{http.MethodGet, "/api/roles/{id}/applications"},
	{http.MethodPost, "/api/roles/{id}/applications"},
}

type route struct{ Method, Path string }

// Application is a Logto application as the client sees it.
type Application struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Description  string   `json:"description,omitempty"`
	Type         string   `json:"type"`
	IsThirdParty bool     `json:"isThirdParty"`
	Secret       string   `json:"secret,omitempty"` // set by CreateApplication only
	RedirectURIs []string `json:"-"`
}

// NewApplication describes the third-party application of an integration.
type NewApplication struct {
	Name         string // shown on the consent page
	Description  string
	RedirectURIs []string // the integration's OAuth callback URLs
}

type oidcClientMetadata struct {
	RedirectURIs           []string `json:"redirectUris"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris"`
}

type applicationBody struct {
	Application
	OIDCClientMetadata oidcClientMetadata `json:"oidcClientMetadata"`
}

// CreateApplication creates a third-party "Traditional" web application and
// returns it with its id and client secret (shown to the developer once).
func (c *Client) CreateApplication(ctx context.Context, app NewApplication) (*Application, error) {
	if app.Name == "" {
		return nil, errors.New("logto: CreateApplication: name is required")
	}
	if len(app.RedirectURIs) == 0 {
		return nil, errors.New("logto: CreateApplication: at least one redirect URI is required")
	}
	in := applicationBody{
		Application: Application{Name: app.Name, Description: app.Description, Type: "Traditional", IsThirdParty: true},
		OIDCClientMetadata: oidcClientMetadata{
			RedirectURIs: app.RedirectURIs, PostLogoutRedirectURIs: []string{},
		},
	}
	var out applicationBody
	if err := c.do(ctx, http.MethodPost, "/api/applications", in, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, errors.New("logto: CreateApplication: response without id")
	}
	a := out.Application
	a.RedirectURIs = out.OIDCClientMetadata.RedirectURIs
	if a.Secret == "" {
		// Logto versions without a legacy secret: list the secrets.
		secrets, err := c.Secrets(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		if len(secrets) > 0 {
			a.Secret = secrets[0].Value
		}
	}
	return &a, nil
}

// GetApplication returns the application, ErrNotFound if it does not exist.
func (c *Client) GetApplication(ctx context.Context, id string) (*Application, error) {
	var out applicationBody
	if err := c.do(ctx, http.MethodGet, "/api/applications/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	a := out.Application
	a.RedirectURIs = out.OIDCClientMetadata.RedirectURIs
	return &a, nil
}

// DeleteApplication deletes the application; deleting one that is already
// gone succeeds.
func (c *Client) DeleteApplication(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodDelete, "/api/applications/"+url.PathEscape(id), nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ConsentScopes are the scopes a user is asked to grant an application.
type ConsentScopes struct {
	ResourceScopes []string `json:"resourceScopes,omitempty"` // ids of API resource scopes
	UserScopes     []string `json:"userScopes,omitempty"`     // e.g. "profile", "email"
}

// AssignUserConsentScopes sets the scopes the consent page asks for.
// Assigning the same scopes again is harmless.
func (c *Client) AssignUserConsentScopes(ctx context.Context, appID string, s ConsentScopes) error {
	if len(s.ResourceScopes) == 0 && len(s.UserScopes) == 0 {
		return errors.New("logto: AssignUserConsentScopes: no scopes given")
	}
	return c.do(ctx, http.MethodPost, "/api/applications/"+url.PathEscape(appID)+"/user-consent-scopes", s, nil)
}

// Secret is an application secret.
type Secret struct {
	ApplicationID string `json:"applicationId"`
	Name          string `json:"name"`
	Value         string `json:"value"`
	CreatedAt     int64  `json:"createdAt"`
	ExpiresAt     *int64 `json:"expiresAt"`
}

// Secrets lists the application's secrets.
func (c *Client) Secrets(ctx context.Context, appID string) ([]Secret, error) {
	var out []Secret
	err := c.do(ctx, http.MethodGet, "/api/applications/"+url.PathEscape(appID)+"/secrets", nil, &out)
	return out, err
}

// RotateSecret adds a new secret to the application, then deletes every
// other secret (and the legacy secret), and returns the new value. If it
// fails after adding, calling it again converges: the newest secret is kept.
func (c *Client) RotateSecret(ctx context.Context, appID string) (string, error) {
	base := "/api/applications/" + url.PathEscape(appID)
	name := "rotated-" + strconv.FormatInt(c.cfg.Clock().UnixNano(), 36)
	var created Secret
	if err := c.do(ctx, http.MethodPost, base+"/secrets", map[string]any{"name": name}, &created); err != nil {
		return "", err
	}
	if created.Value == "" {
		return "", errors.New("logto: RotateSecret: response without value")
	}
	secrets, err := c.Secrets(ctx, appID)
	if err != nil {
		return "", err
	}
	for _, s := range secrets {
		if s.Name == name {
			continue
		}
		err := c.do(ctx, http.MethodDelete, base+"/secrets/"+url.PathEscape(s.Name), nil, nil)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("logto: RotateSecret: deleting old secret %q: %w", s.Name, err)
		}
	}
	err = c.do(ctx, http.MethodDelete, base+"/legacy-secret", nil, nil)
	var ae *APIError
	if err != nil && !(errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusNotFound)) {
		// 400: the application has no legacy secret (any more).
		return "", fmt.Errorf("logto: RotateSecret: deleting the legacy secret: %w", err)
	}
	return created.Value, nil
}

// Grant is a user's grant to an application.
type Grant struct {
	ID          string       `json:"id"`
	ExpiresAt   int64        `json:"expiresAt"`
	Payload     GrantPayload `json:"payload"`
	Application struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"application"`
}

// GrantPayload is the OIDC grant record.
type GrantPayload struct {
	ClientID  string `json:"clientId"`
	AccountID string `json:"accountId"`
	Exp       int64  `json:"exp"`
	Iat       int64  `json:"iat"`
	JTI       string `json:"jti"`
}

// Expires returns when the grant expires.
func (g Grant) Expires() time.Time { return time.UnixMilli(g.ExpiresAt) }

// ListGrants lists the user's active grants to third-party applications.
func (c *Client) ListGrants(ctx context.Context, userID string) ([]Grant, error) {
	if userID == "" {
		return nil, errors.New("logto: ListGrants: user id is required")
	}
	var out struct {
		Grants []Grant `json:"grants"`
	}
	err := c.do(ctx, http.MethodGet, "/api/users/"+url.PathEscape(userID)+"/grants?appType=thirdParty", nil, &out)
	return out.Grants, err
}

// RevokeGrants revokes every grant of the user to the application, one by
// one, and returns how many it revoked. A grant that is already gone (404)
// counts as revoked; no grant at all is not an error.
func (c *Client) RevokeGrants(ctx context.Context, userID, appID string) (int, error) {
	if appID == "" {
		return 0, errors.New("logto: RevokeGrants: application id is required")
	}
	grants, err := c.ListGrants(ctx, userID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range grants {
		if g.Application.ID != appID {
			continue
		}
		err := c.do(ctx, http.MethodDelete, "/api/users/"+url.PathEscape(userID)+"/grants/"+url.PathEscape(g.ID), nil, nil)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return n, fmt.Errorf("logto: RevokeGrants: grant %s: %w", g.ID, err)
		}
		n++
	}
	return n, nil
}
