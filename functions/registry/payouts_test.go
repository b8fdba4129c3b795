package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/payments"
	"github.com/myscrollr/connect/shared/payments/stripemock"
)

const (
	payoutsReturn  = "https://developers.myscrollr.test/payouts?payouts=return"
	payoutsRefresh = "https://developers.myscrollr.test/payouts?payouts=refresh"
)

// withPayouts points the registry at stripe-mock behind the recording proxy.
func (b bundle) withPayouts(t *testing.T) *stripemock.Server {
	t.Helper()
	sm := stripemock.Start(t)
	b.svc.enablePayouts(&payments.Config{SecretKey: "sk_test_registry", APIBase: sm.URL}, payoutsReturn, payoutsRefresh, nil)
	return sm
}

// Onboarding: the Express account is created once (metadata developer_id, the key from the
// developer id), on a failed commit the retry sends the same key, a repeat reuses the account
// and only asks for a new Account Link; GET shows what is stored.
func TestPayoutsOnboarding(t *testing.T) {
	t.Parallel()
	b := start(t)
	sm := b.withPayouts(t)
	tok := b.dev(t, "dev_alice")

	var got PayoutAccount
	r := b.do(t, "GET", "/v1/developer/payouts", tok, nil)
	r.decode(t, &got)
	if r.Status != 200 || got.AccountID != nil || got.ChargesEnabled {
		t.Fatalf("before onboarding: %d %s", r.Status, r.Body)
	}

	// The commit fails after Stripe answered (a deferred trigger), twice: nothing stored, and
	// each retry carries the same Idempotency-Key.
	b.exec(t, `CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'simulated crash at commit'; END $$`)
	b.exec(t, `CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT OR UPDATE ON developer_accounts
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_commit()`)
	for i := range 2 {
		if r := b.do(t, "POST", "/v1/developer/payouts", tok, nil); r.Status != http.StatusInternalServerError {
			t.Fatalf("attempt %d with the commit failing: %d %s", i, r.Status, r.Body)
		}
		if n := b.count(t, `SELECT count(*) FROM developer_accounts`); n != 0 {
			t.Fatalf("attempt %d stored an account", i)
		}
	}
	b.exec(t, `DROP TRIGGER fail_commit ON developer_accounts`)

	var on Onboarding
	r = b.do(t, "POST", "/v1/developer/payouts", tok, nil)
	r.decode(t, &on)
	if r.Status != http.StatusCreated || on.AccountID == nil || !strings.HasPrefix(*on.AccountID, "acct_") || on.OnboardingURL == "" {
		t.Fatalf("onboarding: %d %s", r.Status, r.Body)
	}
	accounts := sm.RequestsTo("POST", "/v1/accounts")
	if len(accounts) != 3 {
		t.Fatalf("%d account requests, want 3 (two failed commits, one that committed)", len(accounts))
	}
	for i, q := range accounts {
		if q.IdempotencyKey != payments.IdempotencyKey("account", "dev_alice") || q.StripeAccount != "" ||
			q.Form.Get("type") != "express" || q.Form.Get("metadata[developer_id]") != "dev_alice" ||
			q.Form.Get("capabilities[card_payments][requested]") != "true" || q.Form.Get("capabilities[transfers][requested]") != "true" {
			t.Fatalf("account request %d: key %q account %q form %v", i, q.IdempotencyKey, q.StripeAccount, q.Form)
		}
	}
	links := sm.RequestsTo("POST", "/v1/account_links")
	if len(links) != 1 || links[0].Form.Get("account") != *on.AccountID || links[0].Form.Get("type") != "account_onboarding" ||
		links[0].Form.Get("return_url") != payoutsReturn || links[0].Form.Get("refresh_url") != payoutsRefresh {
		t.Fatalf("account links: %+v", links)
	}

	// A repeat: the same account, a new link, no new account.
	var again Onboarding
	r = b.do(t, "POST", "/v1/developer/payouts", tok, nil)
	r.decode(t, &again)
	if r.Status != http.StatusOK || again.AccountID == nil || *again.AccountID != *on.AccountID {
		t.Fatalf("repeat: %d %s", r.Status, r.Body)
	}
	if n := len(sm.RequestsTo("POST", "/v1/accounts")); n != 3 {
		t.Fatalf("the repeat created an account: %d requests", n)
	}
	if n := len(sm.RequestsTo("POST", "/v1/account_links")); n != 2 {
		t.Fatalf("%d link requests", n)
	}

	// stripe-webhook's account.updated enables charges; GET shows it.
	b.exec(t, `UPDATE developer_accounts SET charges_enabled = true, payouts_enabled = true, details_submitted = true WHERE developer_id = 'dev_alice'`)
	r = b.do(t, "GET", "/v1/developer/payouts", tok, nil)
	r.decode(t, &got)
	if r.Status != 200 || got.AccountID == nil || *got.AccountID != *on.AccountID || !got.ChargesEnabled || !got.PayoutsEnabled || !got.DetailsSubmitted {
		t.Fatalf("after account.updated: %d %s", r.Status, r.Body)
	}

	// Without payments configured POST is 503 (GET still answers); without integrations:write, 403.
	b.svc.enablePayouts(nil, "", "", nil)
	if r := b.do(t, "POST", "/v1/developer/payouts", tok, nil); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("without payments: %d %s", r.Status, r.Body)
	}
	if r := b.do(t, "GET", "/v1/developer/payouts", b.token(t, "dev_alice", "profile:read"), nil); r.Status != http.StatusForbidden {
		t.Fatalf("without integrations:write: %d %s", r.Status, r.Body)
	}
}

// A paid listing is published only once its developer's account can take charges (422 naming
// payouts); the developer's stats show revenue by month and active subscriptions.
func TestPaidPublishNeedsChargesAndRevenueStats(t *testing.T) {
	t.Parallel()
	b := start(t)
	tok, admin := b.dev(t, "dev_bob"), b.admin(t)
	reg := b.register(t, "dev_bob", "pro-feed", func(m map[string]any) {
		m["pricing"] = map[string]any{"model": "one_time", "price_cents": 1000, "currency": "usd"}
	})
	if r := b.do(t, "POST", "/v1/admin/integrations/pro-feed/tier", admin, map[string]any{"tier": "verified", "reason": "reviewed"}); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	publish := func(want int, field string) {
		t.Helper()
		r := b.do(t, "POST", "/v1/developer/integrations/pro-feed/publish", tok, nil)
		if r.Status != want || field != "" && r.fields(t)[field] == "" {
			t.Fatalf("publish: %d %s, want %d naming %q", r.Status, r.Body, want, field)
		}
	}
	publish(http.StatusUnprocessableEntity, "payouts") // no account
	b.exec(t, `INSERT INTO developer_accounts (developer_id, stripe_account_id) VALUES ('dev_bob', 'acct_bob')`)
	publish(http.StatusUnprocessableEntity, "payouts") // charges not enabled
	b.exec(t, `UPDATE developer_accounts SET charges_enabled = true, deauthorized_at = now() WHERE developer_id = 'dev_bob'`)
	publish(http.StatusUnprocessableEntity, "payouts") // disconnected
	if n := b.count(t, `SELECT count(*) FROM integrations WHERE is_published`); n != 0 {
		t.Fatalf("published while refused")
	}
	b.exec(t, `UPDATE developer_accounts SET deauthorized_at = NULL WHERE developer_id = 'dev_bob'`)
	publish(http.StatusOK, "")

	// Payments: August and September 2026 (testNow is 1 September), one refunded, one in euros,
	// one older than twelve months.
	id := reg.Integration.ID
	aug, sep := time.Date(2026, 8, 31, 23, 59, 0, 0, time.UTC), time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []struct {
		obj    string
		amount int64
		fee    int64
		cur    string
		status string
		at     time.Time
	}{
		{"cs_1", 1000, 150, "usd", "succeeded", aug},
		{"cs_2", 1000, 150, "usd", "succeeded", aug.Add(-24 * time.Hour)},
		{"cs_3", 1000, 150, "usd", "refunded", aug},
		{"cs_4", 500, 75, "eur", "succeeded", sep},
		{"cs_5", 1000, 150, "usd", "succeeded", sep.Add(time.Hour)},
		{"cs_6", 1000, 150, "usd", "succeeded", time.Date(2025, 9, 30, 0, 0, 0, 0, time.UTC)},
	} {
		b.exec(t, `INSERT INTO payments (user_id, integration_id, stripe_object_id, amount_cents, platform_fee_cents, currency, status, paid_at)
			VALUES ('alice', $1, $2, $3, $4, $5, $6, $7)`, id, p.obj, p.amount, p.fee, p.cur, p.status, p.at)
	}
	for i, st := range []string{"active", "past_due", "canceled", "trialing"} {
		b.exec(t, `INSERT INTO subscriptions (stripe_subscription_id, user_id, integration_id, status) VALUES ($1, $2, $3, $4)`,
			"sub_"+strings.ReplaceAll(st, "_", ""), "user"+string(rune('a'+i)), id, st)
	}
	b.exec(t, `UPDATE subscriptions SET access_ended_at = now(), access_end_reason = 'payment_failed' WHERE stripe_subscription_id = 'sub_pastdue'`)

	var it Integration
	r := b.do(t, "GET", "/v1/developer/integrations/pro-feed", tok, nil)
	r.decode(t, &it)
	want := []MonthRevenue{
		{Month: "2026-08", Currency: "usd", Gross: 2000, Fee: 300, Net: 1700, Payments: 2},
		{Month: "2026-09", Currency: "eur", Gross: 500, Fee: 75, Net: 425, Payments: 1},
		{Month: "2026-09", Currency: "usd", Gross: 1000, Fee: 150, Net: 850, Payments: 1},
	}
	if r.Status != 200 || len(it.Stats.RevenueByMonth) != len(want) {
		t.Fatalf("stats: %d %s", r.Status, r.Body)
	}
	for i := range want {
		if it.Stats.RevenueByMonth[i] != want[i] {
			t.Errorf("month %d: %+v, want %+v", i, it.Stats.RevenueByMonth[i], want[i])
		}
	}
	if it.Stats.ActiveSubscriptions != 2 { // active and trialing; past_due's access ended; canceled
		t.Fatalf("active subscriptions: %d", it.Stats.ActiveSubscriptions)
	}
}
