package payments_test

import (
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v79"

	"github.com/myscrollr/connect/shared/payments"
	"github.com/myscrollr/connect/shared/payments/stripemock"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		fee     int
		live    bool
		wantErr string
	}{
		{"defaults", map[string]string{"STRIPE_SECRET_KEY": "sk_test_123"}, 15, false, ""},
		{"live", map[string]string{"STRIPE_SECRET_KEY": "sk_live_123"}, 15, true, ""},
		{"restricted test key", map[string]string{"STRIPE_SECRET_KEY": "rk_test_1", "PLATFORM_FEE_PERCENT": "0"}, 0, false, ""},
		{"fee 50", map[string]string{"STRIPE_SECRET_KEY": "sk_test_1", "PLATFORM_FEE_PERCENT": "50"}, 50, false, ""},
		{"fee 51", map[string]string{"STRIPE_SECRET_KEY": "sk_test_1", "PLATFORM_FEE_PERCENT": "51"}, 0, false, "PLATFORM_FEE_PERCENT"},
		{"fee negative", map[string]string{"STRIPE_SECRET_KEY": "sk_test_1", "PLATFORM_FEE_PERCENT": "-1"}, 0, false, "PLATFORM_FEE_PERCENT"},
		{"fee not a number", map[string]string{"STRIPE_SECRET_KEY": "sk_test_1", "PLATFORM_FEE_PERCENT": "15%"}, 0, false, "PLATFORM_FEE_PERCENT"},
		{"no key", map[string]string{}, 0, false, "STRIPE_SECRET_KEY"},
		{"publishable key", map[string]string{"STRIPE_SECRET_KEY": "pk_test_1"}, 0, false, "STRIPE_SECRET_KEY"},
		{"bad base", map[string]string{"STRIPE_SECRET_KEY": "sk_test_1", "STRIPE_API_BASE": "127.0.0.1:12111"}, 0, false, "STRIPE_API_BASE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := payments.ConfigFromEnv(env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Fee() != tc.fee || cfg.Livemode() != tc.live {
				t.Fatalf("fee %d live %v, want %d %v", cfg.Fee(), cfg.Livemode(), tc.fee, tc.live)
			}
		})
	}
}

func TestFee(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount int64
		pct    int
		want   int64
	}{
		{499, 15, 75},   // 74.85 rounds up
		{1000, 15, 150}, // exact
		{10, 15, 2},     // 1.5 rounds half up
		{3, 15, 0},      // 0.45 rounds down
		{999, 0, 0},
		{0, 15, 0},
		{999, 50, 500}, // 499.5 rounds half up
		{-5, 15, 0},
	} {
		if got := payments.Fee(tc.amount, tc.pct); got != tc.want {
			t.Errorf("Fee(%d, %d) = %d, want %d", tc.amount, tc.pct, got, tc.want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := payments.IdempotencyKey("checkout", "0b7e6f1c-0000-4000-8000-000000000001")
	if a != payments.IdempotencyKey("checkout", "0b7e6f1c-0000-4000-8000-000000000001") {
		t.Fatal("the same durable id gave two keys")
	}
	for _, other := range []string{
		payments.IdempotencyKey("checkout", "0b7e6f1c-0000-4000-8000-000000000002"),
		payments.IdempotencyKey("account", "0b7e6f1c-0000-4000-8000-000000000001"),
	} {
		if other == a {
			t.Fatalf("different inputs share key %s", a)
		}
	}
	if strings.Contains(a, "0b7e6f1c") || len(a) > 255 || !strings.HasPrefix(a, "connect-checkout-") {
		t.Fatalf("key %q: must not carry the id, at most 255 characters, named by its kind", a)
	}
}

// The client sends the pinned API version and the caller's idempotency key, through the
// recording proxy, to stripe-mock, which answers it.
func TestClientAgainstStripeMock(t *testing.T) {
	t.Parallel()
	mock := stripemock.Start(t)
	sc := payments.NewClient(payments.Config{SecretKey: "sk_test_123", APIBase: mock.URL}, nil)
	params := &stripe.AccountParams{Type: stripe.String(string(stripe.AccountTypeExpress))}
	params.SetIdempotencyKey(payments.IdempotencyKey("account", "dev_1"))
	acct, err := sc.Accounts.New(params)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(acct.ID, "acct_") {
		t.Fatalf("account id %q", acct.ID)
	}
	reqs := mock.RequestsTo("POST", "/v1/accounts")
	if len(reqs) != 1 {
		t.Fatalf("%d requests to POST /v1/accounts, want 1: %+v", len(reqs), mock.Requests())
	}
	if reqs[0].IdempotencyKey != payments.IdempotencyKey("account", "dev_1") || reqs[0].StripeVersion != payments.APIVersion ||
		reqs[0].Form.Get("type") != "express" {
		t.Fatalf("recorded %+v", reqs[0])
	}
}
