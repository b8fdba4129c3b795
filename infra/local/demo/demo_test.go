package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/conformance"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/shared/ssrf"
	"github.com/myscrollr/connect/wasmhost/examples/quotes"
)

// Every demo integration answers its health check and lifecycle callbacks (an unsigned or
// badly signed delivery 401: lifecycle_test.go has the signed ones), and the pull source serves records that its own schema
// describes.
func TestDemoIntegrationsAnswer(t *testing.T) {
	clock := new(atomic.Int64)
	clock.Store(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano())
	s, err := Start(slog.New(slog.DiscardHandler), func() time.Time { return time.Unix(0, clock.Load()).UTC() })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if len(s.Integrations) != 4 {
		t.Fatalf("%d demo integrations, want 4", len(s.Integrations))
	}
	types := map[string]bool{}
	for _, in := range s.Integrations {
		types[in.Type+"/"+in.DeliveryMode] = true
		resp, err := http.Get(in.BaseURL + "/health")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /health: %v %v", in.Name, resp, err)
		}
		resp.Body.Close()
		resp, err = http.Post(in.BaseURL+"/lifecycle/install", "application/json", nil)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s unsigned /lifecycle/install: %v %v", in.Name, resp, err)
		}
		resp.Body.Close()
		req, _ := http.NewRequest(http.MethodPost, in.BaseURL+"/lifecycle/uninstall", strings.NewReader("{}"))
		req.Header.Set("Webhook-Signature", "v1a,c2lnbmF0dXJl")
		resp, err = http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s badly signed /lifecycle/uninstall: %v %v", in.Name, resp, err)
		}
		resp.Body.Close()
	}
	for _, want := range []string{"data_source/pull", "data_source/push", "widget/", "app/"} {
		if !types[want] {
			t.Errorf("no demo integration of kind %s", want)
		}
	}
	checkPullSource(t, s.Integrations[0].BaseURL, clock)
}

// The pull source follows the pull contracts (its records all valid against its own schema),
// its records are ones the quotes transform normalizes, and its GET /data answers conditional
// requests: 304 while the minute lasts, new validators and 200 when the prices move.
func checkPullSource(t *testing.T, base string, clock *atomic.Int64) {
	t.Helper()
	get := func(path string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	resp, schemaBody := get("/schema")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		t.Fatalf("/schema: %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if resp, _ := get("/schema", "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
		t.Errorf("/schema with its ETag: %d, want 304", resp.StatusCode)
	}
	sch, err := records.ParsePullSchema(schemaBody)
	if err != nil {
		t.Fatal(err)
	}
	resp, dataBody := get("/data")
	etag, lastModified := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if resp.StatusCode != http.StatusOK || etag == "" || lastModified != "Wed, 25 Nov 2026 12:00:00 GMT" {
		t.Fatalf("/data: %d, ETag %q, Last-Modified %q", resp.StatusCode, etag, lastModified)
	}
	items, err := records.ParsePullData(dataBody, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	good, bad, err := records.CheckPull(context.Background(), records.Source{Name: "crypto-ticker"}, sch, items, records.Identity{})
	if err != nil || len(good) != 3 || len(bad) != 0 {
		t.Fatalf("records: %d good, %+v bad, %v", len(good), bad, err)
	}
	// The records are in the quotes transform's input shape, and the transform (its rules run
	// natively here; the stack's e2e test runs the WASM build) takes every one of them to the
	// standard shape: upper-case symbol, integer cents, milliseconds.
	wantTS := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).Unix()
	var keys []string
	for _, r := range good {
		keys = append(keys, r.Key)
		var in struct {
			Symbol, Price, Currency string
			TS, Volume              int64
		}
		if err := json.Unmarshal(r.Data, &in); err != nil || r.Stream != QuotesStream || in.Symbol != r.Key ||
			in.Symbol != strings.ToLower(in.Symbol) || in.Currency != "usd" || in.TS != wantTS || in.Volume <= 0 ||
			!strings.Contains(in.Price, ".") {
			t.Errorf("record %s %s: not a quotes input record of 12:00", r.Key, r.Data)
			continue
		}
		out, prob := quotes.Append(nil, r.Stream, r.Data)
		if prob != nil {
			t.Errorf("the quotes transform refuses %s: %s %s", r.Data, prob.Field, prob.Reason)
			continue
		}
		var norm struct {
			Symbol       string `json:"symbol"`
			PriceCents   int64  `json:"price_cents"`
			Currency     string `json:"currency"`
			ObservedAtMS int64  `json:"observed_at_ms"`
			Volume       int64  `json:"volume"`
		}
		if err := json.Unmarshal(out, &norm); err != nil || norm.Symbol != strings.ToUpper(in.Symbol) || norm.PriceCents <= 0 ||
			strconv.FormatInt(norm.PriceCents/100, 10)+"."+fmt.Sprintf("%02d", norm.PriceCents%100) != in.Price ||
			norm.Currency != "USD" || norm.ObservedAtMS != wantTS*1000 || norm.Volume != in.Volume {
			t.Errorf("%s normalized to %s", r.Data, out)
		}
	}
	if !slices.Equal(keys, []string{"btc", "eth", "sol"}) {
		t.Errorf("keys %v, want btc, eth, sol", keys)
	}
	clock.Add(int64(30 * time.Second)) // same minute: nothing new
	if resp, _ := get("/data", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("/data with its ETag in the same minute: %d, want 304", resp.StatusCode)
	}
	if resp, _ := get("/data", "If-Modified-Since", lastModified); resp.StatusCode != http.StatusNotModified {
		t.Errorf("/data with its Last-Modified in the same minute: %d, want 304", resp.StatusCode)
	}
	clock.Add(int64(time.Minute)) // the prices move
	resp, next := get("/data", "If-None-Match", etag)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag || string(next) == string(dataBody) {
		t.Errorf("/data a minute later: %d, ETag %q (was %q)", resp.StatusCode, resp.Header.Get("ETag"), etag)
	}
}

// Every demo integration passes every automated check of the registry, with loopback http
// allowed as make dev allows it, its manifest read back as the registry reads one.
func TestDemoIntegrationsPassEveryCheck(t *testing.T) {
	s, err := Start(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	client, err := ssrf.NewClient(ssrf.Config{Allow: []ssrf.Destination{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, in := range s.Integrations {
		raw, err := json.Marshal(in.Manifest())
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.Parse(raw, manifest.Options{AllowLoopbackHTTP: true})
		if err != nil {
			t.Fatalf("%s: %v", in.Name, err)
		}
		if m.Icon == "" || len(m.Screenshots) == 0 || m.Category == "" || len(m.Tags) == 0 || m.Pricing == nil {
			t.Errorf("%s: manifest lacks listing fields: %s", in.Name, raw)
		}
		results := conformance.Run(ctx, client, m, conformance.Options{AllowLoopbackHTTP: true, CallTimeout: 10 * time.Second})
		names := map[string]bool{}
		for _, r := range results {
			names[r.Name] = true
			if !r.Passed {
				t.Errorf("%s: %s failed: %s", in.Name, r.Name, r.Reason)
			}
		}
		want := map[string][]string{"crypto-ticker": {"pull_schema", "pull_data"}, "league-scores": {"push_schema"},
			"world-clock": {"widget_manifest", "widget_bundle"}, "portfolio-coach": {"lifecycle"}}[in.Name]
		for _, n := range append(want, "schema", "base_url", "health", "mixed_content") {
			if !names[n] {
				t.Errorf("%s: check %s did not run", in.Name, n)
			}
		}
		// The pages the manifest links to are served.
		for _, u := range append([]string{m.Icon, m.SupportURL, m.PrivacyURL}, m.Screenshots...) {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: GET %s = %d", in.Name, u, resp.StatusCode)
			}
		}
	}
	// No demo listing is 'official' any more (migration 00006 keeps unverified, verified, featured).
	for _, in := range s.Integrations {
		if in.Tier != "unverified" && in.Tier != "verified" && in.Tier != "featured" {
			t.Errorf("%s: tier %q", in.Name, in.Tier)
		}
	}
}
