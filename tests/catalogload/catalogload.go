// Package catalogload measures the catalog function as it runs in production: the catalog
// binary (built with go build from functions/catalog) as its own process, over a throwaway
// PostgreSQL cluster (shared/pgcluster, migrated with shared/db) seeded with Listings published
// listings and Reviews reviews (generate_series, one statement each).
//
// Two requests are measured, as issue 7's Measure section asks:
//
//   - search: GET /v1/integrations?q=dashboard&type=widget&category=finance. Every seeded
//     description holds "dashboard", so the text matches every listing and the two filters
//     leave about 1/21 of them: the costly case (sort relevance).
//   - rating-page-2: GET /v1/integrations?sort=rating&type=widget&cursor=<page 1's>.
//
// For each, three runs: paced at Rate requests/s for Duration with an open-loop generator
// (requests start on schedule whether or not earlier ones have finished, and latency counts
// from the scheduled start, so a slow server cannot hide its queue), the maximum rate
// (Concurrency workers in a closed loop for Duration), and the same SQL run directly through
// pgx with a pool of the catalog's size, paced and at maximum, side by side. Then overload:
// open loop at OverloadRate for OverloadDuration, counting how many requests were shed (503
// with Retry-After) and how fast every answer came.
//
// The direct SQL is the catalog's SQL for those two requests, kept in step by hand
// (searchSQL, ratingSQL below; functions/catalog/catalog.go builds it).
//
// cmd/catalogload prints the report as a table and writes it as JSON.
package catalogload

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/infra/local/stack"
	"github.com/myscrollr/connect/shared/db/migrate"
	"github.com/myscrollr/connect/shared/pgcluster"
)

// Options configure Run.
type Options struct {
	// Listings (default 100,000) and Reviews (default 1,000,000, spread evenly) are seeded.
	Listings, Reviews int
	// Rate is the paced rate in requests/s (default 500); Duration the length of each paced and
	// maximum-rate run (default 10s).
	Rate     int
	Duration time.Duration
	// Concurrency is the number of closed-loop workers of the maximum-rate runs (default 16).
	Concurrency int
	// OverloadRate (default 4000 requests/s; negative skips it) and OverloadDuration (default
	// 3s) are the overload run.
	OverloadRate     int
	OverloadDuration time.Duration
	// MaxConns is the catalog's DB_MAX_CONNS and the direct pool's size (default 8).
	MaxConns int
	// Explain adds the query plans of both scenarios' SQL (EXPLAIN ANALYZE, custom and
	// generic plan) to the report.
	Explain bool
	// WorkspaceDir is the go.work root the catalog is built in; default: found upwards.
	WorkspaceDir string
	// CatalogBinary, when set, is used instead of building functions/catalog.
	CatalogBinary string
	// Timeout bounds the whole run; default 15 minutes.
	Timeout time.Duration
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Listings, 100_000)
	def(&o.Reviews, 1_000_000)
	def(&o.Rate, 500)
	def(&o.Concurrency, 16)
	def(&o.MaxConns, 8)
	if o.OverloadRate == 0 {
		o.OverloadRate = 4000
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.OverloadDuration == 0 {
		o.OverloadDuration = 3 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	switch {
	case o.Listings < 100 || o.Listings > 10_000_000:
		return o, fmt.Errorf("catalogload: Listings (-listings): %d is not between 100 and 10000000", o.Listings)
	case o.Reviews < 0 || o.Reviews > 100_000_000:
		return o, fmt.Errorf("catalogload: Reviews (-reviews): %d is not between 0 and 100000000", o.Reviews)
	case o.Rate < 1 || o.Rate > 100_000:
		return o, fmt.Errorf("catalogload: Rate (-rate): %d is not between 1 and 100000", o.Rate)
	case o.Concurrency < 1 || o.Concurrency > 1024:
		return o, fmt.Errorf("catalogload: Concurrency (-c): %d is not between 1 and 1024", o.Concurrency)
	case o.OverloadRate > 100_000:
		return o, fmt.Errorf("catalogload: OverloadRate (-overload): %d is above 100000", o.OverloadRate)
	case o.MaxConns < 1 || o.MaxConns > 100:
		return o, fmt.Errorf("catalogload: MaxConns (-conns): %d is not between 1 and 100", o.MaxConns)
	case o.Duration <= 0 || o.OverloadDuration <= 0:
		return o, errors.New("catalogload: Duration and OverloadDuration must be positive")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Stats are the outcome of one run. Durations are in milliseconds.
type Stats struct {
	Target    string  `json:"target"` // "catalog" (HTTP) or "sql" (pgx directly)
	Mode      string  `json:"mode"`   // "paced", "max" or "overload"
	Requests  int     `json:"requests"`
	OK        int     `json:"ok"`
	Shed      int     `json:"shed"`   // 503 with Retry-After
	Errors    int     `json:"errors"` // anything else, timeouts included
	PerSecond float64 `json:"per_second"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
	MaxMS     float64 `json:"max_ms"`
	// ShedP99MS is the p99 latency of the 503 answers alone (overload).
	ShedP99MS float64 `json:"shed_p99_ms,omitempty"`
	// CPUPerRequestMS is the catalog process's CPU per request (HTTP runs).
	CPUPerRequestMS float64 `json:"cpu_per_request_ms,omitempty"`
}

// Scenario is one measured request.
type Scenario struct {
	Name  string  `json:"name"`
	Path  string  `json:"path"`
	Items int     `json:"items"` // items in one answer
	Runs  []Stats `json:"runs"`
	// Ratio is the catalog's maximum rate over the direct SQL's.
	Ratio float64 `json:"max_rate_ratio"`
}

// Report is the outcome of Run.
type Report struct {
	Listings  int        `json:"listings"`
	Reviews   int        `json:"reviews"`
	Rate      int        `json:"rate"`
	MaxConns  int        `json:"max_conns"`
	SeedMS    float64    `json:"seed_ms"`
	Scenarios []Scenario `json:"scenarios"`
	Overload  *Stats     `json:"overload,omitempty"`
	// Plans are the query plans by scenario and plan kind (Options.Explain).
	Plans map[string]string `json:"plans,omitempty"`
}

// Run seeds, starts the catalog, measures and returns the report. Every process and
// directory it made is gone when it returns.
func Run(ctx context.Context, o Options) (rep Report, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return rep, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	log := o.Logger
	rep = Report{Listings: o.Listings, Reviews: o.Reviews, Rate: o.Rate, MaxConns: o.MaxConns}

	tmp, err := os.MkdirTemp("", "catalogload-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	bin := o.CatalogBinary
	if bin == "" {
		ws := o.WorkspaceDir
		if ws == "" {
			if ws, err = stack.FindRoot(); err != nil {
				return rep, fmt.Errorf("catalogload: %w; set WorkspaceDir (-workspace)", err)
			}
		}
		log.Info("building the catalog", "workspace", ws)
		bin = filepath.Join(tmp, "catalog")
		// Built as the Knative image is (-tags nolambda) and as make dev and the other tests build
		// the functions, so the build cache serves them all.
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "nolambda", "-o", bin, "./functions/catalog")
		cmd.Dir = ws
		if b, err := cmd.CombinedOutput(); err != nil {
			return rep, fmt.Errorf("catalogload: go build ./functions/catalog: %w\n%s", err, b)
		}
	}
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Logger: log, Settings: []string{"shared_buffers=256MB", "max_connections=200"}})
	if err != nil {
		return rep, err
	}
	defer pg.Stop()
	dbURL := pg.URL("postgres")
	if err := migrate.Up(ctx, dbURL); err != nil {
		return rep, fmt.Errorf("catalogload: migrate: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return rep, err
	}
	cfg.MaxConns = int32(o.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer pool.Close()
	start := time.Now()
	log.Info("seeding", "listings", o.Listings, "reviews", o.Reviews)
	if err := Seed(ctx, pool, o.Listings, o.Reviews); err != nil {
		return rep, err
	}
	rep.SeedMS = ms(time.Since(start))

	cat, err := startCatalog(ctx, bin, tmp, dbURL, o.MaxConns)
	if err != nil {
		return rep, err
	}
	defer cat.stop()
	base := cat.url

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: time.Minute}}

	// Page 1 of the rating scenario gives page 2's cursor; the direct SQL gets its values.
	first, err := getPage(ctx, client, base+"/v1/integrations?sort=rating&type=widget")
	if err != nil {
		return rep, err
	}
	if first.NextCursor == "" {
		return rep, errors.New("catalogload: sort=rating&type=widget has one page only")
	}
	var cur struct {
		K  string `json:"k"`
		ID string `json:"id"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(first.NextCursor)
	if err != nil || json.Unmarshal(raw, &cur) != nil {
		return rep, fmt.Errorf("catalogload: cursor %q is not the catalog's", first.NextCursor)
	}
	scenarios := []struct {
		name, path, sql string
		args            pgx.NamedArgs
		mode            pgx.QueryExecMode // as the catalog runs it
	}{
		{"search: q + type + category", "/v1/integrations?q=dashboard&type=widget&category=finance", searchSQL,
			pgx.NamedArgs{"q": "dashboard", "type": "widget", "category": "finance", "max_ranked": 200, "limit": 21}, pgx.QueryExecModeExec},
		{"rating, page 2, type", "/v1/integrations?sort=rating&type=widget&cursor=" + url.QueryEscape(first.NextCursor), ratingSQL,
			pgx.NamedArgs{"type": "widget", "after_key": cur.K, "after_id": cur.ID, "limit": 21}, pgx.QueryExecModeCacheStatement},
	}
	for _, sc := range scenarios {
		p, err := getPage(ctx, client, base+sc.path)
		if err != nil {
			return rep, err
		}
		n, err := sqlOnce(ctx, pool, sc.sql, sc.mode, sc.args)
		if err != nil {
			return rep, fmt.Errorf("catalogload: direct SQL of %s: %w", sc.name, err)
		}
		if n != len(p.Items)+boolInt(p.NextCursor != "") {
			return rep, fmt.Errorf("catalogload: %s: the direct SQL gave %d rows, the catalog %d items (next %v): not the same query",
				sc.name, n, len(p.Items), p.NextCursor != "")
		}
		if o.Explain {
			if rep.Plans == nil {
				rep.Plans = map[string]string{}
			}
			for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
				plan, err := explain(ctx, pool, mode, sc.sql, sc.args)
				if err != nil {
					return rep, fmt.Errorf("catalogload: explain %s: %w", sc.name, err)
				}
				rep.Plans[sc.name+" ("+mode+")"] = plan
			}
		}
		s := Scenario{Name: sc.name, Path: sc.path, Items: len(p.Items)}
		httpCall := func(ctx context.Context) (int, error) { return httpGet(ctx, client, base+sc.path) }
		sqlCall := func(ctx context.Context) (int, error) {
			if _, err := sqlOnce(ctx, pool, sc.sql, sc.mode, sc.args); err != nil {
				return 0, err
			}
			return http.StatusOK, nil
		}
		log.Info("measuring", "scenario", sc.name)
		cpu0 := cat.cpu()
		st := paced(ctx, httpCall, o.Rate, o.Duration)
		st.Target, st.CPUPerRequestMS = "catalog", ms(cat.cpu()-cpu0)/float64(max(st.Requests, 1))
		s.Runs = append(s.Runs, st)
		st = paced(ctx, sqlCall, o.Rate, o.Duration)
		st.Target = "sql"
		s.Runs = append(s.Runs, st)
		cpu0 = cat.cpu()
		hmax := closed(ctx, httpCall, o.Concurrency, o.Duration)
		hmax.Target, hmax.CPUPerRequestMS = "catalog", ms(cat.cpu()-cpu0)/float64(max(hmax.Requests, 1))
		smax := closed(ctx, sqlCall, o.Concurrency, o.Duration)
		smax.Target = "sql"
		s.Runs = append(s.Runs, hmax, smax)
		if smax.PerSecond > 0 {
			s.Ratio = hmax.PerSecond / smax.PerSecond
		}
		rep.Scenarios = append(rep.Scenarios, s)
	}
	if o.OverloadRate > 0 {
		log.Info("overload", "rate", o.OverloadRate)
		path := base + scenarios[0].path
		st := paced(ctx, func(ctx context.Context) (int, error) { return httpGet(ctx, client, path) }, o.OverloadRate, o.OverloadDuration)
		st.Target, st.Mode = "catalog", "overload"
		rep.Overload = &st
	}
	return rep, ctx.Err()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The catalog's SQL for the two scenarios (functions/catalog/catalog.go, Store.list).
const (
	listingColumns = `i.id::text, i.name, i.display_name, i.type, i.delivery_mode, i.description, i.category, i.tags,
	i.verification_tier, i.pricing_model, i.price_cents, i.currency, i.health_status, i.uptime_24h::float8, i.uptime_7d::float8, i.uptime_30d::float8,
	i.rating_avg::float8, i.rating_count, i.install_count, i.current_version, i.published_at`
	tsQuery   = "(websearch_to_tsquery('simple', @q) || websearch_to_tsquery('english', @q))"
	searchSQL = `SELECT ` + listingColumns + `, i.rank::text FROM (
			SELECT i.*, ts_rank(i.search, ` + tsQuery + `) AS rank FROM (
				SELECT i.* FROM integrations i WHERE i.is_published AND i.search @@ ` + tsQuery + ` AND i.type = @type AND i.category = @category
				ORDER BY i.install_count DESC, i.id DESC LIMIT @max_ranked) i) i
			WHERE true ORDER BY i.rank DESC, i.id DESC LIMIT @limit`
	ratingSQL = `SELECT ` + listingColumns + `, (i.rating_avg)::text FROM integrations i WHERE i.is_published AND i.type = @type
		AND (i.rating_avg, i.id) < (@after_key::numeric, @after_id::uuid) ORDER BY i.rating_avg DESC, i.id DESC LIMIT @limit`
)

// sqlOnce runs sql and reads every value of every row, as the catalog does.
func sqlOnce(ctx context.Context, pool *pgxpool.Pool, sql string, mode pgx.QueryExecMode, args pgx.NamedArgs) (int, error) {
	rows, err := pool.Query(ctx, sql, mode, args)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			rows.Close()
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// explain is EXPLAIN (ANALYZE, BUFFERS) of sql under plan_cache_mode mode, run as a prepared
// statement as pgx runs it.
func explain(ctx context.Context, pool *pgxpool.Pool, mode, sql string, args pgx.NamedArgs) (string, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		return "", err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "RESET plan_cache_mode") }()
	rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// Seed fills an empty, migrated database with listings published listings (words that make
// searches match many of them, every type, category, pricing and tier) and about reviews
// reviews spread evenly, with their rating aggregates.
func Seed(ctx context.Context, pool *pgxpool.Pool, listings, reviews int) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	stmts := []string{
		`SET synchronous_commit = off`,
		`SET maintenance_work_mem = '256MB'`,
		`INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode, description, base_url, category, tags,
			pricing_model, price_cents, verification_tier, install_count, is_published, published_at, health_status, uptime_24h, uptime_7d, uptime_30d)
		SELECT 'dev-' || (g % 1000), 'load-' || g, initcap(w.a) || ' ' || initcap(w.b) || ' ' || g,
			(ARRAY['data_source','widget','app'])[1 + g % 3],
			CASE WHEN g % 3 = 0 THEN (ARRAY['pull','push'])[1 + (g / 3) % 2] END,
			'A ' || w.a || ' ' || w.c || ' integration for your dashboard with live ' || w.b || ' updates and ' || w.d || ' alerts',
			'https://example.test',
			(ARRAY['finance','sports','news','productivity','social','developer-tools','other'])[1 + (g / 3) % 7],
			ARRAY[w.a, w.c],
			CASE g % 10 WHEN 0 THEN 'subscription' WHEN 1 THEN 'one_time' ELSE 'free' END,
			CASE WHEN g % 10 IN (0, 1) THEN 199 + g % 1000 ELSE 0 END,
			CASE WHEN g % 50 = 0 THEN 'featured' WHEN g % 10 < 4 THEN 'verified' ELSE 'unverified' END,
			(g * 7919) % 100000, true, now() - g * interval '1 minute',
			CASE WHEN g % 5 = 0 THEN 'unknown' ELSE 'healthy' END,
			CASE WHEN g % 5 <> 0 THEN 90 + (g % 1000) / 100.0 END,
			CASE WHEN g % 5 <> 0 THEN 90 + (g % 997) / 100.0 END,
			CASE WHEN g % 5 <> 0 THEN 90 + (g % 991) / 100.0 END
		FROM generate_series(1, $1::int) g
		CROSS JOIN LATERAL (SELECT
			(ARRAY['weather','crypto','stock','news','sports','fantasy','calendar','clock','music','fitness','travel','recipes','email','tasks','notes','chat','photos','maps','traffic','energy'])[1 + (g * 7) % 20] AS a,
			(ARRAY['prices','scores','headlines','forecasts','quotes','results','events','metrics','charts','feeds'])[1 + (g * 13) % 10] AS b,
			(ARRAY['tracker','board','ticker','digest','widget','monitor','planner','reader','viewer','helper'])[1 + (g * 17) % 10] AS c,
			(ARRAY['instant','daily','smart','custom','push'])[1 + (g * 3) % 5] AS d) w`,
		`INSERT INTO integration_reviews (user_id, integration_id, rating, review_text, created_at)
		SELECT 'user-' || r, i.id, 1 + (abs(hashtext(i.name || r)) % 5), 'Review ' || r, now() - r * interval '1 hour'
		FROM integrations i CROSS JOIN generate_series(1, $2::int) r`,
		`UPDATE integrations i SET rating_avg = a.avg, rating_count = a.n
		FROM (SELECT integration_id, round(avg(rating), 2) AS avg, count(*) AS n FROM integration_reviews GROUP BY integration_id) a
		WHERE i.id = a.integration_id`,
		`VACUUM ANALYZE integrations`,
		`VACUUM ANALYZE integration_reviews`,
	}
	perListing := reviews / listings
	for _, s := range stmts {
		var args []any
		switch {
		case strings.Contains(s, "$2"):
			args = []any{perListing}
			s = strings.Replace(s, "$2", "$1", 1)
		case strings.Contains(s, "$1"):
			args = []any{listings}
		}
		if _, err := conn.Exec(ctx, s, args...); err != nil {
			return fmt.Errorf("catalogload: seed: %w (%s)", err, firstLine(s))
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// page is the part of a list answer the tool reads.
type page struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor string            `json:"next_cursor"`
}

func getPage(ctx context.Context, c *http.Client, u string) (page, error) {
	var p page
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return p, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return p, err
	}
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("catalogload: GET %s = %d %s", u, resp.StatusCode, body)
	}
	return p, json.Unmarshal(body, &p)
}

// errShedWithoutRetryAfter marks a 503 that does not say when to retry.
var errShedWithoutRetryAfter = errors.New("503 without Retry-After")

func httpGet(ctx context.Context, c *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		return resp.StatusCode, errShedWithoutRetryAfter
	}
	return resp.StatusCode, err
}

type sample struct {
	lat  time.Duration
	code int
	err  error
}

// maxInFlight bounds the open-loop generator's outstanding requests; a request it cannot
// start counts as an error (the server is far behind).
const maxInFlight = 20000

// paced starts call at rate per second for d, each on schedule (open loop), and measures each
// from its scheduled start.
func paced(ctx context.Context, call func(context.Context) (int, error), rate int, d time.Duration) Stats {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	samples := make([]sample, n)
	var wg sync.WaitGroup
	var inflight atomic.Int64
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait) // pacing the generator, not synchronisation
		}
		if ctx.Err() != nil {
			samples = samples[:i]
			break
		}
		if inflight.Load() >= maxInFlight {
			samples[i] = sample{err: errors.New("generator: too many requests in flight")}
			continue
		}
		inflight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inflight.Add(-1)
			code, err := call(ctx)
			samples[i] = sample{lat: time.Since(at), code: code, err: err}
		}()
	}
	wg.Wait()
	st := summarize(samples, time.Since(start))
	st.Mode = "paced"
	return st
}

// closed runs call in workers loops for d and reports the rate achieved.
func closed(ctx context.Context, call func(context.Context) (int, error), workers int, d time.Duration) Stats {
	var mu sync.Mutex
	var all []sample
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var mine []sample
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				code, err := call(ctx)
				mine = append(mine, sample{lat: time.Since(t), code: code, err: err})
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	st := summarize(all, time.Since(start))
	st.Mode = "max"
	return st
}

func summarize(samples []sample, elapsed time.Duration) Stats {
	st := Stats{Requests: len(samples)}
	var lats, shedLats []time.Duration
	for _, s := range samples {
		switch {
		case s.err == nil && s.code == http.StatusOK:
			st.OK++
		case s.err == nil && s.code == http.StatusServiceUnavailable:
			st.Shed++
			shedLats = append(shedLats, s.lat)
		default:
			st.Errors++
		}
		if s.lat > 0 {
			lats = append(lats, s.lat)
		}
	}
	st.PerSecond = float64(st.OK) / elapsed.Seconds()
	st.P50MS, st.P99MS, st.MaxMS = pct(lats, 0.50), pct(lats, 0.99), pct(lats, 1)
	if len(shedLats) > 0 {
		st.ShedP99MS = pct(shedLats, 0.99)
	}
	return st
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return ms(d[max(i, 0)])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// catalogProc is the running catalog binary.
type catalogProc struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	done    chan struct{}
}

func startCatalog(ctx context.Context, bin, dir, dbURL string, maxConns int) (*catalogProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logPath := filepath.Join(dir, "catalog.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"PORT="+strconv.Itoa(port),
		"LISTEN_HOST=127.0.0.1",
		"DB_MAX_CONNS="+strconv.Itoa(maxConns),
		"DRAIN_TIMEOUT=0s",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("catalogload: start catalog: %w", err)
	}
	p := &catalogProc{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("catalogload: catalog exited during start-up: %s", p.tail())
		case <-ctx.Done():
			p.stop()
			return nil, fmt.Errorf("catalogload: catalog not ready: %w: %s", ctx.Err(), p.tail())
		case <-time.After(20 * time.Millisecond): // polling an external process
		}
	}
}

// cpu is the catalog's user and system CPU time so far.
func (p *catalogProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func (p *catalogProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *catalogProc) tail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// PrintTable writes rep as a table.
func PrintTable(w io.Writer, rep Report) {
	fmt.Fprintf(w, "catalog load: %d listings, %d reviews, DB_MAX_CONNS %d, paced at %d req/s (seeded in %.1f s)\n\n",
		rep.Listings, rep.Reviews, rep.MaxConns, rep.Rate, rep.SeedMS/1000)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tmode\trequests\tok\tshed\terrors\treq/s\tp50 ms\tp99 ms\tmax ms\tcpu ms/req\t")
	row := func(name string, s Stats) {
		cpu := "-"
		if s.CPUPerRequestMS > 0 {
			cpu = fmt.Sprintf("%.3f", s.CPUPerRequestMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.1f\t%s\t\n", name, s.Target, s.Mode, s.Requests, s.OK, s.Shed, s.Errors,
			s.PerSecond, s.P50MS, s.P99MS, s.MaxMS, cpu)
	}
	for _, sc := range rep.Scenarios {
		for _, r := range sc.Runs {
			row(sc.Name, r)
		}
	}
	if rep.Overload != nil {
		row("overload: search", *rep.Overload)
	}
	tw.Flush()
	for _, sc := range rep.Scenarios {
		fmt.Fprintf(w, "%s: catalog at %.0f%% of the direct SQL's maximum rate\n", sc.Name, 100*sc.Ratio)
	}
	if o := rep.Overload; o != nil {
		fmt.Fprintf(w, "overload: %d of %d shed (503 + Retry-After), p99 of a 503 %.2f ms, %d errors\n", o.Shed, o.Requests, o.ShedP99MS, o.Errors)
	}
}
