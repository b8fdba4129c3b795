package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/myscrollr/connect/shared/payments"
	"github.com/myscrollr/connect/shared/sealed"
	"github.com/myscrollr/connect/shared/settings"
	"github.com/myscrollr/connect/shared/ssrf"
	"github.com/myscrollr/connect/wasmhost"
)

// Defaults of Config.
const (
	DefaultCheckTimeout         = 20 * time.Second
	DefaultCheckHealthThreshold = 2 * time.Second
)

// Config is registry's configuration, read from the environment by ConfigFromEnv. The
// runtime's own settings (PORT, LOG_LEVEL, EVENTS_OIDC_*, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required): the PostgreSQL database; the schema version is
	// checked at start (shared/db.OpenCurrent).
	DatabaseURL string
	// LogtoEndpoint (LOGTO_ENDPOINT, required): the Logto base URL. User tokens are issued by
	// LogtoEndpoint + "/oidc"; applications are created through its Management API.
	LogtoEndpoint string
	// APIResource (LOGTO_API_RESOURCE, required): the audience of user tokens.
	APIResource string
	// LogtoAppID and LogtoAppSecret (LOGTO_M2M_APP_ID, LOGTO_M2M_APP_SECRET, required): the
	// Management API machine-to-machine credentials.
	LogtoAppID     string
	LogtoAppSecret string
	// LogtoManagementResource (LOGTO_MANAGEMENT_RESOURCE, optional): the Management API
	// resource indicator; empty means logto.DefaultResource.
	LogtoManagementResource string
	// Allow (SSRF_ALLOW, optional, ssrf.ParseAllow): destinations the automated checks may
	// reach although the SSRF rules refuse them; make dev and tests set 127.0.0.1/32.
	Allow []ssrf.Destination
	// Keys (CLIENT_SECRET_KEYS, required, shared/sealed): `<kid>:<base64 of 32 bytes>`,
	// comma-separated; the first seals the integrations' Logto client secrets, all open.
	Keys *sealed.Keys
	// InstallCallbackURL (INSTALL_CALLBACK_URL, required): the platform's install callback,
	// the first redirect URI of every integration's Logto application (e.g.
	// https://api.myscrollr.com/v1/installs/callback).
	InstallCallbackURL string
	// AllowLoopbackHTTP (MANIFEST_ALLOW_LOOPBACK_HTTP, default false): manifests may use
	// http://127.0.0.1 URLs (make dev sets it; manifest.Options.AllowLoopbackHTTP).
	AllowLoopbackHTTP bool
	// CheckTimeout (CHECK_TIMEOUT, default 20s) bounds one run of the automated checks.
	CheckTimeout time.Duration
	// CheckHealthThreshold (CHECK_HEALTH_THRESHOLD, default 2s): GET /health must answer
	// within it for the health check to pass.
	CheckHealthThreshold time.Duration
	// Payments (STRIPE_SECRET_KEY, STRIPE_API_BASE, PLATFORM_FEE_PERCENT, read by
	// shared/payments): Connect onboarding (payouts.go). Nil when STRIPE_SECRET_KEY is not set:
	// POST /v1/developer/payouts answers 503.
	Payments *payments.Config
	// PayoutsReturnURL (PAYOUTS_RETURN_URL, default FRONTEND_URL?payouts=return) and
	// PayoutsRefreshURL (PAYOUTS_REFRESH_URL, default FRONTEND_URL?payouts=refresh): where
	// Stripe's onboarding sends the developer when done, or when the link expired. Required (one
	// way or the other) with STRIPE_SECRET_KEY.
	PayoutsReturnURL, PayoutsRefreshURL string
	// Wasm (WASM_*, wasmhost.ConfigFromEnv) bounds the WASM transforms uploaded and tried.
	Wasm wasmhost.Config
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
	}
	allow, err := ssrf.ParseAllow(getenv("SSRF_ALLOW"))
	if err != nil {
		errs = append(errs, fmt.Errorf("registry: Config.Allow (SSRF_ALLOW): %v", err))
	}
	c.Allow = allow
	if v := strings.TrimSpace(getenv("CLIENT_SECRET_KEYS")); v == "" {
		errs = append(errs, errors.New("registry: Config.Keys (CLIENT_SECRET_KEYS): required"))
	} else if k, err := sealed.Parse(v); err != nil {
		// sealed's messages name entries and key ids, never key material.
		errs = append(errs, fmt.Errorf("registry: Config.Keys (CLIENT_SECRET_KEYS): %v", err))
	} else {
		c.Keys = k
	}
	if v := strings.TrimSpace(getenv("MANIFEST_ALLOW_LOOPBACK_HTTP")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("registry: Config.AllowLoopbackHTTP (MANIFEST_ALLOW_LOOPBACK_HTTP): %q is not a boolean", v))
		}
		c.AllowLoopbackHTTP = b
	}
	dur := func(dst *time.Duration, v, name, field string, def time.Duration) {
		*dst = def
		if v = strings.TrimSpace(v); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("registry: Config.%s (%s): %q is not a duration (e.g. 2s)", field, name, v))
				return
			}
			*dst = d
		}
	}
	dur(&c.CheckTimeout, getenv("CHECK_TIMEOUT"), "CHECK_TIMEOUT", "CheckTimeout", DefaultCheckTimeout)
	dur(&c.CheckHealthThreshold, getenv("CHECK_HEALTH_THRESHOLD"), "CHECK_HEALTH_THRESHOLD", "CheckHealthThreshold", DefaultCheckHealthThreshold)
	if strings.TrimSpace(getenv("STRIPE_SECRET_KEY")) != "" {
		if p, err := payments.ConfigFromEnv(getenv); err != nil {
			errs = append(errs, fmt.Errorf("registry: Config.Payments: %v", err))
		} else {
			c.Payments = &p
		}
		c.PayoutsReturnURL, c.PayoutsRefreshURL = payoutURLs(strings.TrimSpace(getenv("FRONTEND_URL")),
			strings.TrimSpace(getenv("PAYOUTS_RETURN_URL")), strings.TrimSpace(getenv("PAYOUTS_REFRESH_URL")))
	}
	if w, err := wasmhost.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, fmt.Errorf("registry: Config.Wasm: %v", err))
	} else {
		c.Wasm = w
	}
	if len(errs) > 0 {
		return c, errors.Join(append(errs, c.validate())...)
	}
	return c, c.validate()
}

// validate names the field and the environment variable of every problem.
func (c Config) validate() error {
	p := settings.Check("registry")
	p.DatabaseURL(c.DatabaseURL)
	p.Logto(c.LogtoEndpoint, c.APIResource)
	p.ManagementAPI(c.LogtoAppID, c.LogtoAppSecret, c.LogtoManagementResource)
	bad := p.Addf
	if c.InstallCallbackURL == "" {
		bad("Config.InstallCallbackURL (INSTALL_CALLBACK_URL): required")
	} else if u, err := url.Parse(c.InstallCallbackURL); err != nil || !settings.IsHTTPURL(c.InstallCallbackURL) || u.Fragment != "" {
		bad("Config.InstallCallbackURL (INSTALL_CALLBACK_URL): %q is not an absolute http(s) URL without a fragment", c.InstallCallbackURL)
	}
	if c.Payments != nil {
		for _, u := range []struct{ field, env, value string }{
			{"PayoutsReturnURL", "PAYOUTS_RETURN_URL or FRONTEND_URL", c.PayoutsReturnURL},
			{"PayoutsRefreshURL", "PAYOUTS_REFRESH_URL or FRONTEND_URL", c.PayoutsRefreshURL},
		} {
			if !settings.IsHTTPURL(u.value) {
				bad("Config.%s (%s): an absolute http(s) URL is required with STRIPE_SECRET_KEY, got %q", u.field, u.env, u.value)
			}
		}
	}
	if c.CheckTimeout < time.Second || c.CheckTimeout > 2*time.Minute {
		bad("Config.CheckTimeout (CHECK_TIMEOUT): must be between 1s and 2m, got %s", c.CheckTimeout)
	}
	if c.CheckHealthThreshold < 10*time.Millisecond || c.CheckHealthThreshold >= c.CheckTimeout {
		bad("Config.CheckHealthThreshold (CHECK_HEALTH_THRESHOLD): must be at least 10ms and less than CHECK_TIMEOUT (%s), got %s", c.CheckTimeout, c.CheckHealthThreshold)
	}
	return p.Err()
}
