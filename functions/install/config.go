package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/myscrollr/connect/shared/payments"
	"github.com/myscrollr/connect/shared/sealed"
	"github.com/myscrollr/connect/shared/settings"
)

// DefaultTokenTTL is Config.TokenTTL's default: how long the user's tokens wait for the
// integration to claim them.
const DefaultTokenTTL = time.Hour

// Config is install's configuration, read from the environment by ConfigFromEnv. The
// runtime's own settings (PORT, LOG_LEVEL, EVENTS_OIDC_*, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required): the PostgreSQL database; the schema version is
	// checked at start (shared/db.OpenCurrent).
	DatabaseURL string
	// LogtoEndpoint (LOGTO_ENDPOINT, required): the Logto base URL. User and integration
	// tokens are issued by LogtoEndpoint + "/oidc"; consent runs at LogtoEndpoint + "/oidc/auth"
	// and codes are exchanged at LogtoEndpoint + "/oidc/token"; grants are revoked through its
	// Management API. It is platform configuration, never an integration's URL, so it is
	// called with a plain HTTP client (not the SSRF-safe one).
	LogtoEndpoint string
	// APIResource (LOGTO_API_RESOURCE, required): the audience of user tokens, and the
	// resource the consent asks tokens for.
	APIResource string
	// LogtoAppID and LogtoAppSecret (LOGTO_M2M_APP_ID, LOGTO_M2M_APP_SECRET, required): the
	// Management API machine-to-machine credentials (revoking a grant the platform must not
	// keep, see doc.go).
	LogtoAppID     string
	LogtoAppSecret string
	// LogtoManagementResource (LOGTO_MANAGEMENT_RESOURCE, optional): the Management API
	// resource indicator; empty means logto.DefaultResource.
	LogtoManagementResource string
	// Keys (CLIENT_SECRET_KEYS, required, shared/sealed): the same keys as the registry's.
	// They open the integrations' client secrets and seal the PKCE verifiers, states and user
	// tokens this function keeps.
	Keys *sealed.Keys
	// InstallCallbackURL (INSTALL_CALLBACK_URL, required): the redirect URI of every consent,
	// the public URL of GET /v1/installs/callback (make dev: the front door +
	// /v1/installs/callback). The registry registers it first in every integration's
	// application; both functions must have the same value.
	InstallCallbackURL string
	// FrontendURL (FRONTEND_URL, required): where the callback sends the browser, with
	// ?installed=<name> or ?install_error=<reason>.
	FrontendURL string
	// TokenTTL (INSTALL_TOKEN_TTL, default 1h, between 1m and 24h): how long the user's tokens
	// wait, sealed, for the integration to claim them.
	TokenTTL time.Duration
	// Payments (STRIPE_SECRET_KEY, STRIPE_API_BASE, PLATFORM_FEE_PERCENT, read by
	// shared/payments): how paid installs reach Stripe Checkout (checkout.go). Nil when
	// STRIPE_SECRET_KEY is not set: free installs work, paid ones answer 503.
	Payments *payments.Config
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it. Every
// setting is read by its literal name (the deployment's tests look for the literals).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var errs []error
	c := Config{
		DatabaseURL:             strings.TrimSpace(getenv("DATABASE_URL")),
		LogtoEndpoint:           strings.TrimSuffix(strings.TrimSpace(getenv("LOGTO_ENDPOINT")), "/"),
		APIResource:             strings.TrimSpace(getenv("LOGTO_API_RESOURCE")),
		LogtoAppID:              getenv("LOGTO_M2M_APP_ID"),
		LogtoAppSecret:          getenv("LOGTO_M2M_APP_SECRET"),
		LogtoManagementResource: strings.TrimSpace(getenv("LOGTO_MANAGEMENT_RESOURCE")),
		InstallCallbackURL:      strings.TrimSpace(getenv("INSTALL_CALLBACK_URL")),
		FrontendURL:             strings.TrimSpace(getenv("FRONTEND_URL")),
		TokenTTL:                DefaultTokenTTL,
	}
	if v := strings.TrimSpace(getenv("CLIENT_SECRET_KEYS")); v == "" {
		errs = append(errs, errors.New("install: Config.Keys (CLIENT_SECRET_KEYS): required"))
	} else if k, err := sealed.Parse(v); err != nil {
		// sealed's messages name entries and key ids, never key material.
		errs = append(errs, fmt.Errorf("install: Config.Keys (CLIENT_SECRET_KEYS): %v", err))
	} else {
		c.Keys = k
	}
	if v := strings.TrimSpace(getenv("INSTALL_TOKEN_TTL")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("install: Config.TokenTTL (INSTALL_TOKEN_TTL): %q is not a duration (e.g. 1h)", v))
		} else {
			c.TokenTTL = d
		}
	}
	if strings.TrimSpace(getenv("STRIPE_SECRET_KEY")) != "" {
		if p, err := payments.ConfigFromEnv(getenv); err != nil {
			errs = append(errs, fmt.Errorf("install: Config.Payments: %v", err))
		} else {
			c.Payments = &p
		}
	}
	if err := c.validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// validate names the field and the environment variable of every problem.
func (c Config) validate() error {
	p := settings.Check("install")
	p.DatabaseURL(c.DatabaseURL)
	p.Logto(c.LogtoEndpoint, c.APIResource)
	p.ManagementAPI(c.LogtoAppID, c.LogtoAppSecret, c.LogtoManagementResource)
	for _, u := range []struct{ field, env, value string }{
		{"InstallCallbackURL", "INSTALL_CALLBACK_URL", c.InstallCallbackURL},
		{"FrontendURL", "FRONTEND_URL", c.FrontendURL},
	} {
		if !p.Required(u.field, u.env, u.value) {
			continue
		}
		if pu, err := url.Parse(u.value); err != nil || !settings.IsHTTPURL(u.value) || pu.Fragment != "" || pu.RawQuery != "" {
			p.Add(u.field, u.env, "%q is not an absolute http(s) URL without a query or fragment", u.value)
		}
	}
	if c.TokenTTL < time.Minute || c.TokenTTL > 24*time.Hour {
		p.Add("TokenTTL", "INSTALL_TOKEN_TTL", "must be between 1m and 24h, got %s", c.TokenTTL)
	}
	return p.Err()
}
