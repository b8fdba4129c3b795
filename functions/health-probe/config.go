package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/myscrollr/connect/shared/ssrf"
)

// Defaults of the optional settings.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultDegradedAfter  = 2 * time.Second
	DefaultConcurrency    = 1536
	DefaultPerHost        = 4
	DefaultCheckRetention = 48 * time.Hour
)

// Bounds of the settings: beyond them a value is a mistake, not a choice.
const (
	maxTimeout     = 60 * time.Second // a sweep must end well inside the one-minute tick and the Service's timeoutSeconds
	maxConcurrency = 16384            // each probe in flight holds a socket (ulimit -n) and ~30 KiB
	maxPerHost     = 1024
	minRetention   = time.Hour
	maxRetention   = 30 * 24 * time.Hour
)

// Config is health-probe's configuration, read from the environment by ConfigFromEnv. The
// runtime's own settings (PORT, LOG_LEVEL, EVENTS_OIDC_*, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required) is the PostgreSQL database holding the catalog and
	// its health; the schema version is checked at start (shared/db.OpenCurrent: a function
	// never migrates; the migration Job or make dev does).
	DatabaseURL string
	// Allow (SSRF_ALLOW, optional, parsed by ssrf.ParseAllow) lists destinations exempt from
	// the SSRF checks. Only make dev and tests set it (127.0.0.1/32, for the demo
	// integrations); production leaves it empty, so only public https URLs are probed.
	Allow []ssrf.Destination
	// Timeout (PROBE_TIMEOUT, default 10s) bounds one probe as a whole: connecting, TLS,
	// redirects, the answer and its body. A probe that takes longer is offline ("timeout").
	Timeout time.Duration
	// DegradedAfter (PROBE_DEGRADED_AFTER, default 2s): a successful answer that took longer
	// is degraded. Less than Timeout.
	DegradedAfter time.Duration
	// Concurrency (PROBE_CONCURRENCY, default 1536) is how many probes run at once. A probe
	// that hangs holds its slot for the whole Timeout, and hanging ones go first (slowest
	// first), so Concurrency must stay well above the number of integrations that may hang,
	// leaving slots for the quick ones. 1536 sweeps 10,000 integrations of which 1,000 hang in
	// about Timeout + 1.5 s with a peak RSS near 160 MiB (BenchmarkSweep10k); each slot costs
	// about 50 KiB while in use. Raise it when more than about a thousand integrations may hang
	// at once.
	Concurrency int
	// PerHost (PROBE_PER_HOST, default 4) is how many probes run at once against one host name,
	// so many integrations on one host neither hammer it nor hold up the others.
	PerHost int
	// CheckRetention (PROBE_CHECK_RETENTION, default 48h) is how long raw checks
	// (integration_health) are kept; uptime comes from the rolled-up spans, kept 30 days.
	CheckRetention time.Duration
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{DatabaseURL: strings.TrimSpace(getenv("DATABASE_URL"))}
	var errs []error
	allow, err := ssrf.ParseAllow(getenv("SSRF_ALLOW"))
	if err != nil {
		errs = append(errs, fmt.Errorf("health-probe: Config.Allow (SSRF_ALLOW): %w", err))
	}
	c.Allow = allow
	dur := func(field, env string, def time.Duration, dst *time.Duration) {
		*dst = def
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("health-probe: Config.%s (%s): %q is not a duration such as 10s", field, env, v))
			return
		}
		*dst = d
	}
	num := func(field, env string, def int, dst *int) {
		*dst = def
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("health-probe: Config.%s (%s): %q is not a whole number", field, env, v))
			return
		}
		*dst = n
	}
	dur("Timeout", "PROBE_TIMEOUT", DefaultTimeout, &c.Timeout)
	dur("DegradedAfter", "PROBE_DEGRADED_AFTER", DefaultDegradedAfter, &c.DegradedAfter)
	num("Concurrency", "PROBE_CONCURRENCY", DefaultConcurrency, &c.Concurrency)
	num("PerHost", "PROBE_PER_HOST", DefaultPerHost, &c.PerHost)
	dur("CheckRetention", "PROBE_CHECK_RETENTION", DefaultCheckRetention, &c.CheckRetention)
	if len(errs) > 0 {
		return c, errors.Join(append(errs, c.validate())...)
	}
	return c, c.validate()
}

// validate names the field and the environment variable of every problem.
func (c Config) validate() error {
	var errs []error
	bad := func(field, env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("health-probe: Config.%s (%s): "+format, append([]any{field, env}, args...)...))
	}
	if c.DatabaseURL == "" {
		bad("DatabaseURL", "DATABASE_URL", "required")
	} else if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
		// pgconn's message may echo the password; say only what is wrong.
		bad("DatabaseURL", "DATABASE_URL", "not a valid PostgreSQL connection string")
	}
	if c.Timeout <= 0 || c.Timeout > maxTimeout {
		bad("Timeout", "PROBE_TIMEOUT", "must be more than 0 and at most %s, got %s", maxTimeout, c.Timeout)
	}
	if c.DegradedAfter <= 0 || c.DegradedAfter >= c.Timeout {
		bad("DegradedAfter", "PROBE_DEGRADED_AFTER", "must be more than 0 and less than PROBE_TIMEOUT (%s), got %s", c.Timeout, c.DegradedAfter)
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		bad("Concurrency", "PROBE_CONCURRENCY", "must be between 1 and %d, got %d", maxConcurrency, c.Concurrency)
	}
	if c.PerHost < 1 || c.PerHost > maxPerHost {
		bad("PerHost", "PROBE_PER_HOST", "must be between 1 and %d, got %d", maxPerHost, c.PerHost)
	}
	if c.CheckRetention < minRetention || c.CheckRetention > maxRetention {
		bad("CheckRetention", "PROBE_CHECK_RETENTION", "must be between %s and %s, got %s", minRetention, maxRetention, c.CheckRetention)
	}
	return errors.Join(errs...)
}
