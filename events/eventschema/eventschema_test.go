package eventschema_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/eventschema"
)

// Every platform event type has a schema, and no schema is without a type.
func TestEveryTypeHasASchema(t *testing.T) {
	have, err := eventschema.Types()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(events.Types())
	sort.Strings(want)
	if !slices.Equal(have, want) {
		t.Fatalf("schemas for %v\nevent types  %v", have, want)
	}
}

// The Go payload types follow the schemas: the same fields, required exactly when not
// omitempty, and the JSON types agree.
func TestGoTypesFollowSchemas(t *testing.T) {
	for _, typ := range events.Types() {
		raw, err := eventschema.JSON.ReadFile("json/" + typ + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Required   []string                  `json:"required"`
			Properties map[string]map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		rt := reflect.TypeOf(events.DataFor(typ)).Elem()
		fields := map[string]bool{}
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields[name] = true
			p, ok := s.Properties[name]
			if !ok {
				t.Errorf("%s: Go field %s (%q) is not in the schema", typ, f.Name, name)
				continue
			}
			required := slices.Contains(s.Required, name)
			if omit := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero"); omit == required {
				t.Errorf("%s: %q is required=%v in the schema but omitempty=%v in Go", typ, name, required, omit)
			}
			if got, want := p["type"], jsonType(f.Type); got != want {
				t.Errorf("%s: %q is %v in the schema, %v in Go", typ, name, got, want)
			}
		}
		for name := range s.Properties {
			if !fields[name] {
				t.Errorf("%s: schema property %q has no Go field", typ, name)
			}
		}
	}
}

func jsonType(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Time{}):
		return "string"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return "integer"
	case t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Slice:
		return "array"
	}
	return t.String()
}

func TestValidate(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	good := events.InstallRevoked{InstallID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90", IntegrationID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91",
		Name: "crypto-ticker", UserID: "u_alice", Reason: events.RevokeUserDeleted, RevokedAt: at}
	if err := eventschema.ValidateValue(events.TypeInstallRevoked, good); err != nil {
		t.Fatalf("valid payload refused: %v", err)
	}
	cases := map[string]struct {
		data  string
		field string
	}{
		"missing field":   {`{"install_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90","integration_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91","name":"crypto-ticker","user_id":"u","reason":"user_deleted"}`, ""},
		"unknown reason":  {`{"install_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90","integration_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91","name":"crypto-ticker","user_id":"u","reason":"bored","sandbox":false,"revoked_at":"2026-11-25T12:00:00Z"}`, "reason"},
		"id not a uuid":   {`{"install_id":"nope","integration_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91","name":"crypto-ticker","user_id":"u","reason":"user_deleted","sandbox":false,"revoked_at":"2026-11-25T12:00:00Z"}`, "install_id"},
		"time not a time": {`{"install_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90","integration_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91","name":"crypto-ticker","user_id":"u","reason":"user_deleted","sandbox":false,"revoked_at":"yesterday"}`, "revoked_at"},
		"extra field":     {`{"install_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90","integration_id":"0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91","name":"crypto-ticker","user_id":"u","reason":"user_deleted","sandbox":false,"revoked_at":"2026-11-25T12:00:00Z","extra":1}`, ""},
		"not an object":   {`[1]`, ""},
		"not JSON":        {`{`, ""},
	}
	for name, tc := range cases {
		err := eventschema.Validate(events.TypeInstallRevoked, []byte(tc.data))
		var e *eventschema.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: err = %v, want *eventschema.Error", name, err)
			continue
		}
		if e.Field != tc.field || e.Reason == "" || e.Type != events.TypeInstallRevoked {
			t.Errorf("%s: %+v, want field %q and a reason", name, e, tc.field)
		}
	}
	// Money is never negative; currencies are lower-case ISO 4217 codes.
	pay := events.PaymentSucceeded{PaymentID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90", StripeObjectID: "cs_1",
		IntegrationID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91", UserID: "u", AmountCents: -1, Currency: "USD", PaidAt: at}
	err := eventschema.ValidateValue(events.TypePaymentSucceeded, pay)
	var e *eventschema.Error
	if !errors.As(err, &e) || (e.Field != "amount_cents" && e.Field != "currency") {
		t.Fatalf("negative amount / upper-case currency: %v", err)
	}
	// Types without a schema are not checked.
	if err := eventschema.Validate("com.example.other", []byte(`{`)); err != nil {
		t.Fatalf("unknown type: %v", err)
	}
}
