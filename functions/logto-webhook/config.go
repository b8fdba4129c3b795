package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultMaxBody bounds a webhook body. Logto's payloads carry one user or role (with its
// roles); 256 KiB is far above any real one.
const DefaultMaxBody = 256 << 10

// DefaultPlatformRoles are the Logto role names that make a user a platform developer or
// administrator.
var DefaultPlatformRoles = []string{"developer", "admin"}

// DefaultTombstoneRetention is how long a deletion is remembered. Logto retries a failed
// delivery a fixed 3 times and then gives up (its hooks API: "the retry times is fixed to 3",
// shared/contracts/logto/hooks.openapi.json); it publishes no delay schedule, but 30 days
// outlasts any such retry sequence, a Logto or gateway outage and the backlog after it by
// orders of magnitude, while the table stays bounded by one month of deletions.
const DefaultTombstoneRetention = 30 * 24 * time.Hour

// MinTombstoneRetention is the shortest retention accepted: less could forget a deletion while
// Logto may still deliver an older event about it.
const MinTombstoneRetention = 24 * time.Hour

// DefaultCleanupInterval is how often a running instance deletes expired tombstones (it also
// does so when it starts, which is what matters for an instance scaled to zero).
const DefaultCleanupInterval = time.Hour

// Config configures the webhook receiver.
type Config struct {
	// DatabaseURL is the PostgreSQL URL (DATABASE_URL).
	DatabaseURL string
	// SigningKeys are the hook signing keys (LOGTO_WEBHOOK_SIGNING_KEY, comma-separated);
	// a signature made with any of them is accepted, so a key can be rotated without
	// dropping deliveries.
	SigningKeys []string
	// PlatformRoles are the Logto role names tracked in developer_roles (PLATFORM_ROLES);
	// default DefaultPlatformRoles.
	PlatformRoles []string
	// MaxBody bounds the request body in bytes; default DefaultMaxBody.
	MaxBody int64
	// TombstoneRetention (LOGTO_TOMBSTONE_RETENTION) is how long user and role deletions are
	// kept to stop late role events; default DefaultTombstoneRetention, at least
	// MinTombstoneRetention.
	TombstoneRetention time.Duration
	// CleanupInterval (LOGTO_CLEANUP_INTERVAL) is how often expired tombstones are deleted
	// while the function runs; default DefaultCleanupInterval.
	CleanupInterval time.Duration
}

// ConfigFromEnv reads the configuration through getenv and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		DatabaseURL:   getenv("DATABASE_URL"),
		SigningKeys:   splitList(getenv("LOGTO_WEBHOOK_SIGNING_KEY")),
		PlatformRoles: splitList(getenv("PLATFORM_ROLES")),
	}
	if cfg.DatabaseURL == "" {
		return cfg, errors.New("logto-webhook: DATABASE_URL is required")
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{"LOGTO_TOMBSTONE_RETENTION", &cfg.TombstoneRetention}, {"LOGTO_CLEANUP_INTERVAL", &cfg.CleanupInterval}} {
		if v := getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil {
				return cfg, fmt.Errorf("logto-webhook: %s: %q is not a duration (like 720h or 1h)", d.env, v)
			}
			*d.dst = x
		}
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	if len(c.SigningKeys) == 0 {
		return errors.New("logto-webhook: Config.SigningKeys (LOGTO_WEBHOOK_SIGNING_KEY) is required")
	}
	for i, k := range c.SigningKeys {
		if len(k) < 16 {
			return fmt.Errorf("logto-webhook: Config.SigningKeys[%d] (LOGTO_WEBHOOK_SIGNING_KEY): at least 16 characters", i)
		}
	}
	if len(c.PlatformRoles) == 0 {
		c.PlatformRoles = DefaultPlatformRoles
	}
	for i, r := range c.PlatformRoles {
		if len(r) > 128 {
			return fmt.Errorf("logto-webhook: Config.PlatformRoles[%d] (PLATFORM_ROLES): at most 128 characters", i)
		}
	}
	if c.MaxBody < 0 {
		return errors.New("logto-webhook: Config.MaxBody must not be negative")
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.TombstoneRetention == 0 {
		c.TombstoneRetention = DefaultTombstoneRetention
	}
	if c.TombstoneRetention < MinTombstoneRetention {
		return fmt.Errorf("logto-webhook: Config.TombstoneRetention (LOGTO_TOMBSTONE_RETENTION): at least %s, got %s",
			MinTombstoneRetention, c.TombstoneRetention)
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = DefaultCleanupInterval
	}
	if c.CleanupInterval < 0 {
		return fmt.Errorf("logto-webhook: Config.CleanupInterval (LOGTO_CLEANUP_INTERVAL): must be positive, got %s", c.CleanupInterval)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
