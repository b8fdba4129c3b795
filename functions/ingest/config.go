package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/myscrollr/connect/shared/settings"
	"github.com/myscrollr/connect/wasmhost"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes    = 4 << 20
	DefaultMaxBatch        = 1000
	DefaultRate            = 2000 // events per second per integration
	DefaultBurst           = 10000
	DefaultSourceTTL       = 30 * time.Second
	DefaultReplayRetention = 168 * time.Hour
)

// Config is ingest's configuration, read from the environment by ConfigFromEnv. The runtime's
// own settings (PORT, LOG_LEVEL, EVENTS_OIDC_*, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required): the PostgreSQL database; the schema version is
	// checked at start (shared/db.OpenCurrent).
	DatabaseURL string
	// LogtoEndpoint (LOGTO_ENDPOINT, required): the Logto base URL; push tokens are issued by
	// LogtoEndpoint + "/oidc".
	LogtoEndpoint string
	// APIResource (LOGTO_API_RESOURCE, required): the audience of push tokens.
	APIResource string
	// MaxBodyBytes (INGEST_MAX_BODY_BYTES, default 4 MiB) bounds a POST /v1/ingest body; it is
	// checked before anything is parsed (413).
	MaxBodyBytes int64
	// MaxBatch (INGEST_MAX_BATCH, default 1000) bounds the events of one batched request.
	MaxBatch int
	// Rate (INGEST_RATE, events per second, default 2000) and Burst (INGEST_BURST, default
	// 10000) are one integration's token bucket over HTTP; an event costs one token; a request
	// the bucket cannot pay for is answered 429 with Retry-After.
	Rate  float64
	Burst int
	// SourceTTL (INGEST_SOURCE_TTL, default 30s) is how long a push source (its integration
	// and compiled stream schemas) is cached before it is read again.
	SourceTTL time.Duration
	// ReplayRetention (INGEST_REPLAY_RETENTION, default 168h) is how long the (source, id) of
	// a stored event is remembered: a replay within it is answered "duplicate".
	ReplayRetention time.Duration
	// Wasm (WASM_*, wasmhost.ConfigFromEnv) bounds the WASM transforms records go through.
	Wasm wasmhost.Config
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var errs []error
	rp := settings.Check("ingest") // what does not parse
	c := Config{
		DatabaseURL:   strings.TrimSpace(getenv("DATABASE_URL")),
		LogtoEndpoint: strings.TrimSuffix(strings.TrimSpace(getenv("LOGTO_ENDPOINT")), "/"),
		APIResource:   strings.TrimSpace(getenv("LOGTO_API_RESOURCE")),
	}
	var body int
	rp.Int(getenv, "MaxBodyBytes", "INGEST_MAX_BODY_BYTES", DefaultMaxBodyBytes, &body)
	c.MaxBodyBytes = int64(body)
	rp.Int(getenv, "MaxBatch", "INGEST_MAX_BATCH", DefaultMaxBatch, &c.MaxBatch)
	c.Rate = DefaultRate
	if v := strings.TrimSpace(getenv("INGEST_RATE")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("ingest: Config.Rate (INGEST_RATE): %q is not a number", v))
		}
		c.Rate = f
	}
	rp.Int(getenv, "Burst", "INGEST_BURST", DefaultBurst, &c.Burst)
	rp.Duration(getenv, "SourceTTL", "INGEST_SOURCE_TTL", DefaultSourceTTL, &c.SourceTTL)
	rp.Duration(getenv, "ReplayRetention", "INGEST_REPLAY_RETENTION", DefaultReplayRetention, &c.ReplayRetention)
	if w, err := wasmhost.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, fmt.Errorf("ingest: Config.Wasm: %v", err))
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
	p := settings.Check("ingest")
	p.DatabaseURL(c.DatabaseURL)
	p.Logto(c.LogtoEndpoint, c.APIResource)
	bad := p.Addf
	c.check(bad)
	return p.Err()
}

// check validates the limits (also for a Config built in code, by New).
func (c Config) check(bad func(string, ...any)) {
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		bad("Config.MaxBodyBytes (INGEST_MAX_BODY_BYTES): must be between 1024 and 67108864, got %d", c.MaxBodyBytes)
	}
	if c.MaxBatch < 1 || c.MaxBatch > 10000 {
		bad("Config.MaxBatch (INGEST_MAX_BATCH): must be between 1 and 10000, got %d", c.MaxBatch)
	}
	if c.Rate <= 0 || c.Rate > 1e6 {
		bad("Config.Rate (INGEST_RATE): must be more than 0 and at most 1000000, got %g", c.Rate)
	}
	if c.Burst < c.MaxBatch || c.Burst > 10_000_000 {
		bad("Config.Burst (INGEST_BURST): must be at least INGEST_MAX_BATCH (%d) and at most 10000000, got %d", c.MaxBatch, c.Burst)
	}
	if c.SourceTTL < 0 || c.SourceTTL > time.Hour {
		bad("Config.SourceTTL (INGEST_SOURCE_TTL): must be between 0 and 1h, got %s", c.SourceTTL)
	}
	if c.ReplayRetention < time.Hour {
		bad("Config.ReplayRetention (INGEST_REPLAY_RETENTION): must be at least 1h, got %s", c.ReplayRetention)
	}
}
