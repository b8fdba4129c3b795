package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
)

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// Every order of a subscription's created/paid/updated/deleted events ends in the state the
// newest Stripe object says, with each platform event written once.
func TestSubscriptionOrderings(t *testing.T) {
	t.Parallel()
	t0 := testNow.Unix()
	type step struct {
		name string
		body []byte
	}
	scenarios := []struct {
		name       string
		steps      []step
		wantStatus string
		wantEnded  bool
	}{
		{"created paid updated deleted", []step{
			{"created", event("evt_c", "customer.subscription.created", t0, subscriptionObj("sub_1", "incomplete", nil))},
			{"paid", event("evt_p", "invoice.paid", t0+1, invoiceObj("in_1", "sub_1", 500))},
			{"updated", event("evt_u", "customer.subscription.updated", t0+2, subscriptionObj("sub_1", "active", nil))},
			{"deleted", event("evt_d", "customer.subscription.deleted", t0+3, subscriptionObj("sub_1", "canceled",
				map[string]any{"ended_at": t0 + 3, "cancellation_details": map[string]any{"reason": "cancellation_requested"}}))},
		}, "canceled", true},
		{"created paid active past_due", []step{
			{"created", event("evt_c", "customer.subscription.created", t0, subscriptionObj("sub_1", "incomplete", nil))},
			{"paid", event("evt_p", "invoice.paid", t0+1, invoiceObj("in_1", "sub_1", 500))},
			{"updated", event("evt_u", "customer.subscription.updated", t0+2, subscriptionObj("sub_1", "active", nil))},
			{"past_due", event("evt_pd", "customer.subscription.updated", t0+40, subscriptionObj("sub_1", "past_due", nil))},
		}, "past_due", false},
		{"one second: created paid active deleted", []step{
			{"created", event("evt_c", "customer.subscription.created", t0, subscriptionObj("sub_1", "incomplete", nil))},
			{"paid", event("evt_p", "invoice.paid", t0, invoiceObj("in_1", "sub_1", 500))},
			{"updated", event("evt_u", "customer.subscription.updated", t0, subscriptionObj("sub_1", "active", nil))},
			{"deleted", event("evt_d", "customer.subscription.deleted", t0, subscriptionObj("sub_1", "canceled", nil))},
		}, "canceled", true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			// One database per scenario; each order runs on its own subscription and invoice ids.
			b := setupWebhook(t, nil)
			for i, order := range permutations(len(sc.steps)) {
				sub, inv := fmt.Sprintf("sub_%d", i), fmt.Sprintf("in_%d", i)
				var names []string
				for _, k := range order {
					st := sc.steps[k]
					names = append(names, st.name)
					body := replaceAll(st.body, map[string]string{`"sub_1"`: `"` + sub + `"`, `"in_1"`: `"` + inv + `"`,
						`"pi_in_1"`: `"pi_` + inv + `"`, `"evt_`: fmt.Sprintf(`"evt_%d_`, i)})
					if code, out := b.post(t, nil, body, sign(body, secret, time.Now())); code != http.StatusOK {
						t.Fatalf("%v: %s: status %d: %s", names, st.name, code, out)
					}
				}
				var status string
				var ended bool
				if err := b.owner.QueryRow(context.Background(), `SELECT status, access_ended_at IS NOT NULL AND access_end_reason = 'subscription_ended'
					FROM subscriptions WHERE stripe_subscription_id = $1`, sub).Scan(&status, &ended); err != nil {
					t.Fatalf("%v: %v", names, err)
				}
				if status != sc.wantStatus || ended != sc.wantEnded {
					t.Errorf("%v: status %s ended %v, want %s %v", names, status, ended, sc.wantStatus, sc.wantEnded)
				}
				if n := b.count(t, `SELECT count(*) FROM payments WHERE stripe_object_id = $1 AND status = 'succeeded'`, inv); n != 1 {
					t.Errorf("%v: %d succeeded payments", names, n)
				}
				wantEnded := 0
				if sc.wantEnded {
					wantEnded = 1
				}
				if n := b.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'stripe_subscription_id' = $2`, events.TypeSubscriptionEnded, sub); n != wantEnded {
					t.Errorf("%v: %d subscription.ended", names, n)
				}
				if n := b.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'stripe_object_id' = $2`, events.TypePaymentSucceeded, inv); n != 1 {
					t.Errorf("%v: %d payment.succeeded", names, n)
				}
			}
		})
	}
}

func replaceAll(b []byte, m map[string]string) []byte {
	s := string(b)
	for k, v := range m {
		s = strings.ReplaceAll(s, k, v)
	}
	return []byte(s)
}

// An unpaid renewal ends the install once the grace period has passed, once; a payment
// before then keeps it.
func TestGracePeriod(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	t0 := testNow.Unix()
	b.send(t, event("evt_c", "customer.subscription.created", t0, subscriptionObj("sub_g", "active", nil)))
	b.send(t, event("evt_c2", "customer.subscription.created", t0, subscriptionObj("sub_h", "active", nil)))
	failed := invoiceObj("in_g", "sub_g", 500)
	failed["billing_reason"] = "subscription_cycle"
	b.send(t, event("evt_f", "invoice.payment_failed", t0+10, failed))
	failedH := invoiceObj("in_h", "sub_h", 500)
	failedH["billing_reason"] = "subscription_cycle"
	b.send(t, event("evt_fh", "invoice.payment_failed", t0+10, failedH))
	b.send(t, event("evt_ph", "invoice.paid", t0+20, failedH)) // sub_h recovers
	if n, err := b.h.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("inside the grace period: Sweep = %d, %v", n, err)
	}
	*b.now = testNow.Add(73 * time.Hour)
	for range 2 {
		if _, err := b.h.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'reason' = 'payment_failed'`, events.TypeInstallRevokeRequested); n != 1 {
		t.Fatalf("%d revoke requests, want 1 (sub_g only)", n)
	}
	if n := b.count(t, `SELECT count(*) FROM subscriptions WHERE access_end_reason = 'payment_failed' AND stripe_subscription_id = 'sub_g'`); n != 1 {
		t.Fatal("sub_g's access not ended")
	}
}

// A deauthorized account takes no charges and its developer's paid listings leave the catalog;
// a late account.updated does not enable it again.
func TestDeauthorized(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	t0 := testNow.Unix()
	b.send(t, eventOn("evt_da", "account.application.deauthorized", t0, "acct_dev1", map[string]any{"id": "ca_1", "object": "application"}))
	b.send(t, event("evt_au", "account.updated", t0-5, map[string]any{"id": "acct_dev1", "object": "account",
		"charges_enabled": true, "payouts_enabled": true, "details_submitted": true}))
	if n := b.count(t, `SELECT count(*) FROM integrations WHERE is_published`); n != 1 {
		t.Fatalf("%d published, want only the free listing", n)
	}
	if n := b.count(t, `SELECT count(*) FROM developer_accounts WHERE charges_enabled OR payouts_enabled`); n != 0 {
		t.Fatal("a deauthorized account can take charges")
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, events.TypeIntegrationUnpublished); n != 1 {
		t.Fatalf("%d integration.unpublished", n)
	}
}

// account.updated before the registry's commit: the account is found by its metadata.
func TestAccountUpdatedByMetadata(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	b.send(t, event("evt_a1", "account.updated", testNow.Unix(), map[string]any{"id": "acct_new2", "object": "account",
		"charges_enabled": true, "payouts_enabled": false, "details_submitted": true, "metadata": map[string]string{"developer_id": "dev_2"}}))
	b.send(t, event("evt_a0", "account.updated", testNow.Unix()-10, map[string]any{"id": "acct_new2", "object": "account",
		"charges_enabled": false, "metadata": map[string]string{"developer_id": "dev_2"}}))
	if n := b.count(t, `SELECT count(*) FROM developer_accounts WHERE developer_id = 'dev_2' AND stripe_account_id = 'acct_new2' AND charges_enabled`); n != 1 {
		t.Fatal("the newest account state is not on record")
	}
}
