// Package demo runs the demonstration integrations that `make dev` registers in the catalog,
// so a newcomer sees a marketplace with listings that answer: a pull data source, a push data
// source, a dashboard widget and a full-stack app. Each is a small HTTP server on 127.0.0.1
// speaking the integration side of the platform contract, and each passes every automated
// check of the registry (shared/conformance) with loopback http allowed:
//
//   - every one: GET /health (schemas/json/health.json), the lifecycle callbacks POST
//     /lifecycle/install, /lifecycle/uninstall and /lifecycle/redact, and the pages its manifest links to (icon,
//     screenshot, support, privacy);
//   - the pull source: GET /schema and GET /data (schemas/json/pull-schema.json, pull-data.json);
//   - the widget: GET /manifest (schemas/json/widget-manifest.json) and GET /bundle, the
//     JavaScript module defining its custom element.
//
// The lifecycle callbacks (lifecycle.go) verify the platform's Standard Webhooks signatures
// with only its published keys (Servers.SetLifecycleKeysURL), dedupe by webhook-id, and show
// what they accepted at GET /lifecycle/received.
//
// Seed writes each listing with its full manifest (category, tags, pricing, per-type block,
// icon, screenshots, support and privacy pages), validated with loopback http allowed.
//
// The pull source's records come in a source's own shape and reach the platform's standard
// one through a WASM transform, as a developer's would: crypto-ticker serves a "quotes" stream
// in the input shape of the example quotes transform (wasmhost/examples/quotes: lower-case
// symbol, price as a decimal string, currency, ts in seconds, volume), and its Transform names
// the Go package of that transform (wasmhost/examples/go). The local stack builds it for
// wasip1, validates it with wasmhost as the registry does and stores it for the listing's
// version, so poll normalizes every polled record (upper-case symbol, integer price_cents,
// observed_at_ms) before it is stored and announced on connect.data. One stream only: the
// transform refuses a stream it does not know, so a second, untransformed stream beside it
// would be refused record by record.
//
// The data is made up: prices follow a deterministic walk from the time, so runs are
// reproducible.
package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/manifest"
)

// Integration is one running demo integration and its catalog listing.
type Integration struct {
	Name, DisplayName, Type, DeliveryMode, Description, Category string
	Tags                                                         []string
	PricingModel                                                 string
	PriceCents                                                   int64
	Currency, Interval                                           string // paid listings
	Tier                                                         string
	Scopes                                                       []string
	BaseURL                                                      string

	// The per-type block of the manifest (one of them, by Type).
	Widget     *manifest.Widget
	DataSource *manifest.DataSource
	App        *manifest.App

	// AppID and AppSecret are the integration's Logto application (the OIDC client of the
	// install consent); ClientID and ClientSecret its integration client (machine to machine:
	// the client credentials of the token with which it calls the platform as itself, to claim
	// install tokens, catch up on lifecycle events or push). Set by whoever registers it with
	// the identity provider (the local stack).
	AppID, AppSecret       string
	ClientID, ClientSecret string

	// Transform is the Go package of the WASM transform (ABI v1, built with GOOS=wasip1
	// GOARCH=wasm -buildmode=c-shared) the integration's records go through, stored for its
	// Version by whoever seeds it with transforms (the local stack); empty: none.
	Transform string

	handler  http.Handler
	receiver *receiver
}

// Version is the version every demo integration is registered at.
const Version = "1.0.0"

// QuotesTransform is the Go package of the example quotes transform (wasmhost/examples/go,
// the rules of wasmhost/examples/quotes): the one crypto-ticker's quotes go through.
const QuotesTransform = "github.com/myscrollr/connect/wasmhost/examples/go"

// QuotesStream is crypto-ticker's one stream, the stream the quotes transform knows.
const QuotesStream = "quotes"

// Transforms are the Go packages of the demo integrations' transforms, by integration name:
// what a stack builds before it seeds them (before Start, so the build can overlap start-up).
func Transforms() map[string]string {
	out := map[string]string{}
	for _, in := range catalog(time.Now) {
		if in.Transform != "" {
			out[in.Name] = in.Transform
		}
	}
	return out
}

// Manifest is the integration's full manifest (schemas/json/manifest.json) at its BaseURL:
// its icon, screenshot, support and privacy pages are served by the integration itself.
func (in Integration) Manifest() *manifest.Manifest {
	m := &manifest.Manifest{
		Name: in.Name, DisplayName: in.DisplayName, Version: Version, Type: in.Type,
		DeliveryMode: in.DeliveryMode, Description: in.Description,
		Author:  &manifest.Author{Name: "MyScrollr demo"},
		BaseURL: in.BaseURL, Scopes: in.Scopes,
		Pricing: &manifest.Pricing{Model: in.PricingModel, PriceCents: in.PriceCents, Currency: in.Currency,
			Interval: in.Interval},
		Icon:        in.BaseURL + "/icon.svg",
		Screenshots: []string{in.BaseURL + "/screenshots/1.svg"},
		Category:    in.Category, Tags: in.Tags,
		SupportURL: in.BaseURL + "/support", PrivacyURL: in.BaseURL + "/privacy",
		Widget: in.Widget, DataSource: in.DataSource, App: in.App,
	}
	return m
}

// Servers are the running demo integrations.
type Servers struct {
	Integrations []Integration
	servers      []*http.Server
	receivers    []*receiver
	wg           sync.WaitGroup
}

// Start runs every demo integration on a free loopback port.
func Start(log *slog.Logger, now func() time.Time) (*Servers, error) {
	if now == nil {
		now = time.Now
	}
	s := &Servers{}
	for _, in := range catalog(now) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("demo: listen for %s: %w", in.Name, err)
		}
		in.BaseURL = "http://" + ln.Addr().String()
		// The lifecycle callbacks (lifecycle.go) beside what the integration serves.
		in.receiver = newReceiver(now)
		mux := http.NewServeMux()
		in.receiver.routes(mux)
		mux.Handle("/", in.handler)
		srv := &http.Server{Handler: mux,
			// Slow clients are cut off as at the functions (shared/runtime/timeouts.go).
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, IdleTimeout: 90 * time.Second}
		s.servers = append(s.servers, srv)
		s.receivers = append(s.receivers, in.receiver)
		s.Integrations = append(s.Integrations, in)
		s.wg.Go(func() { _ = srv.Serve(ln) })
		log.Info("demo integration running", "name", in.Name, "url", in.BaseURL)
	}
	return s, nil
}

// Stop shuts every demo server down.
func (s *Servers) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
	s.wg.Wait()
}

// Seed registers (or refreshes) the demo listings as published, with their current URLs and
// full manifests. A manifest that does not validate (with loopback http allowed, as make dev
// runs) fails the seed before anything is written.
func (s *Servers) Seed(ctx context.Context, conn *pgx.Conn) error {
	manifests := make([][]byte, len(s.Integrations))
	for i, in := range s.Integrations {
		raw, err := json.Marshal(in.Manifest())
		if err != nil {
			return fmt.Errorf("demo: manifest of %s: %w", in.Name, err)
		}
		if _, err := manifest.Parse(raw, manifest.Options{AllowLoopbackHTTP: true}); err != nil {
			return fmt.Errorf("demo: manifest of %s: %w", in.Name, err)
		}
		manifests[i] = raw
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for i, in := range s.Integrations {
			var mode any
			if in.DeliveryMode != "" {
				mode = in.DeliveryMode
			}
			currency := in.Currency
			if currency == "" {
				currency = "usd"
			}
			var id string
			err := tx.QueryRow(ctx, `INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode,
					description, base_url, category, tags, current_version, manifest, verification_tier,
					pricing_model, price_cents, currency, is_published, published_at)
				VALUES ('demo-developer', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, true, now())
				ON CONFLICT (name) DO UPDATE SET base_url = EXCLUDED.base_url, manifest = EXCLUDED.manifest, updated_at = now()
				RETURNING id`,
				in.Name, in.DisplayName, in.Type, mode, in.Description, in.BaseURL, in.Category, in.Tags, Version,
				manifests[i], in.Tier, in.PricingModel, in.PriceCents, currency).Scan(&id)
			if err != nil {
				return fmt.Errorf("demo: seed %s: %w", in.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO integration_versions (integration_id, version, manifest, changelog)
				VALUES ($1, $2, $3, 'First release') ON CONFLICT (integration_id, version) DO UPDATE SET manifest = EXCLUDED.manifest`,
				id, Version, manifests[i]); err != nil {
				return fmt.Errorf("demo: seed %s version: %w", in.Name, err)
			}
		}
		// The paid listings' developer has an enabled Express account, so their Checkout works
		// in make dev (stripe-mock takes any account id; a real Stripe needs a real onboarding).
		if _, err := tx.Exec(ctx, `INSERT INTO developer_accounts (developer_id, stripe_account_id, charges_enabled,
				payouts_enabled, details_submitted)
			VALUES ('demo-developer', $1, true, true, true)
			ON CONFLICT (developer_id) DO UPDATE SET charges_enabled = true, payouts_enabled = true,
				details_submitted = true, deauthorized_at = NULL, updated_at = now()`, DemoStripeAccount); err != nil {
			return fmt.Errorf("demo: seed the developer's Stripe account: %w", err)
		}
		return nil
	})
}

// DemoStripeAccount is the connected account Seed gives demo-developer.
const DemoStripeAccount = "acct_1DemoDeveloper"

func catalog(now func() time.Time) []Integration {
	return []Integration{
		{
			Name: "crypto-ticker", DisplayName: "Crypto Ticker", Type: "data_source", DeliveryMode: "pull",
			Description: "Live prices of bitcoin, ether and friends, refreshed every minute.",
			Category:    "finance", Tags: []string{"crypto", "prices"}, PricingModel: "free", Tier: "featured",
			Scopes: []string{"dashboard:write"},
			DataSource: &manifest.DataSource{RefreshIntervalSeconds: 60, Streams: []manifest.Stream{
				{Name: QuotesStream, Description: quotesDescription}}},
			Transform: QuotesTransform,
			handler:   pullSource(now),
		},
		{
			Name: "league-scores", DisplayName: "League Scores", Type: "data_source", DeliveryMode: "push",
			Description: "Scores pushed the moment a goal is scored in your fantasy league.",
			Category:    "sports", Tags: []string{"fantasy", "scores"},
			PricingModel: "subscription", PriceCents: 299, Currency: "usd", Interval: "month",
			Tier: "verified", Scopes: []string{"fantasy:read", "dashboard:write"},
			DataSource: &manifest.DataSource{Streams: []manifest.Stream{
				{Name: "scores", Description: "The score of each match of your league, as it changes.",
					Key: []string{"match_id"}, Schema: scoreSchema}}},
			handler: base("League Scores", nil),
		},
		{
			Name: "world-clock", DisplayName: "World Clock", Type: "widget",
			Description: "The time in the cities you care about, as a dashboard widget.",
			Category:    "productivity", Tags: []string{"time"}, PricingModel: "free", Tier: "unverified",
			Scopes: []string{"dashboard:read"}, Widget: clockWidget,
			handler: widget(now),
		},
		{
			Name: "portfolio-coach", DisplayName: "Portfolio Coach", Type: "app",
			Description: "A full-stack app that reads your dashboard and suggests rebalancing.",
			Category:    "finance", Tags: []string{"investing", "prices"},
			PricingModel: "one_time", PriceCents: 1499, Currency: "usd",
			Tier: "verified", Scopes: []string{"profile:read", "dashboard:read"},
			App:     &manifest.App{Lifecycle: manifest.LifecycleHTTP},
			handler: base("Portfolio Coach", nil),
		},
	}
}

// base serves what every integration serves: health and the pages its manifest links to (Start
// adds the lifecycle callbacks).
func base(title string, extra func(mux *http.ServeMux)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	icon := []byte(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#2b6cb0"/><text x="32" y="42" font-size="28" text-anchor="middle" fill="#fff">%s</text></svg>`, title[:1]))
	screenshot := []byte(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 400"><rect width="640" height="400" fill="#edf2f7"/><text x="320" y="210" font-size="32" text-anchor="middle">%s</text></svg>`, title))
	svg := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/svg+xml")
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("GET /icon.svg", svg(icon))
	mux.HandleFunc("GET /screenshots/1.svg", svg(screenshot))
	page := func(text string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<!doctype html><title>%s</title><p>%s</p>", title, text)
		}
	}
	mux.HandleFunc("GET /support", page("A demonstration integration of MyScrollr Connect: there is no one to ask."))
	mux.HandleFunc("GET /privacy", page("A demonstration integration of MyScrollr Connect: it keeps nothing."))
	if extra != nil {
		extra(mux)
	}
	return mux
}

// scoreSchema is the push source's "scores" stream, declared in its manifest (push sources
// have no GET /schema): one record per match, keyed by match_id.
var scoreSchema = json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
"required":["match_id","home","away","home_score","away_score"],"additionalProperties":false,
"properties":{"match_id":{"type":"string","minLength":1,"maxLength":64},"home":{"type":"string"},"away":{"type":"string"},
"home_score":{"type":"integer","minimum":0},"away_score":{"type":"integer","minimum":0},"minute":{"type":"integer","minimum":0,"maximum":130}}}`)

// quotesDescription describes crypto-ticker's stream in its manifest and its GET /schema.
const quotesDescription = "The latest quote of each coin as exchanges publish it (price a decimal string); " +
	"the quotes transform normalizes it to integer cents."

// quoteSchema is the stream's records as the source sends them: the input of the quotes
// transform (wasmhost/examples/quotes), held to the transform's own rules so a record the
// schema accepts is one the transform accepts.
var quoteSchema = map[string]any{
	"$schema":  "https://json-schema.org/draft/2020-12/schema",
	"type":     "object",
	"required": []string{"symbol", "price", "currency", "ts"},
	"properties": map[string]any{
		"symbol":   map[string]any{"type": "string", "pattern": "^[A-Za-z0-9.-]{1,12}$"},
		"price":    map[string]any{"type": "string", "pattern": `^[0-9]{1,12}(\.[0-9]{1,2})?$`},
		"currency": map[string]any{"type": "string", "pattern": "^[A-Za-z]{3}$"},
		"ts":       map[string]any{"type": "integer", "minimum": 0, "maximum": 100_000_000_000},
		"volume":   map[string]any{"type": "integer", "minimum": 0},
	},
	"additionalProperties": false,
}

// pullSchema is the pull source's GET /schema (schemas/json/pull-schema.json): one stream of
// quotes keyed by symbol, polled every minute.
var pullSchema = map[string]any{
	"refresh_interval_seconds": 60,
	"streams": []any{map[string]any{
		"name":        QuotesStream,
		"description": quotesDescription,
		"key":         []string{"symbol"},
		"schema":      quoteSchema,
	}},
}

// coins are the symbols crypto-ticker quotes, lower-case as many exchanges write them (the
// transform upper-cases them).
var coins = []string{"btc", "eth", "sol"}

// pullSource serves GET /schema and GET /data as schemas/json/pull-schema.json and
// pull-data.json say. Both carry an ETag (a hash of the body) and a Last-Modified, and answer
// 304 to a matching conditional request (http.ServeContent); the prices move once a minute, so
// the data's validators change each minute and the schema's never.
func pullSource(now func() time.Time) http.Handler {
	schemaBody, _ := json.Marshal(pullSchema)
	started := now().UTC().Truncate(time.Second)
	return base("Crypto Ticker", func(mux *http.ServeMux) {
		mux.HandleFunc("GET /schema", func(w http.ResponseWriter, r *http.Request) {
			serveJSON(w, r, schemaBody, started)
		})
		mux.HandleFunc("GET /data", func(w http.ResponseWriter, r *http.Request) {
			t := now().UTC().Truncate(time.Minute)
			var records []map[string]any
			for i, sym := range coins {
				cents := price(i, t)
				records = append(records, map[string]any{"stream": QuotesStream, "data": map[string]any{
					"symbol": sym, "price": fmt.Sprintf("%d.%02d", cents/100, cents%100), "currency": "usd",
					"ts": t.Unix(), "volume": volume(i, t)}})
			}
			body, _ := json.Marshal(map[string]any{"records": records})
			serveJSON(w, r, body, t)
		})
	})
}

// serveJSON serves body with an ETag and a Last-Modified, answering conditional requests.
func serveJSON(w http.ResponseWriter, r *http.Request, body []byte, modified time.Time) {
	sum := sha256.Sum256(body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	w.Header().Set("Content-Type", "application/json")
	http.ServeContent(w, r, "", modified, bytes.NewReader(body))
}

// price is a deterministic walk around a base price per symbol, one step per minute.
func price(symbol int, t time.Time) int64 {
	basePrices := []float64{6_500_000, 350_000, 15_000}
	step := float64(t.Unix() / 60)
	return int64(basePrices[symbol] * (1 + 0.02*math.Sin(step/7+float64(symbol))))
}

// volume is the coins traded in the minute, a deterministic walk like the price.
func volume(symbol int, t time.Time) int64 {
	baseVolumes := []float64{1_200, 9_500, 48_000}
	step := float64(t.Unix() / 60)
	return int64(baseVolumes[symbol] * (1 + 0.5*math.Sin(step/3+float64(symbol))))
}

// clockWidget is the widget block of World Clock's manifest; its GET /manifest restates it.
var clockWidget = &manifest.Widget{
	Sizes:   []manifest.Size{{W: 2, H: 1}, {W: 2, H: 2}},
	MinSize: &manifest.Size{W: 1, H: 1},
	MaxSize: &manifest.Size{W: 4, H: 2},
	Config: []manifest.ConfigOption{
		{Key: "city", Label: "City", Type: "select", Required: true, Default: "UTC",
			Options: []string{"UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"}},
		{Key: "seconds", Label: "Show seconds", Type: "boolean", Default: false},
	},
}

// clockElement is the custom element the bundle defines.
const clockElement = "world-clock-widget"

// clockBundle is the widget's JavaScript module: a custom element showing the time in the
// city its attributes name (the widget's config options).
const clockBundle = `// World Clock, a MyScrollr Connect demo widget: <world-clock-widget city="Europe/Paris" seconds>.
class WorldClock extends HTMLElement {
  static observedAttributes = ["city", "seconds"];
  connectedCallback() { this.render(); this.timer = setInterval(() => this.render(), 1000); }
  disconnectedCallback() { clearInterval(this.timer); }
  attributeChangedCallback() { this.render(); }
  render() {
    const city = this.getAttribute("city") || "UTC";
    const options = { timeZone: city, hour: "2-digit", minute: "2-digit" };
    if (this.hasAttribute("seconds")) options.second = "2-digit";
    this.textContent = city + " " + new Intl.DateTimeFormat(undefined, options).format(new Date());
  }
}
customElements.define("` + clockElement + `", WorldClock);
`

// widget serves GET /manifest (schemas/json/widget-manifest.json, with the bundle's
// Subresource Integrity hash) and GET /bundle (the module, as text/javascript).
func widget(now func() time.Time) http.Handler {
	sum := sha512.Sum384([]byte(clockBundle))
	doc, _ := json.Marshal(map[string]any{
		"name": "world-clock", "version": Version, "element": clockElement,
		"integrity": "sha384-" + base64.StdEncoding.EncodeToString(sum[:]),
		"sizes":     clockWidget.Sizes, "min_size": clockWidget.MinSize, "max_size": clockWidget.MaxSize,
		"config": clockWidget.Config,
	})
	started := now().UTC().Truncate(time.Second)
	return base("World Clock", func(mux *http.ServeMux) {
		mux.HandleFunc("GET /manifest", func(w http.ResponseWriter, r *http.Request) {
			serveJSON(w, r, doc, started)
		})
		mux.HandleFunc("GET /bundle", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Header().Set("Cache-Control", "public, max-age=300")
			http.ServeContent(w, r, "", started, bytes.NewReader([]byte(clockBundle)))
		})
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
