package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/infra/local/stack"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/manifest"
)

// stripeEvent signs a Stripe event as Stripe would (stripe-go's own test helper, with the
// webhook secret make dev generated) and posts it to the front door with client.
func stripeEvent(t *testing.T, client *http.Client, s *stack.Stack, id, typ, account string, object map[string]any) int {
	t.Helper()
	ev := map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(),
		"livemode": false, "type": typ, "account": account, "pending_webhooks": 1,
		"data": map[string]any{"object": object}}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body,
		Secret: s.Secrets()["STRIPE_WEBHOOK_SECRET"], Timestamp: time.Now()})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/webhooks/stripe", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signed.Header)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The paid path: a user installs a subscription app; the answer is a Stripe Checkout Session
// (stripe-mock) on the developer's connected account; Stripe's signed checkout.session.completed
// continues the install to consent; the app receives install. Then the subscription is deleted
// at Stripe: customer.subscription.deleted revokes the install and the app receives uninstall.
func TestPaidInstallEndToEnd(t *testing.T) {
	s := startStack(t, testConfig(t, "relay", "install", "notify", "uninstall", "stripe-webhook"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	app := newTestIntegration(t, s.URL+"/v1/lifecycle/keys")
	m := &manifest.Manifest{Name: "e2e-pro", DisplayName: "E2E Pro", Version: "1.0.0", Type: "app",
		Description: "A paid app installed end to end.", BaseURL: app.srv.URL, Scopes: []string{"dashboard:read"},
		Pricing: &manifest.Pricing{Model: "subscription", PriceCents: 499, Currency: "usd", Interval: "month"},
		App:     &manifest.App{Lifecycle: manifest.LifecycleHTTP}}
	pub, err := s.PublishListing(ctx, stack.Listing{Manifest: m, DeveloperID: "dev-e2e-paid"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const account = "acct_1E2EPaidDeveloper"
	if _, err := conn.Exec(ctx, `INSERT INTO developer_accounts (developer_id, stripe_account_id, charges_enabled, payouts_enabled, details_submitted)
		VALUES ('dev-e2e-paid', $1, true, true, true)`, account); err != nil {
		t.Fatal(err)
	}

	const user = "u_e2e_paid"
	userToken, err := s.Identity().Mint(idp.TokenRequest{Subject: user, Audience: s.APIResource})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: apiTransport(t),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	code, body := api(t, client, http.MethodPost, s.URL+"/v1/installs", userToken, map[string]any{"integration": m.Name})
	var started struct {
		Status           string `json:"status"`
		PendingInstallID string `json:"pending_install_id"`
		CheckoutURL      string `json:"checkout_url"`
		ConsentURL       string `json:"consent_url"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &started) != nil || started.Status != "awaiting_payment" ||
		started.CheckoutURL == "" || started.ConsentURL != "" {
		t.Fatalf("POST /v1/installs of a paid app = %d %s; want awaiting_payment with a checkout_url and no consent", code, body)
	}

	// Before the payment, asking again gives the same checkout and still no consent.
	code, body = api(t, client, http.MethodPost, s.URL+"/v1/installs", userToken, map[string]any{"integration": m.Name})
	if code != http.StatusOK || !strings.Contains(string(body), started.PendingInstallID) || strings.Contains(string(body), "consent_url") {
		t.Fatalf("repeat before payment = %d %s", code, body)
	}

	// Stripe reports the paid session (a forged one first: refused, nothing changes).
	md := map[string]any{"user_id": user, "integration_id": pub.ID, "pending_install_id": started.PendingInstallID}
	session := map[string]any{"id": "cs_test_E2EPaid", "object": "checkout.session", "mode": "subscription",
		"payment_status": "paid", "status": "complete", "amount_total": 499, "currency": "usd",
		"client_reference_id": started.PendingInstallID, "metadata": md,
		"subscription": "sub_E2EPaid", "invoice": "in_E2EPaid", "payment_intent": "pi_E2EPaid"}
	forged, _ := json.Marshal(map[string]any{"id": "evt_Forged", "type": "checkout.session.completed", "data": map[string]any{"object": session}})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/webhooks/stripe", bytes.NewReader(forged))
	req.Header.Set("Stripe-Signature", fmt.Sprintf("t=%d,v1=%064x", time.Now().Unix(), 0))
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged webhook: %v %v; want 400", resp, err)
	}
	if code := stripeEvent(t, client, s, "evt_E2ECompleted", "checkout.session.completed", account, session); code != http.StatusOK {
		t.Fatalf("signed checkout.session.completed answered %d", code)
	}
	sub := map[string]any{"id": "sub_E2EPaid", "object": "subscription", "status": "active", "metadata": md,
		"customer": "cus_E2E", "current_period_end": time.Now().Add(30 * 24 * time.Hour).Unix()}
	if code := stripeEvent(t, client, s, "evt_E2ESubCreated", "customer.subscription.created", account, sub); code != http.StatusOK {
		t.Fatalf("customer.subscription.created answered %d", code)
	}

	// payment.succeeded reaches install through Kafka: asking again soon gives the consent URL.
	var consentURL string
	for consentURL == "" {
		code, body = api(t, client, http.MethodPost, s.URL+"/v1/installs", userToken, map[string]any{"integration": m.Name})
		var again struct {
			ConsentURL string `json:"consent_url"`
		}
		if code < 300 && json.Unmarshal(body, &again) == nil {
			consentURL = again.ConsentURL
		}
		if consentURL == "" {
			select {
			case <-ctx.Done():
				t.Fatalf("the payment never continued the install to consent: %d %s", code, body)
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	callback, err := idptest.Follow(consentURL, s.URL+"/v1/installs/callback", user, true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(callback.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "installed="+m.Name) {
		t.Fatalf("callback = %d, Location %q", resp.StatusCode, loc)
	}
	inst := app.waitFor(ctx, events.TypeLifecycleInstall)
	var installed events.LifecycleInstall
	if err := json.Unmarshal(inst.Data, &installed); err != nil || installed.UserID != user {
		t.Fatalf("install event %s (%v)", inst.Data, err)
	}
	code, body = api(t, client, http.MethodGet, s.URL+"/v1/installs", userToken, nil)
	if code != http.StatusOK || !strings.Contains(string(body), "sub_E2EPaid") && !strings.Contains(string(body), `"active"`) {
		t.Fatalf("GET /v1/installs = %d %s; want the install with its active subscription", code, body)
	}
	requireCount(t, ctx, conn, 1, `SELECT count(*) FROM payments WHERE status = 'succeeded' AND user_id = '`+user+`'`)

	// The subscription ends at Stripe: the install is revoked and the app told.
	sub["status"] = "canceled"
	sub["ended_at"] = time.Now().Unix()
	if code := stripeEvent(t, client, s, "evt_E2ESubDeleted", "customer.subscription.deleted", account, sub); code != http.StatusOK {
		t.Fatalf("customer.subscription.deleted answered %d", code)
	}
	un := app.waitFor(ctx, events.TypeLifecycleUninstall)
	var uninstalled events.LifecycleUninstall
	if err := json.Unmarshal(un.Data, &uninstalled); err != nil || uninstalled.Reason != events.RevokeSubscriptionEnd || uninstalled.InstallID != installed.InstallID {
		t.Fatalf("uninstall event %s (%v)", un.Data, err)
	}
	requireCount(t, ctx, conn, 0, `SELECT count(*) FROM user_integrations WHERE user_id = '`+user+`'`)
	// Stripe delivering the deletion again changes nothing.
	if code := stripeEvent(t, client, s, "evt_E2ESubDeleted", "customer.subscription.deleted", account, sub); code != http.StatusOK {
		t.Fatalf("redelivered deletion answered %d", code)
	}
	requireCount(t, ctx, conn, 1, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = 'sub_E2EPaid' AND status = 'canceled'`)
}
