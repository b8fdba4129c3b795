// Package demo runs the demonstration integrations that `make dev` registers in the catalog,
// so a newcomer sees a marketplace with listings that answer: a pull data source, a push data
// source, a dashboard widget and a full-stack app. Each is a small HTTP server on 127.0.0.1
// speaking the integration side of the platform contract: GET /health, the lifecycle callbacks
// POST /lifecycle/install and /lifecycle/uninstall, and per type GET /schema and GET /data
// (pull source) or GET /widget (widget).
//
// The data is made up: prices follow a deterministic random walk from a seed, so runs are
// reproducible.
package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Integration is one running demo integration and its catalog listing.
type Integration struct {
	Name, DisplayName, Type, DeliveryMode, Description, Category string
	Tags                                                         []string
	PricingModel                                                 string
	PriceCents                                                   int64
	Tier                                                         string
	Scopes                                                       []string
	BaseURL                                                      string

	handler http.Handler
}

// Servers are the running demo integrations.
type Servers struct {
	Integrations []Integration
	servers      []*http.Server
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
		srv := &http.Server{Handler: in.handler,
			// Slow clients are cut off as at the functions (shared/runtime/timeouts.go).
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, IdleTimeout: 90 * time.Second}
		s.servers = append(s.servers, srv)
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

// Seed registers (or refreshes) the demo listings as published, with their current URLs.
func (s *Servers) Seed(ctx context.Context, conn *pgx.Conn) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, in := range s.Integrations {
			var mode any
			if in.DeliveryMode != "" {
				mode = in.DeliveryMode
			}
			manifest, _ := json.Marshal(map[string]any{
				"name": in.Name, "display_name": in.DisplayName, "version": "1.0.0", "type": in.Type,
				"delivery_mode": mode, "base_url": in.BaseURL, "scopes": in.Scopes,
			})
			var id string
			err := tx.QueryRow(ctx, `INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode,
					description, base_url, category, tags, current_version, manifest, verification_tier,
					pricing_model, price_cents, is_published, published_at)
				VALUES ('demo-developer', $1, $2, $3, $4, $5, $6, $7, $8, '1.0.0', $9, $10, $11, $12, true, now())
				ON CONFLICT (name) DO UPDATE SET base_url = EXCLUDED.base_url, manifest = EXCLUDED.manifest, updated_at = now()
				RETURNING id`,
				in.Name, in.DisplayName, in.Type, mode, in.Description, in.BaseURL, in.Category, in.Tags,
				manifest, in.Tier, in.PricingModel, in.PriceCents).Scan(&id)
			if err != nil {
				return fmt.Errorf("demo: seed %s: %w", in.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO integration_versions (integration_id, version, manifest, changelog)
				VALUES ($1, '1.0.0', $2, 'First release') ON CONFLICT (integration_id, version) DO UPDATE SET manifest = EXCLUDED.manifest`,
				id, manifest); err != nil {
				return fmt.Errorf("demo: seed %s version: %w", in.Name, err)
			}
		}
		return nil
	})
}

func catalog(now func() time.Time) []Integration {
	return []Integration{
		{
			Name: "crypto-ticker", DisplayName: "Crypto Ticker", Type: "data_source", DeliveryMode: "pull",
			Description: "Live prices of bitcoin, ether and friends, refreshed every minute.",
			Category:    "finance", Tags: []string{"crypto", "prices"}, PricingModel: "free", Tier: "official",
			Scopes: []string{"dashboard:write"}, handler: pullSource(now),
		},
		{
			Name: "league-scores", DisplayName: "League Scores", Type: "data_source", DeliveryMode: "push",
			Description: "Scores pushed the moment a goal is scored in your fantasy league.",
			Category:    "sports", Tags: []string{"fantasy", "scores"}, PricingModel: "subscription", PriceCents: 299,
			Tier: "verified", Scopes: []string{"fantasy:read", "dashboard:write"}, handler: base(nil),
		},
		{
			Name: "world-clock", DisplayName: "World Clock", Type: "widget",
			Description: "The time in the cities you care about, as a dashboard widget.",
			Category:    "productivity", Tags: []string{"time"}, PricingModel: "free", Tier: "unverified",
			Scopes: []string{"dashboard:read"}, handler: widget(now),
		},
		{
			Name: "portfolio-coach", DisplayName: "Portfolio Coach", Type: "app",
			Description: "A full-stack app that reads your dashboard and suggests rebalancing.",
			Category:    "finance", Tags: []string{"investing", "prices"}, PricingModel: "one_time", PriceCents: 1499,
			Tier: "verified", Scopes: []string{"profile:read", "dashboard:read"}, handler: base(nil),
		},
	}
}

// base serves what every integration serves: health and lifecycle callbacks.
func base(extra func(mux *http.ServeMux)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	lifecycle := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("POST /lifecycle/install", lifecycle)
	mux.HandleFunc("POST /lifecycle/uninstall", lifecycle)
	if extra != nil {
		extra(mux)
	}
	return mux
}

var recordSchema = map[string]any{
	"$schema":  "https://json-schema.org/draft/2020-12/schema",
	"type":     "object",
	"required": []string{"symbol", "price_cents", "currency", "at"},
	"properties": map[string]any{
		"symbol":      map[string]any{"type": "string"},
		"price_cents": map[string]any{"type": "integer", "minimum": 0},
		"currency":    map[string]any{"type": "string", "pattern": "^[a-z]{3}$"},
		"at":          map[string]any{"type": "string", "format": "date-time"},
	},
	"additionalProperties": false,
}

// pullSchema is the pull source's GET /schema (schemas/json/pull-schema.json): one stream of
// prices keyed by symbol, polled every minute.
var pullSchema = map[string]any{
	"refresh_interval_seconds": 60,
	"streams": []any{map[string]any{
		"name":        "prices",
		"description": "The latest price of each coin, in US cents.",
		"key":         []string{"symbol"},
		"schema":      recordSchema,
	}},
}

// pullSource serves GET /schema and GET /data as schemas/json/pull-schema.json and
// pull-data.json say. Both carry an ETag (a hash of the body) and a Last-Modified, and answer
// 304 to a matching conditional request (http.ServeContent); the prices move once a minute, so
// the data's validators change each minute and the schema's never.
func pullSource(now func() time.Time) http.Handler {
	schemaBody, _ := json.Marshal(pullSchema)
	started := now().UTC().Truncate(time.Second)
	return base(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /schema", func(w http.ResponseWriter, r *http.Request) {
			serveJSON(w, r, schemaBody, started)
		})
		mux.HandleFunc("GET /data", func(w http.ResponseWriter, r *http.Request) {
			t := now().UTC().Truncate(time.Minute)
			var records []map[string]any
			for i, sym := range []string{"BTC", "ETH", "SOL"} {
				records = append(records, map[string]any{"stream": "prices", "data": map[string]any{
					"symbol": sym, "price_cents": price(i, t), "currency": "usd", "at": t.Format(time.RFC3339)}})
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

func widget(now func() time.Time) http.Handler {
	return base(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /widget", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<!doctype html><title>World Clock</title><p>UTC %s</p>", now().UTC().Format("15:04"))
		})
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
