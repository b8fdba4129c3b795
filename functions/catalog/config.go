package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config is the catalog's configuration, read from the environment by ConfigFromEnv. The
// runtime's own settings (PORT, LOG_LEVEL, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required) is the PostgreSQL database holding the catalog;
	// the schema version is checked at start (shared/db.OpenCurrent: a function never
	// migrates; the migration Job or make dev does).
	DatabaseURL string
	// LogtoEndpoint (LOGTO_ENDPOINT) is the Logto base URL; the user tokens of the review
	// writes are issued by LogtoEndpoint + "/oidc". Optional together with APIResource: without
	// both, PUT and DELETE .../reviews/mine answer 503 and the public GETs work as ever.
	LogtoEndpoint string
	// APIResource (LOGTO_API_RESOURCE) is the audience of those tokens.
	APIResource string
	// MaxConns (DB_MAX_CONNS, default 8, 1 to 100) is the size of the connection pool, and
	// the number of requests that run at once (each uses one connection).
	MaxConns int
	// MaxWaiting (CATALOG_MAX_WAITING, default 64, 0 to 10000) is how many requests may wait
	// for one of the MaxConns slots; more are answered 503 at once.
	MaxWaiting int
	// QueueTimeout (CATALOG_QUEUE_TIMEOUT, default 50ms, 1ms to 10s) is how long a request
	// waits for a slot before it is answered 503.
	QueueTimeout time.Duration
	// RetryAfter (CATALOG_RETRY_AFTER, default 1s, 1s to 1m, whole seconds) is the
	// Retry-After of a 503.
	RetryAfter time.Duration
}

// Defaults of Config.
const (
	DefaultMaxConns     = 8
	DefaultMaxWaiting   = 64
	DefaultQueueTimeout = 50 * time.Millisecond
	DefaultRetryAfter   = time.Second
)

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:   strings.TrimSpace(getenv("DATABASE_URL")),
		LogtoEndpoint: strings.TrimSuffix(strings.TrimSpace(getenv("LOGTO_ENDPOINT")), "/"),
		APIResource:   strings.TrimSpace(getenv("LOGTO_API_RESOURCE")),
	}
	var errs []error
	num := func(dst *int, name, field, raw string, def int) {
		*dst = def
		if raw = strings.TrimSpace(raw); raw == "" {
			return
		}
		n, err := strconv.Atoi(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("catalog: Config.%s (%s): %q is not an integer", field, name, raw))
			return
		}
		*dst = n
	}
	dur := func(dst *time.Duration, name, field, raw string, def time.Duration) {
		*dst = def
		if raw = strings.TrimSpace(raw); raw == "" {
			return
		}
		d, err := time.ParseDuration(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("catalog: Config.%s (%s): %q is not a duration such as 50ms", field, name, raw))
			return
		}
		*dst = d
	}
	num(&c.MaxConns, "DB_MAX_CONNS", "MaxConns", getenv("DB_MAX_CONNS"), DefaultMaxConns)
	num(&c.MaxWaiting, "CATALOG_MAX_WAITING", "MaxWaiting", getenv("CATALOG_MAX_WAITING"), DefaultMaxWaiting)
	dur(&c.QueueTimeout, "CATALOG_QUEUE_TIMEOUT", "QueueTimeout", getenv("CATALOG_QUEUE_TIMEOUT"), DefaultQueueTimeout)
	dur(&c.RetryAfter, "CATALOG_RETRY_AFTER", "RetryAfter", getenv("CATALOG_RETRY_AFTER"), DefaultRetryAfter)
	if err := c.validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// validate names the field and the environment variable of every problem.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("catalog: "+format, a...)) }
	if c.DatabaseURL == "" {
		bad("Config.DatabaseURL (DATABASE_URL): required")
	} else if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
		// pgconn's message may echo the password; say only what is wrong.
		bad("Config.DatabaseURL (DATABASE_URL): not a valid PostgreSQL connection string")
	}
	switch {
	case (c.LogtoEndpoint == "") != (c.APIResource == ""):
		bad("Config.LogtoEndpoint (LOGTO_ENDPOINT) and Config.APIResource (LOGTO_API_RESOURCE): set both or neither")
	case c.LogtoEndpoint != "":
		if u, err := url.Parse(c.LogtoEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("Config.LogtoEndpoint (LOGTO_ENDPOINT): %q is not an http(s) URL", c.LogtoEndpoint)
		}
	}
	if c.MaxConns < 1 || c.MaxConns > 100 {
		bad("Config.MaxConns (DB_MAX_CONNS): must be between 1 and 100, got %d", c.MaxConns)
	}
	if c.MaxWaiting < 0 || c.MaxWaiting > 10000 {
		bad("Config.MaxWaiting (CATALOG_MAX_WAITING): must be between 0 and 10000, got %d", c.MaxWaiting)
	}
	if c.QueueTimeout < time.Millisecond || c.QueueTimeout > 10*time.Second {
		bad("Config.QueueTimeout (CATALOG_QUEUE_TIMEOUT): must be between 1ms and 10s, got %s", c.QueueTimeout)
	}
	if c.RetryAfter < time.Second || c.RetryAfter > time.Minute || c.RetryAfter%time.Second != 0 {
		bad("Config.RetryAfter (CATALOG_RETRY_AFTER): must be whole seconds between 1s and 1m, got %s", c.RetryAfter)
	}
	return errors.Join(errs...)
}

// poolURL is DatabaseURL with the pool size set to MaxConns (pgxpool reads pool_max_conns from
// the connection string, URL or key=value form; a value already there is replaced).
func (c Config) poolURL() string {
	n := strconv.Itoa(c.MaxConns)
	if u, err := url.Parse(c.DatabaseURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("pool_max_conns", n)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return c.DatabaseURL + " pool_max_conns=" + n
}
