package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/payments"
	"github.com/myscrollr/connect/shared/payments/stripemock"
	"github.com/myscrollr/connect/shared/runtime"
	"github.com/stripe/stripe-go/v79"
)

// testAccount is the connected account enablePayments gives the developer.
const testAccount = "acct_1TestDeveloper"

// enablePayments points the function at stripe-mock behind the recording proxy (PLATFORM_FEE_PERCENT
// 15) and gives developer a connected account that can take charges.
func (b *bundle) enablePayments(t *testing.T, developer string) *stripemock.Server {
	t.Helper()
	sm := stripemock.Start(t)
	fee := 15
	b.svc.pay = newCheckouts(&payments.Config{SecretKey: "sk_test_checkout", APIBase: sm.URL, FeePercent: &fee}, nil)
	b.exec(t, `INSERT INTO developer_accounts (developer_id, stripe_account_id, charges_enabled, payouts_enabled, details_submitted)
		VALUES ($1, $2, true, true, true)`, developer, testAccount)
	return sm
}

const sessionsPath = "/v1/checkout/sessions"

// A one-time listing: a Checkout Session in payment mode on the developer's account, with the
// fee as application_fee_amount, the metadata the webhook reads and the pending install as
// client_reference_id; a repeat answers the same session without calling Stripe again.
func TestCheckoutOneTime(t *testing.T) {
	b := setupInstall(t)
	sm := b.enablePayments(t, "dev_1")
	in := b.integration(t, "pro", listingOpts{published: true, pricing: "one_time"})
	alice := b.userToken(t, "alice")
	r := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusCreated)
	if r.Status != StatusAwaitingPayment || r.PendingInstallID == "" || !strings.HasPrefix(r.CheckoutURL, "https://checkout.stripe.com/") || r.ConsentURL != "" {
		t.Fatalf("paid start: %+v", r)
	}
	reqs := sm.RequestsTo("POST", sessionsPath)
	if len(reqs) != 1 {
		t.Fatalf("%d session requests", len(reqs))
	}
	q := reqs[0]
	want := map[string]string{
		"mode": "payment", "client_reference_id": r.PendingInstallID,
		"payment_intent_data[application_fee_amount]": "75", // 15% of 500
		"metadata[user_id]":                           "alice",
		"metadata[integration_id]":                    in.ID,
		"metadata[pending_install_id]":                r.PendingInstallID,
		"metadata[platform_fee_cents]":                "75",
		"line_items[0][price_data][unit_amount]":      "500",
		"line_items[0][price_data][currency]":         "usd",
		"line_items[0][quantity]":                     "1",
		"success_url":                                 frontend + "?checkout=success&integration=pro&pending_install_id=" + r.PendingInstallID,
		"cancel_url":                                  frontend + "?checkout=canceled&integration=pro&pending_install_id=" + r.PendingInstallID,
	}
	for k, v := range want {
		if got := q.Form.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if q.Form.Has("subscription_data[application_fee_percent]") || q.Form.Has("line_items[0][price_data][recurring][interval]") {
		t.Errorf("one-time session has subscription fields: %v", q.Form)
	}
	if q.IdempotencyKey != payments.IdempotencyKey("checkout", r.PendingInstallID) || q.StripeAccount != testAccount ||
		q.StripeVersion != payments.APIVersion {
		t.Fatalf("key %q account %q version %q", q.IdempotencyKey, q.StripeAccount, q.StripeVersion)
	}
	again := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusOK)
	if again.PendingInstallID != r.PendingInstallID || again.CheckoutURL != r.CheckoutURL || again.Status != StatusAwaitingPayment {
		t.Fatalf("repeat: %+v", again)
	}
	if n := len(sm.RequestsTo("POST", sessionsPath)); n != 1 {
		t.Fatalf("the repeat called Stripe: %d session requests", n)
	}
	if n := b.count(t, `SELECT count(*) FROM install_checkouts WHERE pending_install_id = $1 AND stripe_account_id = $2
		AND mode = 'payment' AND amount_cents = 500 AND platform_fee_cents = 75`, r.PendingInstallID, testAccount); n != 1 {
		t.Fatalf("stored sessions: %d", n)
	}
	// Another user's pending install has a key of its own.
	bob := b.start(t, b.userToken(t, "bob"), map[string]any{"integration": "pro"}, http.StatusCreated)
	reqs = sm.RequestsTo("POST", sessionsPath)
	if len(reqs) != 2 || reqs[1].IdempotencyKey == reqs[0].IdempotencyKey || reqs[1].IdempotencyKey != payments.IdempotencyKey("checkout", bob.PendingInstallID) {
		t.Fatalf("bob's key: %+v", reqs)
	}
}

// A subscription listing: subscription mode, the fee as application_fee_percent, the interval
// from the manifest, and the metadata on the subscription too.
func TestCheckoutSubscription(t *testing.T) {
	b := setupInstall(t)
	sm := b.enablePayments(t, "dev_1")
	in := b.integration(t, "coach", listingOpts{published: true, pricing: "subscription"})
	b.exec(t, `UPDATE integrations SET manifest = manifest || '{"pricing": {"model": "subscription", "price_cents": 500, "currency": "usd", "interval": "year"}}' WHERE id = $1`, in.ID)
	r := b.start(t, b.userToken(t, "alice"), map[string]any{"integration": "coach"}, http.StatusCreated)
	if r.Status != StatusAwaitingPayment || r.CheckoutURL == "" {
		t.Fatalf("start: %+v", r)
	}
	reqs := sm.RequestsTo("POST", sessionsPath)
	if len(reqs) != 1 {
		t.Fatalf("%d session requests", len(reqs))
	}
	f := reqs[0].Form
	for k, v := range map[string]string{
		"mode": "subscription", "subscription_data[application_fee_percent]": "15.0000", // stripe-go's float form
		"subscription_data[metadata][pending_install_id]": r.PendingInstallID, "subscription_data[metadata][user_id]": "alice",
		"subscription_data[metadata][integration_id]": in.ID, "metadata[pending_install_id]": r.PendingInstallID,
		"line_items[0][price_data][recurring][interval]": "year", "client_reference_id": r.PendingInstallID,
	} {
		if got := f.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if f.Has("payment_intent_data[application_fee_amount]") {
		t.Errorf("subscription session has a one-time fee: %v", f)
	}
}

// A developer whose account cannot take charges (none, not enabled, deauthorized): 422 naming
// the integration, and nothing written, announced or sent to Stripe. Without payments
// configured a paid listing is 503; a sandbox install of one's own paid listing is never charged.
func TestCheckoutRefusedWithoutChargeableAccount(t *testing.T) {
	b := setupInstall(t)
	sm := b.enablePayments(t, "dev_ok")
	in := b.integration(t, "pro", listingOpts{published: true, pricing: "one_time", developer: "dev_2"})
	alice := b.userToken(t, "alice")
	check := func(name string) {
		t.Helper()
		st, out, _ := b.do(t, "POST", "/v1/installs", alice, map[string]any{"integration": "pro"})
		var p struct {
			Status int
			Errors []struct{ Field, Reason string }
		}
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		if st != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Field != "integration" {
			t.Fatalf("%s: %d %s", name, st, out)
		}
		if s := b.state(t, in); s.Requested != 0 || b.count(t, `SELECT count(*) FROM install_attempts`) != 0 {
			t.Fatalf("%s: written %+v", name, s)
		}
		if n := len(sm.RequestsTo("POST", sessionsPath)); n != 0 {
			t.Fatalf("%s: %d session requests", name, n)
		}
	}
	check("no account")
	b.exec(t, `INSERT INTO developer_accounts (developer_id, stripe_account_id) VALUES ('dev_2', 'acct_2')`)
	check("charges not enabled")
	b.exec(t, `UPDATE developer_accounts SET charges_enabled = true, deauthorized_at = now() WHERE developer_id = 'dev_2'`)
	check("deauthorized")

	b.exec(t, `UPDATE developer_accounts SET deauthorized_at = NULL WHERE developer_id = 'dev_2'`)
	pay := b.svc.pay
	b.svc.pay = nil
	if st, out, _ := b.do(t, "POST", "/v1/installs", alice, map[string]any{"integration": "pro"}); st != http.StatusServiceUnavailable {
		t.Fatalf("without payments: %d %s", st, out)
	}
	b.svc.pay = pay
	// dev_2's own sandbox install of its unpublished paid listing: consent, no checkout.
	b.exec(t, `UPDATE integrations SET is_published = false WHERE id = $1`, in.ID)
	if r := b.start(t, b.userToken(t, "dev_2"), map[string]any{"integration": "pro"}, http.StatusCreated); r.Status != StatusAwaitingConsent || r.CheckoutURL != "" {
		t.Fatalf("sandbox: %+v", r)
	}
	if n := len(sm.RequestsTo("POST", sessionsPath)); n != 0 {
		t.Fatalf("sandbox called Stripe: %d", n)
	}
}

// A crash between Stripe's answer and the commit (simulated: a deferred trigger fails the
// commit of install_checkouts, again and again) leaves nothing stored, and every retry sends
// the same Idempotency-Key on the same account, so Stripe answers the first session; once the
// commit succeeds the session is stored and answered without calling Stripe.
func TestCheckoutCommitFailureReusesIdempotencyKey(t *testing.T) {
	b := setupInstall(t)
	sm := b.enablePayments(t, "dev_1")
	b.integration(t, "pro", listingOpts{published: true, pricing: "one_time"})
	b.exec(t, `CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'simulated crash at commit'; END $$`)
	b.exec(t, `CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT OR UPDATE ON install_checkouts
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit()`)
	alice := b.userToken(t, "alice")
	const failures = 4
	for i := range failures {
		if st, out, _ := b.do(t, "POST", "/v1/installs", alice, map[string]any{"integration": "pro"}); st != http.StatusInternalServerError {
			t.Fatalf("attempt %d with the commit failing: %d %s", i, st, out)
		}
		if n := b.count(t, `SELECT count(*) FROM install_checkouts`); n != 0 {
			t.Fatalf("attempt %d: %d sessions stored though the commit failed", i, n)
		}
	}
	var pending string
	if err := b.owner.QueryRow(context.Background(), `SELECT id::text FROM install_attempts WHERE user_id = 'alice'`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	b.exec(t, `DROP TRIGGER fail_commit ON install_checkouts`)
	r := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusOK)
	if r.PendingInstallID != pending || r.CheckoutURL == "" {
		t.Fatalf("after recovery: %+v (pending %s)", r, pending)
	}
	b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusOK)
	reqs := sm.RequestsTo("POST", sessionsPath)
	if len(reqs) != failures+1 {
		t.Fatalf("%d session requests, want %d (one per failed commit and one that committed)", len(reqs), failures+1)
	}
	key := payments.IdempotencyKey("checkout", pending)
	for i, q := range reqs {
		if q.IdempotencyKey != key || q.StripeAccount != testAccount {
			t.Fatalf("request %d: key %q account %q, want %q on %s", i, q.IdempotencyKey, q.StripeAccount, key, testAccount)
		}
		if q.Form.Encode() != reqs[0].Form.Encode() {
			t.Fatalf("request %d sent other parameters with the same key:\n%s\n%s", i, q.Form.Encode(), reqs[0].Form.Encode())
		}
	}
}

// eventServer serves the function's events the way the runtime does (sender check off).
func (b *bundle) eventServer(t *testing.T) *httptest.Server {
	t.Helper()
	h, err := runtime.NewHandler(runtime.Function{Name: "install", Events: b.svc.HandleEvent}, runtime.Deps{Logger: discard(), InsecureEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// postEvent sends a binary-mode CloudEvent to /events and returns the status.
func postEvent(t *testing.T, srv *httptest.Server, id, typ string, data any) int {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", srv.URL+"/events", strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", "/connect/stripe-webhook")
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func paymentSucceeded(paymentID, pending, user, integrationID string) events.PaymentSucceeded {
	return events.PaymentSucceeded{PaymentID: paymentID, StripeObjectID: "cs_test_1", IntegrationID: integrationID, UserID: user,
		AmountCents: 500, PlatformFeeCents: 75, Currency: "usd", PaidAt: time.Now().UTC().Truncate(time.Second), PendingInstallID: pending}
}

// payment.succeeded at /events continues the pending install to consent, once whatever the
// redeliveries; the user's next POST /v1/installs answers the consent URL (also after it
// expired, without a second payment); the install carries the payment; GET /v1/installs shows
// a subscription's state.
func TestPaymentSucceededContinuesToConsent(t *testing.T) {
	b := setupInstall(t)
	sm := b.enablePayments(t, "dev_1")
	in := b.integration(t, "pro", listingOpts{published: true, pricing: "subscription"})
	alice := b.userToken(t, "alice")
	r := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusCreated)
	srv := b.eventServer(t)
	const payment = "0191d3a4-5b6c-7d8e-9f00-112233445566"

	// Refused: another user's payment for this pending install changes nothing (claimed);
	// data that breaks the schema is a dead letter (400).
	if st := postEvent(t, srv, "evt-other", events.TypePaymentSucceeded, paymentSucceeded(payment, r.PendingInstallID, "mallory", in.ID)); st != http.StatusOK && st != http.StatusNoContent {
		t.Fatalf("mismatched payment: %d", st)
	}
	if st := postEvent(t, srv, "evt-bad", events.TypePaymentSucceeded, map[string]any{"payment_id": 7}); st != http.StatusBadRequest {
		t.Fatalf("bad data: %d", st)
	}
	if s := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusOK); s.Status != StatusAwaitingPayment || s.CheckoutURL != r.CheckoutURL {
		t.Fatalf("before payment: %+v", s)
	}
	// A renewal names no pending install: nothing to do.
	if st := postEvent(t, srv, "evt-renewal", events.TypePaymentSucceeded, paymentSucceeded(payment, "", "alice", in.ID)); st >= 300 {
		t.Fatalf("renewal: %d", st)
	}

	ev := paymentSucceeded(payment, r.PendingInstallID, "alice", in.ID)
	done := make(chan int)
	for range 10 {
		go func() { done <- postEvent(t, srv, "evt-paid", events.TypePaymentSucceeded, ev) }()
	}
	for range 10 {
		if st := <-done; st >= 300 {
			t.Fatalf("payment.succeeded: %d", st)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM processed_events WHERE consumer = 'install' AND id = 'evt-paid'`); n != 1 {
		t.Fatalf("claims: %d", n)
	}
	if n := b.count(t, `SELECT count(*) FROM install_attempts WHERE id = $1 AND status = 'awaiting_consent' AND payment_id = $2`, r.PendingInstallID, payment); n != 1 {
		t.Fatalf("the attempt did not move to consent")
	}
	c := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusOK)
	if c.Status != StatusAwaitingConsent || c.PendingInstallID != r.PendingInstallID || !strings.HasPrefix(c.ConsentURL, b.idp.Issuer()+"/auth?") {
		t.Fatalf("after payment: %+v", c)
	}
	// The consent URL expires: the next request renews it for the same attempt, no new checkout.
	b.clk.Advance(StateTTL + time.Minute)
	renewed := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusOK)
	if renewed.Status != StatusAwaitingConsent || renewed.PendingInstallID != r.PendingInstallID || renewed.ConsentURL == c.ConsentURL || renewed.CheckoutURL != "" {
		t.Fatalf("after expiry: %+v", renewed)
	}
	if n := len(sm.RequestsTo("POST", sessionsPath)); n != 1 {
		t.Fatalf("%d session requests: paid twice", n)
	}
	if got := b.callbackAt(t, b.consent(t, renewed.ConsentURL, "alice", true)).Get("installed"); got != "pro" {
		t.Fatalf("install: %q", got)
	}
	var pid string
	if err := b.owner.QueryRow(context.Background(), `SELECT payload->>'payment_id' FROM outbox WHERE type = $1`, events.TypeInstallCompleted).Scan(&pid); err != nil || pid != payment {
		t.Fatalf("install.completed payment_id %q %v", pid, err)
	}
	// A redelivery after the install changes nothing.
	if st := postEvent(t, srv, "evt-paid", events.TypePaymentSucceeded, ev); st >= 300 {
		t.Fatalf("redelivery: %d", st)
	}

	// GET /v1/installs: the subscription's state.
	end := b.clk.Now().Add(30 * 24 * time.Hour).UTC()
	b.exec(t, `INSERT INTO subscriptions (stripe_subscription_id, user_id, integration_id, status, current_period_end, cancel_at_period_end)
		VALUES ('sub_1', 'alice', $1, 'active', $2, true)`, in.ID, end)
	st, out, _ := b.do(t, "GET", "/v1/installs", alice, nil)
	var list InstallList
	if err := json.Unmarshal(out, &list); st != http.StatusOK || err != nil || len(list.Installs) != 1 {
		t.Fatalf("list: %d %s %v", st, out, err)
	}
	sub := list.Installs[0].Subscription
	if sub == nil || sub.Status != "active" || !sub.CancelAtPeriodEnd || sub.CurrentPeriodEnd == nil || !sub.CurrentPeriodEnd.Equal(end) || sub.AccessEndedAt != nil {
		t.Fatalf("subscription: %s", out)
	}
	b.exec(t, `UPDATE subscriptions SET status = 'canceled', access_ended_at = now(), access_end_reason = 'subscription_ended'`)
	_, out, _ = b.do(t, "GET", "/v1/installs", alice, nil)
	if err := json.Unmarshal(out, &list); err != nil || list.Installs[0].Subscription.Status != "canceled" ||
		list.Installs[0].Subscription.AccessEndReason != "subscription_ended" {
		t.Fatalf("ended subscription: %s %v", out, err)
	}
}

// A refusal about the developer's account is the listing's (409); the platform's own key
// refused, a rate limit or Stripe down is nobody's fault the caller can fix (503).
func TestStripeProblem(t *testing.T) {
	for status, want := range map[int]int{400: 409, 402: 409, 404: 409, 401: 503, 403: 503, 429: 503, 500: 503} {
		err := stripeProblem("pro", &stripe.Error{HTTPStatusCode: status, Msg: "no"})
		var p *httpx.Problem
		if !errors.As(err, &p) || p.Status != want {
			t.Errorf("Stripe %d: %v, want %d", status, err, want)
		}
	}
	var p *httpx.Problem
	if err := stripeProblem("pro", errors.New("dial tcp: refused")); !errors.As(err, &p) || p.Status != 503 {
		t.Errorf("network error: %v, want 503", err)
	}
}
