package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	secret    = "whsec_test_0123456789abcdef"
	oldSecret = "whsec_test_old_0123456789abc"
	integ     = "0b7e6f1c-0000-4000-8000-000000000001"
	pending   = "7d2c1a90-0000-4000-8000-0000000000aa"
	user      = "user_1"
	developer = "dev_1"
)

var testNow = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

type bundle struct {
	srv   *httptest.Server
	owner *pgxpool.Pool // seeds and reads everything
	h     *Handler
	now   *time.Time
}

// setupWebhook builds the handler on a fresh database, connected as stripe-webhook's own role, behind
// the runtime's HTTP stack, with a demo developer, account and subscription listing.
func setupWebhook(t testing.TB, mutate func(*Config)) *bundle {
	t.Helper()
	ctx := context.Background()
	ownerURL, fnURL := pgtest.FunctionURL(t, "stripe-webhook")
	owner, err := db.Open(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	pool, err := db.Open(ctx, fnURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for _, s := range []string{
		`INSERT INTO integrations (id, developer_id, name, display_name, type, base_url, is_published, published_at,
			pricing_model, price_cents, currency, logto_app_id)
			VALUES ('` + integ + `', '` + developer + `', 'ticker', 'Ticker', 'widget', 'https://t.example', true, now(),
			'subscription', 500, 'usd', 'app_1')`,
		`INSERT INTO integrations (developer_id, name, display_name, type, base_url, is_published, published_at, logto_app_id)
			VALUES ('` + developer + `', 'free-one', 'Free', 'widget', 'https://f.example', true, now(), 'app_2')`,
		`INSERT INTO developer_accounts (developer_id, stripe_account_id, charges_enabled, payouts_enabled) VALUES ('` + developer + `', 'acct_dev1', true, true)`,
	} {
		if _, err := owner.Exec(ctx, s); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	cfg := Config{Secrets: []string{secret}, GracePeriod: 72 * time.Hour}
	if mutate != nil {
		mutate(&cfg)
	}
	b := &bundle{owner: owner}
	now := testNow
	b.now = &now
	h, err := New(cfg, pool, slog.New(slog.DiscardHandler), func() time.Time { return *b.now })
	if err != nil {
		t.Fatal(err)
	}
	stack, err := runtime.NewHandler(runtime.Function{Name: "stripe-webhook", HTTP: h.Routes()},
		runtime.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(stack)
	t.Cleanup(b.srv.Close)
	b.h = h
	return b
}

// event is a Stripe event of typ about obj, as Stripe serialises it.
func event(id, typ string, created int64, obj any) []byte {
	return eventOn(id, typ, created, "", obj)
}

func eventOn(id, typ string, created int64, account string, obj any) []byte {
	o, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	m := map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion, "created": created,
		"livemode": false, "type": typ, "pending_webhooks": 1, "data": map[string]any{"object": json.RawMessage(o)}}
	if account != "" {
		m["account"] = account
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// sign is the Stripe-Signature of body with secret at ts, made by stripe-go's own test helper.
func sign(body []byte, sec string, ts time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: sec, Timestamp: ts}).Header
}

// post sends body with the signature header ("" = none) and returns the status and body.
func (b *bundle) post(t testing.TB, client *http.Client, body []byte, sig string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+Path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	if client == nil {
		client = b.srv.Client()
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// send signs body with the test secret now and posts it, failing unless it is answered 200.
func (b *bundle) send(t testing.TB, body []byte) {
	t.Helper()
	if code, out := b.post(t, nil, body, sign(body, secret, time.Now())); code != http.StatusOK {
		t.Fatalf("status %d: %s", code, out)
	}
}

// count runs a count query as the owner.
func (b *bundle) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.owner.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// outboxTypes lists the outbox's event types by transaction, then by name.
func (b *bundle) outboxTypes(t testing.TB) []string {
	t.Helper()
	rows, err := b.owner.Query(context.Background(), `SELECT type FROM outbox ORDER BY created_at, type`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func subscriptionObj(id, status string, extra map[string]any) map[string]any {
	m := map[string]any{"id": id, "object": "subscription", "status": status, "customer": "cus_1",
		"current_period_end": testNow.Add(30 * 24 * time.Hour).Unix(), "cancel_at_period_end": false,
		"metadata": map[string]string{"user_id": user, "integration_id": integ, "pending_install_id": pending}}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func invoiceObj(id, sub string, amount int64) map[string]any {
	return map[string]any{"id": id, "object": "invoice", "subscription": sub, "amount_paid": amount, "amount_due": amount,
		"currency": "usd", "application_fee_amount": 75, "payment_intent": "pi_" + id, "billing_reason": "subscription_create",
		"subscription_details": map[string]any{"metadata": map[string]string{"user_id": user, "integration_id": integ, "pending_install_id": pending}}}
}

func checkoutObj(id string, amount int64) map[string]any {
	return map[string]any{"id": id, "object": "checkout.session", "mode": "payment", "payment_status": "paid", "status": "complete",
		"amount_total": amount, "currency": "usd", "payment_intent": "pi_" + id, "client_reference_id": pending,
		"metadata": map[string]string{"user_id": user, "integration_id": integ, "pending_install_id": pending, "platform_fee_cents": "75"}}
}
