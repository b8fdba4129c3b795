package main

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultMaxBody bounds a webhook body. Logto's payloads carry one user or role (with its
// roles); 256 KiB is far above any real one.
const DefaultMaxBody = 256 << 10

// DefaultPlatformRoles are the Logto role names that make a user a platform developer or
// administrator.
var DefaultPlatformRoles = []string{"developer", "admin"}

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
