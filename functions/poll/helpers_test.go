package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/ssrf"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// clock is an injected clock the test moves.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// env is a database (owner pool for seeding and reading, the service on poll's own role) and
// a clock.
type env struct {
	owner *pgxpool.Pool
	svc   *Service
	clock *clock
	cfg   Config
}

func testConfig() Config {
	return Config{
		Allow:              []ssrf.Destination{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}},
		LogtoEndpoint:      "http://127.0.0.1:1",
		APIResource:        "https://api.myscrollr.local",
		Timeout:            5 * time.Second,
		Concurrency:        8,
		PerHost:            2,
		Batch:              100,
		MaxBodyBytes:       64 << 10,
		MinInterval:        60 * time.Second,
		RejectionRetention: 168 * time.Hour,
		RejectionKeep:      1000,
		TickBudget:         80 * time.Second,
	}
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	ownerURL, fnURL := pgtest.FunctionURL(t, "poll")
	ctx := context.Background()
	owner, err := db.Open(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	fn, err := db.Open(ctx, fnURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fn.Close)
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	c := newClock(t0)
	svc, err := New(cfg, fn, discard(), c.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{owner: owner, svc: svc, clock: c, cfg: cfg}
}

// seed registers a published pull source at base and returns its id.
func (e *env) seed(t *testing.T, name, developer, base string) string {
	t.Helper()
	var id string
	err := e.owner.QueryRow(context.Background(), `INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode, base_url, is_published, published_at)
		VALUES ($1, $2, $2, 'data_source', 'pull', $3, true, now()) RETURNING id::text`, developer, name, base).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) tick(t *testing.T) TickResult {
	t.Helper()
	res, err := e.svc.Tick(context.Background())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	return res
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.owner.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

type sourceState struct {
	Failures  int
	LastError *string
	NextPoll  time.Time
	Success   *time.Time
	DataETag  *string
}

func (e *env) state(t *testing.T, id string) sourceState {
	t.Helper()
	var s sourceState
	if err := e.owner.QueryRow(context.Background(), `SELECT consecutive_failures, last_error, next_poll_at, last_success_at, data_etag
		FROM poll_sources WHERE integration_id = $1`, id).Scan(&s.Failures, &s.LastError, &s.NextPoll, &s.Success, &s.DataETag); err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeSource is a pull source on loopback whose answers the test sets. It records the
// conditional headers of each request.
type fakeSource struct {
	mu         sync.Mutex
	schema     []byte
	data       []byte
	dataStatus int    // 0: 200
	etag       string // "" : no ETag on /data
	requests   map[string]int
	conditions []string // If-None-Match of each /data request
	srv        *httptest.Server
}

func newSource(t *testing.T, schema any, records ...map[string]any) *fakeSource {
	t.Helper()
	f := &fakeSource{requests: map[string]int{}}
	f.setSchema(schema)
	f.setRecords(records...)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSource) setSchema(v any) {
	b, _ := json.Marshal(v)
	f.mu.Lock()
	f.schema = b
	f.mu.Unlock()
}

func (f *fakeSource) setRecords(recs ...map[string]any) {
	if recs == nil {
		recs = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"records": recs})
	f.setData(b)
}

func (f *fakeSource) setData(b []byte) {
	f.mu.Lock()
	f.data = b
	f.mu.Unlock()
}

func (f *fakeSource) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[path]
}

func (f *fakeSource) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[r.URL.Path]++
	switch r.URL.Path {
	case "/schema":
		tag := fmt.Sprintf(`"%x"`, sha256.Sum256(f.schema))
		w.Header().Set("ETag", tag)
		if r.Header.Get("If-None-Match") == tag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.schema)
	case "/data":
		f.conditions = append(f.conditions, r.Header.Get("If-None-Match"))
		if f.dataStatus != 0 {
			w.WriteHeader(f.dataStatus)
			return
		}
		if f.etag != "" {
			w.Header().Set("ETag", f.etag)
			if r.Header.Get("If-None-Match") == f.etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.data)
	default:
		http.NotFound(w, r)
	}
}

// pricesSchema is a GET /schema with one stream, prices, keyed by symbol.
func pricesSchema(refresh int) map[string]any {
	return map[string]any{
		"refresh_interval_seconds": refresh,
		"streams": []any{map[string]any{
			"name": "prices",
			"key":  []string{"symbol"},
			"schema": map[string]any{
				"type":     "object",
				"required": []string{"symbol", "price_cents"},
				"properties": map[string]any{
					"symbol":      map[string]any{"type": "string"},
					"price_cents": map[string]any{"type": "integer", "minimum": 0},
				},
			},
		}},
	}
}

func price(sym string, cents any) map[string]any {
	return map[string]any{"stream": "prices", "data": map[string]any{"symbol": sym, "price_cents": cents}}
}
