package manifest_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/manifest/manifesttest"
)

var loopback = manifest.Options{AllowLoopbackHTTP: true}

// read returns a test manifest: the complete example of a type (manifesttest, as
// "data_source.json", "widget.json", "app.json") or a file of testdata.
func read(t testing.TB, name string) []byte {
	t.Helper()
	if typ, ok := strings.CutSuffix(name, ".json"); ok && slices.Contains(manifesttest.Types, typ) {
		return manifesttest.Example(typ)
	}
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func validate(t testing.TB, data []byte, opts manifest.Options) []httpx.FieldError {
	t.Helper()
	fields, err := manifest.Validate(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	return fields
}

// The demo seeds' manifest validates exactly as written, with loopback http allowed (make dev),
// and is refused for its http URL only without the option.
func TestSeedValidatesAsWritten(t *testing.T) {
	seed := read(t, "seed.json")
	m, err := manifest.Parse(seed, loopback)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "world-clock" || m.Type != manifest.TypeWidget || m.EffectiveDeliveryMode() != "" ||
		m.EffectivePricing().Model != manifest.PricingFree {
		t.Fatalf("parsed %+v", m)
	}
	got := validate(t, seed, manifest.Options{})
	if len(got) != 1 || got[0].Field != "/base_url" || !strings.Contains(got[0].Reason, "https") {
		t.Fatalf("without loopback: %v", got)
	}
}

// A full manifest of each type validates and decodes every member.
func TestFullManifestOfEachType(t *testing.T) {
	for _, name := range []string{"data_source.json", "widget.json", "app.json"} {
		t.Run(name, func(t *testing.T) {
			raw := read(t, name)
			m, err := manifest.Parse(raw, manifest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Decoding and re-encoding keeps every member: the Go types hold the whole manifest.
			again, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var want, got map[string]any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("round trip lost something:\nwant %v\ngot  %v", want, got)
			}
		})
	}
	m, err := manifest.Parse(read(t, "data_source.json"), manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.EffectiveDeliveryMode() != manifest.DeliveryPull || m.DataSource.RefreshIntervalSeconds != 60 ||
		m.Deprecation.Replacement != "crypto-ticker-pro" {
		t.Fatalf("parsed %+v", m)
	}
}

// edit returns base with the top-level members in set replaced (nil deletes).
func edit(t *testing.T, base []byte, set map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(base, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fe is a FieldError written positionally in the tables below.
type fe struct{ Field, Reason string }

func fields(fs ...fe) []httpx.FieldError {
	out := make([]httpx.FieldError, len(fs))
	for i, f := range fs {
		out[i] = httpx.FieldError(f)
	}
	return out
}

func TestInvalidManifestsReportEveryProblem(t *testing.T) {
	ds, widget, app := read(t, "data_source.json"), read(t, "widget.json"), read(t, "app.json")
	semver := "must be a semantic version (MAJOR.MINOR.PATCH, semver.org 2.0.0)"
	https := "must be an https URL without credentials, at most 2048 characters"
	cases := []struct {
		name string
		data []byte
		want []fe
	}{
		{"not JSON", []byte(`{"name":`), []fe{{"", "not valid JSON"}}},
		{"trailing data", []byte(`{} {}`), []fe{{"", "not valid JSON"}}},
		{"not an object", []byte(`[]`), []fe{{"", "got array, want object"}}},
		{"empty object names every required member", []byte(`{}`), []fe{
			{"/base_url", "required"}, {"/display_name", "required"}, {"/name", "required"},
			{"/scopes", "required"}, {"/type", "required"}, {"/version", "required"}}},
		{"several problems at once", edit(t, ds, map[string]any{
			"name": "Crypto_Ticker", "version": "1.0", "type": "plugin", "base_url": "ftp://x", "colour": "red",
		}), []fe{
			{"/base_url", https}, {"/colour", "unknown field"},
			{"/name", "must be 2 to 63 lower-case letters, digits or hyphens, not starting with a hyphen"},
			{"/type", "value must be one of 'data_source', 'widget', 'app'"}, {"/version", semver}}},
		{"semver leading zero", edit(t, ds, map[string]any{"version": "01.2.3"}), []fe{{"/version", semver}}},
		{"scopes: platform scope, duplicate", edit(t, ds, map[string]any{
			"scopes": []string{"dashboard:read", "integrations:admin", "dashboard:read"}}), []fe{
			{"/scopes", "items at 0 and 2 are equal"},
			{"/scopes/1", "value must be one of 'profile:read', 'dashboard:read', 'dashboard:write', 'fantasy:read', 'data:write'"}}},
		{"push widget and a data_source block", edit(t, widget, map[string]any{
			"delivery_mode": "push", "data_source": map[string]any{}}), []fe{
			{"/data_source", "only a data source has a data_source block"},
			{"/delivery_mode", "only a data source has a delivery mode"}}},
		{"app with a widget block", edit(t, app, map[string]any{"widget": map[string]any{}}), []fe{
			{"/widget", "only a widget has a widget block"}}},
		{"push source polled", edit(t, ds, map[string]any{"delivery_mode": "push"}), []fe{
			{"/data_source/refresh_interval_seconds", "only a pull source is polled"}}},
		{"free with a price", edit(t, ds, map[string]any{"pricing": map[string]any{
			"model": "free", "price_cents": 100, "currency": "usd", "interval": "month"}}), []fe{
			{"/pricing/currency", "not allowed when the model is free"},
			{"/pricing/interval", "not allowed when the model is free"},
			{"/pricing/price_cents", "must be 0 or absent when the model is free"}}},
		{"one_time without price", edit(t, ds, map[string]any{"pricing": map[string]any{"model": "one_time", "interval": "year"}}), []fe{
			{"/pricing/currency", "required"}, {"/pricing/interval", "only a subscription has an interval"},
			{"/pricing/price_cents", "required"}}},
		{"subscription at zero without interval, bad currency", edit(t, ds, map[string]any{"pricing": map[string]any{
			"model": "subscription", "price_cents": 0, "currency": "USD"}}), []fe{
			{"/pricing/currency", "must be a lower-case ISO 4217 code such as usd"},
			{"/pricing/interval", "required"},
			{"/pricing/price_cents", "must be more than 0 for a paid model"}}},
		{"every URL member is checked", edit(t, ds, map[string]any{
			"author": map[string]any{"name": "A", "url": "http://a.example.com"}, "icon": "https://user:pw@cdn.example.com/i.png",
			"screenshots": []string{"https://ok.example.com/1.png", "javascript:alert(1)"}, "support_url": "https://",
			"privacy_url": "//example.com", "redirect_uris": []string{"http://127.0.0.1/cb"}}), []fe{
			{"/author/url", https}, {"/icon", https}, {"/privacy_url", https}, {"/redirect_uris/0", https},
			{"/screenshots/1", https}, {"/support_url", https}}},
		{"widget contract", edit(t, widget, map[string]any{"widget": map[string]any{
			"sizes":    []any{map[string]any{"w": 8, "h": 8}, map[string]any{"w": 0, "h": 1}},
			"min_size": map[string]any{"w": 3, "h": 3}, "max_size": map[string]any{"w": 2, "h": 2},
			"config": []any{
				map[string]any{"key": "city", "label": "City", "type": "select", "default": "rome", "options": []string{"paris"}},
				map[string]any{"key": "city", "label": "Again", "type": "select"},
				map[string]any{"key": "n", "label": "N", "type": "number", "default": "one", "options": []string{"x"}},
			}}}), []fe{
			// The comparisons run beside the schema, so every problem is reported at once.
			{"/widget/config/0/default", "does not match the option's type"},
			{"/widget/config/1/key", "duplicate key"}, {"/widget/config/1/options", "required"},
			{"/widget/config/2/default", "does not match the option's type"},
			{"/widget/config/2/options", "only a select option has options"},
			{"/widget/min_size", "larger than max_size"},
			{"/widget/sizes/0", "outside min_size and max_size"}, {"/widget/sizes/1", "outside min_size and max_size"},
			{"/widget/sizes/1/w", "minimum: got 0, want 1"},
		}},
		{"widget comparisons alone", edit(t, widget, map[string]any{"widget": map[string]any{
			"sizes":    []any{map[string]any{"w": 8, "h": 8}},
			"min_size": map[string]any{"w": 3, "h": 3}, "max_size": map[string]any{"w": 2, "h": 2},
			"config": []any{
				map[string]any{"key": "city", "label": "City", "type": "select", "default": "rome", "options": []string{"paris"}},
				map[string]any{"key": "n", "label": "N", "type": "number", "default": "one"},
			}}}), []fe{
			{"/widget/config/0/default", "does not match the option's type"},
			{"/widget/config/1/default", "does not match the option's type"},
			{"/widget/min_size", "larger than max_size"},
			{"/widget/sizes/0", "outside min_size and max_size"}}},
		{"data source and app contracts", edit(t, ds, map[string]any{"data_source": map[string]any{
			"streams": []any{map[string]any{"name": "Bad Name"}, map[string]any{}}, "refresh_interval_seconds": 5}}), []fe{
			{"/data_source/refresh_interval_seconds", "minimum: got 5, want 60"},
			{"/data_source/streams/0/name", "must be 1 to 63 lower-case letters, digits or underscores, starting with a letter"},
			{"/data_source/streams/1/name", "required"}}},
		{"app lifecycle", edit(t, app, map[string]any{"app": map[string]any{"lifecycle": "webhook"}}), []fe{
			{"/app/lifecycle", "value must be one of 'kafka', 'http'"}}},
		{"deprecation", edit(t, ds, map[string]any{"deprecation": map[string]any{"sunset": "2027-13-40", "replacement": "-x"}}), []fe{
			{"/deprecation/message", "required"}, {"/deprecation/replacement", "must be the name of another integration"},
			{"/deprecation/sunset", "must be a date (YYYY-MM-DD)"}}},
		{"tags and category", edit(t, ds, map[string]any{"category": "Finance!", "tags": []string{"ok", "Not OK"}}), []fe{
			{"/category", "must be a category slug (lower-case letters, digits, hyphens)"},
			{"/tags/1", "must be 1 to 32 lower-case letters, digits or hyphens"}}},
		{"pointer escaping", []byte(`{"name":"ab","display_name":"x","version":"1.0.0","type":"app","base_url":"https://a.example","scopes":[],"a/b~c":1}`),
			[]fe{{"/a~1b~0c", "unknown field"}}},
		{"integer that Go cannot hold", edit(t, ds, map[string]any{"pricing": json.RawMessage(
			`{"model":"one_time","price_cents":1e3,"currency":"usd"}`)}), []fe{{"", "does not fit the manifest types"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := fields(c.want...)
			got := validate(t, c.data, manifest.Options{})
			if !slices.Equal(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
			_, err := manifest.Parse(c.data, manifest.Options{})
			var me *manifest.Error
			if !errors.As(err, &me) || !slices.Equal(me.Fields, want) {
				t.Fatalf("Parse: %v", err)
			}
			if p := me.Problem(); p.Status != 400 || !slices.Equal(p.Errors, want) {
				t.Fatalf("Problem: %+v", p)
			}
		})
	}
}

// http is refused unless the option is set, and then only on 127.0.0.1.
func TestLoopbackHTTP(t *testing.T) {
	base := read(t, "app.json")
	cases := []struct {
		url                string
		strict, okLoopback bool
	}{
		{"https://coach.example.com", true, true},
		{"http://127.0.0.1:8081", false, true},
		{"http://127.0.0.1/x", false, true},
		{"http://127.0.0.1", false, true},
		{"http://localhost:8081", false, false},
		{"http://[::1]:8081", false, false},
		{"http://127.0.0.1.example.com", false, false},
		{"http://127.0.0.10", false, false},
		{"http://user@127.0.0.1", false, false},
		{"http://coach.example.com", false, false},
	}
	for _, c := range cases {
		data := edit(t, base, map[string]any{"base_url": c.url, "redirect_uris": []string{c.url}})
		for _, o := range []struct {
			opts manifest.Options
			ok   bool
		}{{manifest.Options{}, c.strict}, {loopback, c.okLoopback}} {
			got := validate(t, data, o.opts)
			if o.ok && len(got) != 0 {
				t.Errorf("%s %+v: refused: %v", c.url, o.opts, got)
			}
			if !o.ok && (len(got) != 2 || got[0].Field != "/base_url" || got[1].Field != "/redirect_uris/0") {
				t.Errorf("%s %+v: got %v", c.url, o.opts, got)
			}
		}
	}
}

// Oversized and overly nested input is refused before it is parsed: the answer does not depend
// on the content (which here is not even JSON past the limit).
func TestBoundsBeforeParsing(t *testing.T) {
	big := append(read(t, "app.json"), make([]byte, manifest.MaxSize)...)
	if got := validate(t, big, manifest.Options{}); !slices.Equal(got, fields(fe{"", "larger than 65536 bytes"})) {
		t.Fatalf("oversized: %v", got)
	}
	deep := strings.Repeat("[", manifest.MaxDepth+1) + "garbage"
	if got := validate(t, []byte(deep), manifest.Options{}); !slices.Equal(got, fields(fe{"", "nested deeper than 16 levels"})) {
		t.Fatalf("deep: %v", got)
	}
	// Brackets inside strings do not count.
	quoted := edit(t, read(t, "app.json"), map[string]any{"description": strings.Repeat("[{", 100)})
	if got := validate(t, quoted, manifest.Options{}); len(got) != 0 {
		t.Fatalf("brackets in a string: %v", got)
	}
}

// The Go types and the schema name the same top-level members, required exactly when not
// omitempty.
func TestGoTypesFollowSchema(t *testing.T) {
	raw, err := schemas.JSON.ReadFile(manifest.SchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Required   []string       `json:"required"`
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	rt := reflect.TypeFor[manifest.Manifest]()
	seen := map[string]bool{}
	for i := range rt.NumField() {
		name, opts, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		seen[name] = true
		if _, ok := s.Properties[name]; !ok {
			t.Errorf("Go member %q is not in the schema", name)
		}
		if omit := strings.Contains(opts, "omitempty"); omit == slices.Contains(s.Required, name) {
			t.Errorf("%q: required %v in the schema, omitempty %v in Go", name, !omit, omit)
		}
	}
	for name := range s.Properties {
		if !seen[name] {
			t.Errorf("schema member %q has no Go field", name)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, name := range []string{"seed.json", "data_source.json", "widget.json", "app.json"} {
		f.Add(read(f, name), false)
	}
	f.Add([]byte(`{"widget":{"sizes":[{"w":1e400}]}}`), true)
	f.Add([]byte(`{"a/b~":[[[[]]]]}`), false)
	f.Fuzz(func(t *testing.T, data []byte, allow bool) {
		problems, err := manifest.Validate(data, manifest.Options{AllowLoopbackHTTP: allow})
		if err != nil {
			t.Fatal(err)
		}
		for _, fe := range problems {
			if fe.Reason == "" || (fe.Field != "" && !strings.HasPrefix(fe.Field, "/")) {
				t.Fatalf("not a pointer and reason: %+v", fe)
			}
		}
		if !slices.IsSortedFunc(problems, func(a, b httpx.FieldError) int {
			return strings.Compare(a.Field+"\x00"+a.Reason, b.Field+"\x00"+b.Reason)
		}) {
			t.Fatalf("not sorted: %v", problems)
		}
		m, err := manifest.Parse(data, manifest.Options{AllowLoopbackHTTP: allow})
		if (err == nil) != (len(problems) == 0) || (err == nil && m == nil) {
			t.Fatalf("Parse and Validate disagree: %v / %v", err, problems)
		}
	})
}
