package events_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
)

func TestTypes(t *testing.T) {
	t.Parallel()
	pattern := regexp.MustCompile(`^com\.myscrollr\.connect\.[a-z]+(\.[a-z]+)+$`)
	seen := map[string]bool{}
	payloads := map[reflect.Type]string{}
	for _, typ := range events.Types() {
		if !pattern.MatchString(typ) {
			t.Errorf("type %q is not com.myscrollr.connect.<noun>.<verb>", typ)
		}
		if seen[typ] {
			t.Errorf("type %q listed twice", typ)
		}
		seen[typ] = true
		d := events.DataFor(typ)
		if d == nil {
			t.Errorf("DataFor(%q) = nil", typ)
			continue
		}
		rt := reflect.TypeOf(d)
		if prev, ok := payloads[rt]; ok {
			t.Errorf("%q and %q share payload %v", typ, prev, rt)
		}
		payloads[rt] = typ
	}
	if len(seen) != 24 {
		t.Errorf("%d types, want 24", len(seen))
	}
	if events.DataFor("com.example.other") != nil {
		t.Error("DataFor of a foreign type is not nil")
	}
}

// TestPayloadConventions checks the payload habits: snake_case JSON names, ids as strings,
// money as int64 cents beside a currency.
func TestPayloadConventions(t *testing.T) {
	t.Parallel()
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	for _, typ := range events.Types() {
		rt := reflect.TypeOf(events.DataFor(typ)).Elem()
		hasAmount, hasCurrency := false, false
		for f := range rt.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !snake.MatchString(tag) {
				t.Errorf("%s.%s: json name %q is not snake_case", rt.Name(), f.Name, tag)
			}
			if strings.HasSuffix(tag, "_id") && f.Type.Kind() != reflect.String {
				t.Errorf("%s.%s: ids are strings, got %v", rt.Name(), f.Name, f.Type)
			}
			if strings.HasSuffix(tag, "_cents") && f.Type.Kind() != reflect.Int64 {
				t.Errorf("%s.%s: money is int64 cents, got %v", rt.Name(), f.Name, f.Type)
			}
			hasAmount = hasAmount || tag == "amount_cents"
			hasCurrency = hasCurrency || tag == "currency"
		}
		if hasAmount != hasCurrency {
			t.Errorf("%s: amount_cents and currency go together", rt.Name())
		}
	}
}

func TestPayloadJSON(t *testing.T) {
	t.Parallel()
	in := events.PaymentSucceeded{
		PaymentID: "p1", StripeObjectID: "cs_test_1", IntegrationID: "0b7e6f1c-0000-4000-8000-000000000001",
		UserID: "u_abc", AmountCents: 499, PlatformFeeCents: 50, Currency: "usd",
		PaidAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"payment_id":"p1","stripe_object_id":"cs_test_1","integration_id":"0b7e6f1c-0000-4000-8000-000000000001","user_id":"u_abc","amount_cents":499,"platform_fee_cents":50,"currency":"usd","paid_at":"2026-01-02T03:04:05Z"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	out := events.DataFor(events.TypePaymentSucceeded)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*out.(*events.PaymentSucceeded), in) {
		t.Errorf("round trip: %+v", out)
	}
}

func TestTopics(t *testing.T) {
	t.Parallel()
	for got, want := range map[string]string{
		events.TopicEvents:               "connect.events",
		events.TopicData:                 "connect.data",
		events.LifecycleTopic("weather"): "integrations.weather.lifecycle",
		events.DataTopic("weather"):      "integrations.weather.data",
		events.DLQ(events.TopicEvents):   "connect.events.dlq",
		events.Source("install"):         "/myscrollr/connect/install",
		events.ExtPartitionKey:           "partitionkey",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
