package main

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/myscrollr/connect/events"
)

// A paid one-time Checkout Session records the payment (gross, fee, net) and announces
// payment.succeeded with the pending install, once.
func TestCheckoutCompleted(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	body := eventOn("evt_cs1", "checkout.session.completed", testNow.Unix(), "acct_dev1", checkoutObj("cs_1", 499))
	b.send(t, body)
	b.send(t, body) // a redelivery changes nothing
	var gross, fee, net int64
	var status, pend, acct string
	if err := b.owner.QueryRow(t.Context(), `SELECT amount_cents, platform_fee_cents, net_cents, status, pending_install_id::text, stripe_account_id
		FROM payments WHERE stripe_object_id = 'cs_1'`).Scan(&gross, &fee, &net, &status, &pend, &acct); err != nil {
		t.Fatal(err)
	}
	if gross != 499 || fee != 75 || net != 424 || status != "succeeded" || pend != pending || acct != "acct_dev1" {
		t.Fatalf("payment %d %d %d %s %s %s", gross, fee, net, status, pend, acct)
	}
	if got := b.outboxTypes(t); !slices.Equal(got, []string{events.TypePaymentSucceeded}) {
		t.Fatalf("outbox %v", got)
	}
	var payload string
	if err := b.owner.QueryRow(t.Context(), `SELECT payload->>'pending_install_id' FROM outbox`).Scan(&payload); err != nil || payload != pending {
		t.Fatalf("payment.succeeded pending_install_id = %q, %v", payload, err)
	}
	// A full refund of the one-time purchase: refunded, and the install asked to end.
	refund := event("evt_ref1", "charge.refunded", testNow.Unix()+60, map[string]any{"id": "ch_1", "object": "charge",
		"payment_intent": "pi_cs_1", "refunded": true, "amount_refunded": 499, "currency": "usd"})
	b.send(t, refund)
	b.send(t, refund)
	if got := b.outboxTypes(t); !slices.Equal(got, []string{events.TypePaymentSucceeded, events.TypeInstallRevokeRequested, events.TypePaymentRefunded}) {
		t.Fatalf("outbox after refund %v", got)
	}
	if n := b.count(t, `SELECT count(*) FROM payments WHERE status = 'refunded'`); n != 1 {
		t.Fatalf("%d refunded", n)
	}
	// The session completed again (a late copy under another event id) does not un-refund it.
	b.send(t, eventOn("evt_cs1b", "checkout.session.completed", testNow.Unix(), "acct_dev1", checkoutObj("cs_1", 499)))
	if n := b.count(t, `SELECT count(*) FROM payments WHERE status = 'refunded'`); n != 1 || len(b.outboxTypes(t)) != 3 {
		t.Fatal("a late completion changed a refunded payment")
	}
}

// A refund before the payment it refunds is answered 503 (Stripe retries) and writes nothing.
func TestRefundBeforePaymentIsRetried(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	body := event("evt_ref0", "charge.refunded", testNow.Unix(), map[string]any{"id": "ch_0", "object": "charge",
		"payment_intent": "pi_unknown", "refunded": true, "amount_refunded": 100, "currency": "usd"})
	if code, out := b.post(t, nil, body, sign(body, secret, time.Now())); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", code, out)
	}
	if n := b.count(t, `SELECT count(*) FROM processed_events`); n != 0 {
		t.Fatal("the event was claimed although nothing was done")
	}
}

// Forged webhooks are 400 problems naming Stripe-Signature, and change nothing.
func TestForgedWebhooks(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	body := eventOn("evt_f1", "checkout.session.completed", testNow.Unix(), "acct_dev1", checkoutObj("cs_f", 499))
	good := sign(body, secret, time.Now())
	ts := good[:strings.Index(good, ",")]
	flipped := bytes.Clone(body)
	flipped[len(flipped)/2] ^= 0x01
	for _, tc := range []struct {
		name string
		body []byte
		sig  string
	}{
		{"no header", body, ""},
		{"bad hex", body, ts + ",v1=zz" + strings.Repeat("0", 62)},
		{"no v1", body, ts},
		{"malformed", body, "garbage"},
		{"wrong secret", body, sign(body, "whsec_someone_else_0123456789", time.Now())},
		{"flipped body byte", flipped, good},
		{"301 s old", body, sign(body, secret, time.Now().Add(-301*time.Second))},
		{"v0 only", body, strings.Replace(good, "v1=", "v0=", 1)},
	} {
		code, out := b.post(t, nil, tc.body, tc.sig)
		if code != http.StatusBadRequest || !strings.Contains(out, SignatureHeader) || !strings.Contains(out, "application/problem+json") && !strings.Contains(out, `"status":400`) {
			t.Errorf("%s: status %d: %s", tc.name, code, out)
		}
	}
	if n := b.count(t, `SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM processed_events)`); n != 0 {
		t.Fatalf("forged webhooks wrote %d rows", n)
	}
	// The same body, signed, is accepted: the refusals were about the signature.
	b.send(t, body)
}

// During a secret rotation Stripe signs with both secrets (two v1 values); either configured
// secret accepts such a header, and several configured secrets accept either signature.
func TestRotation(t *testing.T) {
	t.Parallel()
	body := eventOn("evt_r1", "checkout.session.completed", testNow.Unix(), "acct_dev1", checkoutObj("cs_r", 499))
	now := time.Now()
	both := sign(body, oldSecret, now) + ",v1=" + fmt.Sprintf("%x", webhook.ComputeSignature(now, body, secret))
	for _, tc := range []struct {
		name    string
		secrets []string
		sig     string
	}{
		{"two v1, new secret configured", []string{secret}, both},
		{"two v1, old secret configured", []string{oldSecret}, both},
		{"old signature, both configured", []string{secret, oldSecret}, sign(body, oldSecret, now)},
		{"new signature, both configured", []string{oldSecret, secret}, sign(body, secret, now)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupWebhook(t, func(c *Config) { c.Secrets = tc.secrets })
			if code, out := b.post(t, nil, body, tc.sig); code != http.StatusOK {
				t.Fatalf("status %d: %s", code, out)
			}
			if n := b.count(t, `SELECT count(*) FROM payments`); n != 1 {
				t.Fatalf("%d payments", n)
			}
		})
	}
}

// Signed but unacceptable events are 400 naming the field: another mode, another API version,
// not an event.
func TestRefusedEvents(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	live := bytes.Replace(event("evt_l", "invoice.paid", testNow.Unix(), invoiceObj("in_l", "sub_l", 500)), []byte(`"livemode":false`), []byte(`"livemode":true`), 1)
	oldAPI := bytes.Replace(event("evt_v", "invoice.paid", testNow.Unix(), invoiceObj("in_v", "sub_v", 500)), []byte(`"api_version":"`), []byte(`"api_version":"2020-08-27`), 1)
	for _, tc := range []struct {
		name, field string
		body        []byte
	}{
		{"livemode", "livemode", live},
		{"api version", "api_version", oldAPI},
		{"not json", "body", []byte(`{"id":`)},
		{"no id", "id", []byte(`{"object":"event"}`)},
		{"bad object", "data.object", event("evt_b", "invoice.paid", testNow.Unix(), map[string]any{"id": "in_b", "amount_paid": "lots"})},
	} {
		code, out := b.post(t, nil, tc.body, sign(tc.body, secret, time.Now()))
		if code != http.StatusBadRequest || !strings.Contains(out, `"`+tc.field+`"`) {
			t.Errorf("%s: status %d: %s", tc.name, code, out)
		}
	}
	if n := b.count(t, `SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM outbox) + (SELECT count(*) FROM processed_events)`); n != 0 {
		t.Fatalf("refused events wrote %d rows", n)
	}
}

// 10,000 deliveries of one event from 50 concurrent senders: one effect, no 5xx.
func TestConcurrentDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 deliveries")
	}
	t.Parallel()
	b := setupWebhook(t, nil)
	body := eventOn("evt_dup", "checkout.session.completed", testNow.Unix(), "acct_dev1", checkoutObj("cs_dup", 499))
	sig := sign(body, secret, time.Now())
	const senders, total = 50, 10000
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var wg sync.WaitGroup
	codes := make([]map[int]int, senders)
	for s := range senders {
		codes[s] = map[int]int{}
		wg.Go(func() {
			for range total / senders {
				code, _ := b.post(t, client, body, sig)
				codes[s][code]++
			}
		})
	}
	wg.Wait()
	all := map[int]int{}
	for _, c := range codes {
		for k, v := range c {
			all[k] += v
		}
	}
	if all[http.StatusOK] != total {
		t.Fatalf("answers %v, want %d × 200", all, total)
	}
	if n := b.count(t, `SELECT count(*) FROM payments`); n != 1 {
		t.Fatalf("%d payments", n)
	}
	if got := b.outboxTypes(t); len(got) != 1 {
		t.Fatalf("outbox %v", got)
	}
}

// The database down: 503 so Stripe retries, never a 2xx.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	b.h.pool.Close()
	body := eventOn("evt_down", "checkout.session.completed", testNow.Unix(), "acct_dev1", checkoutObj("cs_down", 499))
	if code, out := b.post(t, nil, body, sign(body, secret, time.Now())); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", code, out)
	}
}
