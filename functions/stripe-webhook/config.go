package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultMaxBody bounds a webhook body. Stripe's events carry one object (a Checkout Session
// with its line items is the largest we take, a few KiB); 512 KiB is far above any real one.
const DefaultMaxBody = 512 << 10

// DefaultGracePeriod is how long a subscription may stay with an unpaid renewal before the
// install ends (PAYMENT_GRACE_PERIOD). Stripe's default Smart Retries schedule retries a failed
// renewal over up to two weeks; three days lets a user fix their card without the integration
// losing their data, and bounds how long the developer serves an unpaying user.
const DefaultGracePeriod = 72 * time.Hour

// DefaultSweepInterval is how often a running instance ends the installs whose grace period
// has passed (it also does so when it starts).
const DefaultSweepInterval = 15 * time.Minute

// Config configures the webhook receiver.
type Config struct {
	// DatabaseURL is the PostgreSQL URL (DATABASE_URL).
	DatabaseURL string
	// Secrets are the endpoint signing secrets (STRIPE_WEBHOOK_SECRET, comma-separated,
	// whsec_...): a signature made with any of them is accepted, so a secret can be rolled
	// without dropping deliveries.
	Secrets []string
	// Livemode is the mode events must carry: true when STRIPE_SECRET_KEY is a live key
	// (sk_live_, rk_live_). A test event at a live endpoint, or the reverse, is refused.
	Livemode bool
	// FeePercent is the platform fee (PLATFORM_FEE_PERCENT, see shared/payments), used for
	// the fee of a payment whose Stripe object does not state it.
	FeePercent int
	// GracePeriod (PAYMENT_GRACE_PERIOD) is how long an unpaid renewal is tolerated before the
	// install ends; default DefaultGracePeriod, 0 ends it at the first failure.
	GracePeriod time.Duration
	// SweepInterval (PAYMENT_SWEEP_INTERVAL) is how often grace periods are checked while
	// running; default DefaultSweepInterval.
	SweepInterval time.Duration
	// Tolerance is how old a signature may be; default 300 s (stripe-go's DefaultTolerance).
	Tolerance time.Duration
	// MaxBody bounds the request body in bytes; default DefaultMaxBody.
	MaxBody int64
}

// ConfigFromEnv reads the configuration through getenv and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	key := strings.TrimSpace(getenv("STRIPE_SECRET_KEY"))
	cfg := Config{
		DatabaseURL: getenv("DATABASE_URL"),
		Secrets:     splitList(getenv("STRIPE_WEBHOOK_SECRET")),
		Livemode:    strings.HasPrefix(key, "sk_live_") || strings.HasPrefix(key, "rk_live_"),
		FeePercent:  -1,
	}
	if cfg.DatabaseURL == "" {
		return cfg, errors.New("stripe-webhook: DATABASE_URL is required")
	}
	if key == "" {
		return cfg, errors.New("stripe-webhook: STRIPE_SECRET_KEY is required (its mode, test or live, is the mode events must carry)")
	}
	if v := strings.TrimSpace(getenv("PLATFORM_FEE_PERCENT")); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &cfg.FeePercent); err != nil || fmt.Sprint(cfg.FeePercent) != v {
			return cfg, fmt.Errorf("stripe-webhook: PLATFORM_FEE_PERCENT: %q is not a whole number of percent", v)
		}
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{"PAYMENT_GRACE_PERIOD", &cfg.GracePeriod}, {"PAYMENT_SWEEP_INTERVAL", &cfg.SweepInterval}} {
		if v := getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil {
				return cfg, fmt.Errorf("stripe-webhook: %s: %q is not a duration (like 72h)", d.env, v)
			}
			if x == 0 && d.env == "PAYMENT_GRACE_PERIOD" {
				x = -1 // explicitly none; validate turns it back into 0
			}
			*d.dst = x
		}
	}
	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	if len(c.Secrets) == 0 {
		return errors.New("stripe-webhook: Config.Secrets (STRIPE_WEBHOOK_SECRET) is required")
	}
	for i, s := range c.Secrets {
		if len(s) < 16 {
			return fmt.Errorf("stripe-webhook: Config.Secrets[%d] (STRIPE_WEBHOOK_SECRET): at least 16 characters", i)
		}
	}
	if c.FeePercent == -1 {
		c.FeePercent = 15
	}
	if c.FeePercent < 0 || c.FeePercent > 50 {
		return fmt.Errorf("stripe-webhook: Config.FeePercent (PLATFORM_FEE_PERCENT): 0 to 50, got %d", c.FeePercent)
	}
	switch {
	case c.GracePeriod == -1:
		c.GracePeriod = 0
	case c.GracePeriod == 0:
		c.GracePeriod = DefaultGracePeriod
	case c.GracePeriod < 0:
		return fmt.Errorf("stripe-webhook: Config.GracePeriod (PAYMENT_GRACE_PERIOD): must not be negative, got %s", c.GracePeriod)
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.SweepInterval < 0 {
		return fmt.Errorf("stripe-webhook: Config.SweepInterval (PAYMENT_SWEEP_INTERVAL): must be positive, got %s", c.SweepInterval)
	}
	if c.Tolerance == 0 {
		c.Tolerance = 300 * time.Second
	}
	if c.MaxBody < 0 {
		return errors.New("stripe-webhook: Config.MaxBody must not be negative")
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
