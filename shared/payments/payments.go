// Package payments holds what the functions that talk to Stripe share: the settings (secret
// key, API base, the platform fee), a stripe-go client pinned to the library's API version,
// idempotency keys derived from durable ids, and the fee arithmetic.
//
// # Idempotency keys
//
// Every call that creates something at Stripe carries an Idempotency-Key derived from the
// durable id of what it is for (IdempotencyKey): the developer id for a connected account,
// the pending install id for a Checkout Session. A function that crashes, or whose commit
// fails, after Stripe answered and before its own transaction committed, retries with the same
// key, and Stripe answers the first result again instead of creating a second account or
// session. Stripe keeps keys for at least 24 hours; a retry later than that is a new request,
// which is why the durable rows are looked up first (an account id already stored is reused).
//
// # The fee
//
// PLATFORM_FEE_PERCENT (default 15, an integer from 0 to 50) is the platform's share. A
// one-time purchase carries application_fee_amount = Fee(price): the percentage of the price
// in cents, rounded half up. A subscription carries application_fee_percent = the same
// percentage, which Stripe applies to each invoice; the webhook records the fee of each paid
// invoice with Fee, the same rounding.
package payments

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/client"
)

// defaultTimeout bounds one call to Stripe when the caller gives no client.
const defaultTimeout = 30 * time.Second

// DefaultFeePercent is the platform fee when PLATFORM_FEE_PERCENT is not set.
const DefaultFeePercent = 15

// MaxFeePercent is the largest platform fee accepted.
const MaxFeePercent = 50

// APIVersion is the Stripe API version every call and every webhook event is pinned to
// (stripe-go's own; stripe-mock answers it).
const APIVersion = stripe.APIVersion

// Config is what a function needs to call Stripe.
type Config struct {
	// SecretKey is the platform's Stripe secret key (STRIPE_SECRET_KEY): sk_test_... or
	// sk_live_... (or a restricted rk_ key). Its mode decides Livemode.
	SecretKey string
	// APIBase is the Stripe API base URL (STRIPE_API_BASE); empty means Stripe itself. Local
	// runs and tests point it at stripe-mock.
	APIBase string
	// FeePercent is the platform fee in percent (PLATFORM_FEE_PERCENT), 0 to MaxFeePercent;
	// nil means DefaultFeePercent.
	FeePercent *int
}

// ConfigFromEnv reads STRIPE_SECRET_KEY, STRIPE_API_BASE and PLATFORM_FEE_PERCENT through
// getenv and validates them.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{SecretKey: strings.TrimSpace(getenv("STRIPE_SECRET_KEY")), APIBase: strings.TrimSpace(getenv("STRIPE_API_BASE"))}
	if v := strings.TrimSpace(getenv("PLATFORM_FEE_PERCENT")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return cfg, fmt.Errorf("payments: PLATFORM_FEE_PERCENT: %q is not a whole number of percent", v)
		}
		cfg.FeePercent = &n
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration, naming the field and its environment variable.
func (c Config) Validate() error {
	switch {
	case c.SecretKey == "":
		return errors.New("payments: Config.SecretKey (STRIPE_SECRET_KEY) is required")
	case !strings.HasPrefix(c.SecretKey, "sk_test_") && !strings.HasPrefix(c.SecretKey, "sk_live_") &&
		!strings.HasPrefix(c.SecretKey, "rk_test_") && !strings.HasPrefix(c.SecretKey, "rk_live_"):
		return errors.New("payments: Config.SecretKey (STRIPE_SECRET_KEY) must be a Stripe secret key (sk_test_, sk_live_, rk_test_ or rk_live_)")
	}
	if c.APIBase != "" && !strings.HasPrefix(c.APIBase, "http://") && !strings.HasPrefix(c.APIBase, "https://") {
		return errors.New("payments: Config.APIBase (STRIPE_API_BASE) must be an http:// or https:// URL")
	}
	if p := c.Fee(); p < 0 || p > MaxFeePercent {
		return fmt.Errorf("payments: Config.FeePercent (PLATFORM_FEE_PERCENT) must be 0 to %d, got %d", MaxFeePercent, p)
	}
	return nil
}

// Fee is the platform fee in percent.
func (c Config) Fee() int {
	if c.FeePercent == nil {
		return DefaultFeePercent
	}
	return *c.FeePercent
}

// Livemode reports whether the key is a live-mode key; webhook events must say the same.
func (c Config) Livemode() bool {
	return strings.HasPrefix(c.SecretKey, "sk_live_") || strings.HasPrefix(c.SecretKey, "rk_live_")
}

// NewClient returns a stripe-go client for cfg that sends through hc (nil: a client with a
// 30 s timeout). stripe-go's own retries are off: the caller retries (with the same
// idempotency key) when its own request is retried.
func NewClient(cfg Config, hc *http.Client) *client.API {
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        hc,
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.APIBase != "" {
		bc.URL = stripe.String(cfg.APIBase)
	}
	return client.New(cfg.SecretKey, &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, bc),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, bc),
	})
}

// IdempotencyKey derives the Idempotency-Key of a call from what it creates (kind, such as
// "account" or "checkout") and the durable id it is for: the same inputs always give the same
// key, different ones never collide, and the id itself does not travel to Stripe.
func IdempotencyKey(kind, durableID string) string {
	sum := sha256.Sum256([]byte("myscrollr-connect/" + kind + "/" + durableID))
	return "connect-" + kind + "-" + hex.EncodeToString(sum[:16])
}

// Fee is percent of amountCents, rounded half up, in cents.
func Fee(amountCents int64, percent int) int64 {
	if amountCents <= 0 || percent <= 0 {
		return 0
	}
	return (amountCents*int64(percent) + 50) / 100
}
