package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/myscrollr/connect/events/webhook"
	"github.com/myscrollr/connect/shared/ssrf"
)

// Defaults of the optional settings.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultPerHost     = 4
	DefaultConcurrency = 64
	DefaultBatch       = 500
)

// Bounds of the settings.
const (
	maxTimeout     = 30 * time.Second // Standard Webhooks recommends 15-30 s
	maxPerHost     = 256
	maxConcurrency = 4096
	maxBatch       = 10000
	maxKeys        = 4 // every key signs every delivery: more is a mistake
)

// Config is notify's configuration, read from the environment by ConfigFromEnv. The runtime's
// own settings (PORT, LOG_LEVEL, EVENTS_OIDC_*, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required): the PostgreSQL database; the schema version is
	// checked at start (shared/db.OpenCurrent).
	DatabaseURL string
	// LogtoEndpoint (LOGTO_ENDPOINT, required): the Logto base URL; tokens are issued by
	// LogtoEndpoint + "/oidc".
	LogtoEndpoint string
	// APIResource (LOGTO_API_RESOURCE, required): the audience of developer and integration tokens.
	APIResource string
	// SigningKeys (LIFECYCLE_SIGNING_KEYS, required): comma-separated `kid:base64-ed25519-seed`
	// (webhook.ParsePrivateKeys), at most 4. Every key signs every delivery; the first is
	// published as "current". Secrets: never logged or printed (webhook.PrivateKey's
	// formatting shows the id only).
	SigningKeys []webhook.PrivateKey
	// RetiredKeys (LIFECYCLE_RETIRED_KEYS, optional): comma-separated `kid:whpk_base64`
	// public keys that no longer sign but stay published as "retired" for a while after a
	// rotation, so a delivery signed just before is still verifiable by a verifier that
	// refetched the key set meanwhile.
	RetiredKeys []webhook.PublicKey
	// Allow (SSRF_ALLOW, optional, ssrf.ParseAllow): destinations exempt from the SSRF rules;
	// make dev and tests set 127.0.0.1/32, production leaves it empty.
	Allow []ssrf.Destination
	// Timeout (DELIVERY_TIMEOUT, default 10s, at most 30s) bounds one delivery attempt.
	Timeout time.Duration
	// PerHost (DELIVERY_PER_HOST, default 4): attempts in flight at once to one host.
	PerHost int
	// Concurrency (DELIVERY_CONCURRENCY, default 64): attempts in flight at once in all.
	Concurrency int
	// Batch (DELIVERY_BATCH, default 500): due deliveries one wake-up claims at a time.
	Batch int
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:   strings.TrimSpace(getenv("DATABASE_URL")),
		LogtoEndpoint: strings.TrimRight(strings.TrimSpace(getenv("LOGTO_ENDPOINT")), "/"),
		APIResource:   strings.TrimSpace(getenv("LOGTO_API_RESOURCE")),
	}
	var errs []error
	bad := func(field, env string, err error) {
		errs = append(errs, fmt.Errorf("notify: Config.%s (%s): %w", field, env, err))
	}
	var err error
	if c.SigningKeys, err = webhook.ParsePrivateKeys(getenv("LIFECYCLE_SIGNING_KEYS")); err != nil {
		bad("SigningKeys", "LIFECYCLE_SIGNING_KEYS", err)
	}
	if c.RetiredKeys, err = webhook.ParsePublicKeys(getenv("LIFECYCLE_RETIRED_KEYS")); err != nil {
		bad("RetiredKeys", "LIFECYCLE_RETIRED_KEYS", err)
	}
	if c.Allow, err = ssrf.ParseAllow(getenv("SSRF_ALLOW")); err != nil {
		bad("Allow", "SSRF_ALLOW", err)
	}
	dur := func(field, env string, def time.Duration, dst *time.Duration) {
		*dst = def
		if v := strings.TrimSpace(getenv(env)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				bad(field, env, fmt.Errorf("%q is not a duration such as 10s", v))
				return
			}
			*dst = d
		}
	}
	num := func(field, env string, def int, dst *int) {
		*dst = def
		if v := strings.TrimSpace(getenv(env)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				bad(field, env, fmt.Errorf("%q is not a whole number", v))
				return
			}
			*dst = n
		}
	}
	dur("Timeout", "DELIVERY_TIMEOUT", DefaultTimeout, &c.Timeout)
	num("PerHost", "DELIVERY_PER_HOST", DefaultPerHost, &c.PerHost)
	num("Concurrency", "DELIVERY_CONCURRENCY", DefaultConcurrency, &c.Concurrency)
	num("Batch", "DELIVERY_BATCH", DefaultBatch, &c.Batch)
	if len(errs) > 0 {
		return c, errors.Join(append(errs, c.validate())...)
	}
	return c, c.validate()
}

// validate names the field and the environment variable of every problem.
func (c Config) validate() error {
	var errs []error
	bad := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("notify: Config.%s (%s): "+format, append([]any{field, env}, args...)...))
	}
	if c.DatabaseURL == "" {
		bad("DatabaseURL", "DATABASE_URL", "required")
	} else if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
		bad("DatabaseURL", "DATABASE_URL", "not a valid PostgreSQL connection string") // never echo it: it may hold a password
	}
	if !httpURL(c.LogtoEndpoint) {
		bad("LogtoEndpoint", "LOGTO_ENDPOINT", "required, an http(s) URL")
	}
	if c.APIResource == "" {
		bad("APIResource", "LOGTO_API_RESOURCE", "required")
	}
	if len(c.SigningKeys) == 0 || len(c.SigningKeys) > maxKeys {
		bad("SigningKeys", "LIFECYCLE_SIGNING_KEYS", "1 to %d keys `kid:base64-seed` required, got %d", maxKeys, len(c.SigningKeys))
	}
	seen := map[string]bool{}
	for _, k := range c.SigningKeys {
		seen[k.ID] = true
	}
	for _, k := range c.RetiredKeys {
		if seen[k.ID] {
			bad("RetiredKeys", "LIFECYCLE_RETIRED_KEYS", "key id %q is also a signing key", k.ID)
		}
	}
	if c.Timeout <= 0 || c.Timeout > maxTimeout {
		bad("Timeout", "DELIVERY_TIMEOUT", "must be more than 0 and at most %s, got %s", maxTimeout, c.Timeout)
	}
	if c.PerHost < 1 || c.PerHost > maxPerHost {
		bad("PerHost", "DELIVERY_PER_HOST", "must be between 1 and %d, got %d", maxPerHost, c.PerHost)
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		bad("Concurrency", "DELIVERY_CONCURRENCY", "must be between 1 and %d, got %d", maxConcurrency, c.Concurrency)
	}
	if c.Batch < 1 || c.Batch > maxBatch {
		bad("Batch", "DELIVERY_BATCH", "must be between 1 and %d, got %d", maxBatch, c.Batch)
	}
	return errors.Join(errs...)
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
