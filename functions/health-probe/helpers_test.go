package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/ssrf"
)

func TestMain(m *testing.M) {
	if os.Getenv(serversEnv) != "" {
		os.Exit(serveChild()) // the benchmark's child process: only its servers
	}
	os.Exit(pgtest.Main(m))
}

var t0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// clock is an injected clock the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time   { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time)  { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }
func newClock(t time.Time) *clock { return &clock{now: t} }
func loopback() []ssrf.Destination {
	return []ssrf.Destination{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}}
}
func loopback8() []ssrf.Destination {
	return []ssrf.Destination{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}
}

// testConfig is a configuration with short timeouts for tests against local servers.
func testConfig(url string) Config {
	return Config{
		DatabaseURL:    url,
		Allow:          loopback(),
		Timeout:        time.Second,
		DegradedAfter:  150 * time.Millisecond,
		Concurrency:    64,
		PerHost:        4,
		CheckRetention: DefaultCheckRetention,
	}
}

type bundle struct {
	owner *pgxpool.Pool // seeds and reads as the owner
	fn    *pgxpool.Pool // the function's own role
	svc   *Service
	clock *clock
	cfg   Config
}

// setup builds a database, a pool as the function's role and a Service on it.
func setupProbe(t testing.TB, adjust func(*Config)) bundle {
	t.Helper()
	ownerURL, fnURL := pgtest.FunctionURL(t, Name)
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
	cfg := testConfig(fnURL)
	if adjust != nil {
		adjust(&cfg)
	}
	c := newClock(t0)
	svc, err := New(fn, cfg, discard(), c.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return bundle{owner: owner, fn: fn, svc: svc, clock: c, cfg: cfg}
}

func (b bundle) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := b.owner.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// integration seeds a published integration and returns its id.
func (b bundle) integration(t testing.TB, name, baseURL string) string {
	t.Helper()
	var id string
	err := b.owner.QueryRow(context.Background(), `INSERT INTO integrations
		(developer_id, name, display_name, type, base_url, is_published, published_at)
		VALUES ('dev_1', $1, $1, 'widget', $2, true, now()) RETURNING id::text`, name, baseURL).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (b bundle) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.owner.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// sweep runs a sweep at at and fails the test on error.
func (b bundle) sweep(t testing.TB, at time.Time) Summary {
	t.Helper()
	b.clock.Set(at)
	s, err := b.svc.Sweep(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
