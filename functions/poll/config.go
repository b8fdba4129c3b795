package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/myscrollr/connect/shared/settings"
	"github.com/myscrollr/connect/shared/ssrf"
	"github.com/myscrollr/connect/wasmhost"
)

// Defaults of Config.
const (
	DefaultTimeout            = 10 * time.Second
	DefaultConcurrency        = 64
	DefaultPerHost            = 2
	DefaultBatch              = 500
	DefaultMaxBodyBytes       = 8 << 20
	DefaultMinInterval        = 60 * time.Second
	DefaultRejectionRetention = 168 * time.Hour
	DefaultRejectionKeep      = 1000
	DefaultTickBudget         = 80 * time.Second
	// MaxBackoff caps the wait after repeated failures.
	MaxBackoff = time.Hour
)

// Config is poll's configuration, read from the environment by ConfigFromEnv. The runtime's
// own settings (PORT, LOG_LEVEL, EVENTS_OIDC_*, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required): the PostgreSQL database; the schema version is
	// checked at start (shared/db.OpenCurrent).
	DatabaseURL string
	// Allow (SSRF_ALLOW, optional, ssrf.ParseAllow): destinations exempt from the SSRF checks;
	// make dev and tests set 127.0.0.1/32, production leaves it empty.
	Allow []ssrf.Destination
	// LogtoEndpoint (LOGTO_ENDPOINT, required): the Logto base URL; user tokens of the
	// rejections route are issued by LogtoEndpoint + "/oidc".
	LogtoEndpoint string
	// APIResource (LOGTO_API_RESOURCE, required): the audience of those tokens.
	APIResource string
	// Timeout (POLL_TIMEOUT, default 10s) bounds one request to a source (GET /schema or GET
	// /data, body included).
	Timeout time.Duration
	// Concurrency (POLL_CONCURRENCY, default 64) is how many sources are polled at once.
	Concurrency int
	// PerHost (POLL_PER_HOST, default 2) is how many sources on one host are polled at once.
	PerHost int
	// Batch (POLL_BATCH, default 500) is the most sources claimed by one tick.
	Batch int
	// MaxBodyBytes (POLL_MAX_BODY_BYTES, default 8 MiB) bounds a GET /data body (GET /schema:
	// the smaller of this and 1 MiB).
	MaxBodyBytes int64
	// MinInterval (POLL_MIN_INTERVAL, default 60s) is the floor of a source's refresh
	// interval, and the first step of the backoff after a failure.
	MinInterval time.Duration
	// RejectionRetention (POLL_REJECTION_RETENTION, default 168h) is how long rejections are
	// kept.
	RejectionRetention time.Duration
	// RejectionKeep (POLL_REJECTION_KEEP, default 1000) is how many of an integration's newest
	// rejection rows are kept.
	RejectionKeep int
	// TickBudget (POLL_TICK_BUDGET, default 80s) bounds one tick: no source is started later
	// than TickBudget minus the longest a source may take (two requests and the write), so the
	// tick answers well inside Knative's request timeout (the Service's timeoutSeconds, 120).
	// Sources not started are released for the next tick.
	TickBudget time.Duration
	// Wasm (WASM_*, wasmhost.ConfigFromEnv) bounds the WASM transforms records go through.
	Wasm wasmhost.Config
}

// perSource is the longest one source may take: two requests and the database write.
func (c Config) perSource() time.Duration { return 2*c.Timeout + 10*time.Second }

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var errs []error
	rp := settings.Check("poll") // what does not parse
	c := Config{
		DatabaseURL:   strings.TrimSpace(getenv("DATABASE_URL")),
		LogtoEndpoint: strings.TrimSuffix(strings.TrimSpace(getenv("LOGTO_ENDPOINT")), "/"),
		APIResource:   strings.TrimSpace(getenv("LOGTO_API_RESOURCE")),
	}
	allow, err := ssrf.ParseAllow(getenv("SSRF_ALLOW"))
	if err != nil {
		errs = append(errs, fmt.Errorf("poll: Config.Allow (SSRF_ALLOW): %v", err))
	}
	c.Allow = allow
	rp.Duration(getenv, "Timeout", "POLL_TIMEOUT", DefaultTimeout, &c.Timeout)
	rp.Int(getenv, "Concurrency", "POLL_CONCURRENCY", DefaultConcurrency, &c.Concurrency)
	rp.Int(getenv, "PerHost", "POLL_PER_HOST", DefaultPerHost, &c.PerHost)
	rp.Int(getenv, "Batch", "POLL_BATCH", DefaultBatch, &c.Batch)
	var body int
	rp.Int(getenv, "MaxBodyBytes", "POLL_MAX_BODY_BYTES", DefaultMaxBodyBytes, &body)
	c.MaxBodyBytes = int64(body)
	rp.Duration(getenv, "MinInterval", "POLL_MIN_INTERVAL", DefaultMinInterval, &c.MinInterval)
	rp.Duration(getenv, "RejectionRetention", "POLL_REJECTION_RETENTION", DefaultRejectionRetention, &c.RejectionRetention)
	rp.Int(getenv, "RejectionKeep", "POLL_REJECTION_KEEP", DefaultRejectionKeep, &c.RejectionKeep)
	rp.Duration(getenv, "TickBudget", "POLL_TICK_BUDGET", DefaultTickBudget, &c.TickBudget)
	if w, err := wasmhost.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, fmt.Errorf("poll: Config.Wasm: %v", err))
	} else {
		c.Wasm = w
	}
	if err := rp.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	return c, c.validate()
}

// validate names the field and the environment variable of every problem.
func (c Config) validate() error {
	p := settings.Check("poll")
	p.DatabaseURL(c.DatabaseURL)
	p.Logto(c.LogtoEndpoint, c.APIResource)
	bad := p.Addf
	if c.Timeout < time.Second || c.Timeout > time.Minute {
		bad("Config.Timeout (POLL_TIMEOUT): must be between 1s and 1m, got %s", c.Timeout)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		bad("Config.Concurrency (POLL_CONCURRENCY): must be between 1 and 1024, got %d", c.Concurrency)
	}
	if c.PerHost < 1 || c.PerHost > 64 {
		bad("Config.PerHost (POLL_PER_HOST): must be between 1 and 64, got %d", c.PerHost)
	}
	if c.Batch < 1 || c.Batch > 10000 {
		bad("Config.Batch (POLL_BATCH): must be between 1 and 10000, got %d", c.Batch)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		bad("Config.MaxBodyBytes (POLL_MAX_BODY_BYTES): must be between 1024 and 67108864, got %d", c.MaxBodyBytes)
	}
	if c.MinInterval < time.Second || c.MinInterval > 24*time.Hour {
		bad("Config.MinInterval (POLL_MIN_INTERVAL): must be between 1s and 24h, got %s", c.MinInterval)
	}
	if c.RejectionRetention < time.Hour {
		bad("Config.RejectionRetention (POLL_REJECTION_RETENTION): must be at least 1h, got %s", c.RejectionRetention)
	}
	if c.RejectionKeep < 1 || c.RejectionKeep > 1_000_000 {
		bad("Config.RejectionKeep (POLL_REJECTION_KEEP): must be between 1 and 1000000, got %d", c.RejectionKeep)
	}
	if c.TickBudget <= c.perSource() || c.TickBudget > 110*time.Second {
		bad("Config.TickBudget (POLL_TICK_BUDGET): must exceed 2×POLL_TIMEOUT+10s (%s) and be at most 110s (Knative's timeout is 120s), got %s", c.perSource(), c.TickBudget)
	}
	return p.Err()
}
