package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type bundle struct {
	srv  *httptest.Server
	pool *pgxpool.Pool
}

func setupCatalog(t *testing.T) bundle {
	t.Helper()
	pool := pgtest.Pool(t)
	srv := httptest.NewServer(catalogHandler(t, pool))
	t.Cleanup(srv.Close)
	return bundle{srv: srv, pool: pool}
}

// catalogHandler is the catalog as it is served: its routes behind the runtime's handler
// stack (request ids, problem+json for unknown routes and methods, panic recovery).
func catalogHandler(tb testing.TB, pool *pgxpool.Pool) http.Handler {
	tb.Helper()
	h, err := runtime.NewHandler(runtime.Function{Name: "catalog", HTTP: Routes(&Store{pool: pool}, nil, nil)},
		runtime.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

type seed struct {
	name, display, typ, mode, category, pricing, tier, desc string
	price, installs                                         int64
	rating                                                  float64
	tags                                                    []string
	published                                               bool
}

func (b bundle) insert(t testing.TB, s seed) {
	t.Helper()
	var mode any
	if s.typ == "" {
		s.typ = "widget"
	}
	if s.typ == "data_source" {
		mode = s.mode
		if s.mode == "" {
			mode = "pull"
		}
	}
	if s.category == "" {
		s.category = "other"
	}
	if s.pricing == "" {
		s.pricing = "free"
	}
	if s.tier == "" {
		s.tier = "unverified"
	}
	if s.tags == nil {
		s.tags = []string{}
	}
	if s.display == "" {
		s.display = s.name
	}
	_, err := b.pool.Exec(context.Background(), `INSERT INTO integrations
		(developer_id, name, display_name, type, delivery_mode, description, base_url, category, tags,
		 pricing_model, price_cents, verification_tier, install_count, rating_avg, rating_count, is_published, published_at)
		VALUES ('dev_1', $1, $2, $3, $4, $5, 'https://example.test', $6, $7, $8, $9, $10, $11, $12,
		        CASE WHEN $12::numeric > 0 THEN 3 ELSE 0 END, $13, CASE WHEN $13 THEN now() END)`,
		s.name, s.display, s.typ, mode, s.desc, s.category, s.tags, s.pricing, s.price, s.tier, s.installs, s.rating, s.published)
	if err != nil {
		t.Fatalf("insert %s: %v", s.name, err)
	}
}

func (b bundle) get(t *testing.T, path string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

func (b bundle) do(t *testing.T, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

func (b bundle) list(t *testing.T, query string) Page {
	t.Helper()
	code, body, _ := b.get(t, "/v1/integrations?"+query)
	if code != http.StatusOK {
		t.Fatalf("GET ?%s = %d %s", query, code, body)
	}
	var p Page
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func names(p Page) string {
	var n []string
	for _, l := range p.Items {
		n = append(n, l.Name)
	}
	return strings.Join(n, ",")
}

func TestListOnlyPublishedSortedByPopularity(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", typ: "data_source", installs: 50, published: true, price: 0})
	b.insert(t, seed{name: "weather-widget", installs: 90, published: true})
	b.insert(t, seed{name: "draft-app", typ: "app", installs: 1000, published: false})
	p := b.list(t, "")
	if got := names(p); got != "weather-widget,crypto-ticker" {
		t.Fatalf("items = %s; want published only, most installed first", got)
	}
	if p.NextCursor != "" {
		t.Fatalf("next_cursor = %q on the only page", p.NextCursor)
	}
	l := p.Items[1]
	if l.Type != "data_source" || l.DeliveryMode == nil || *l.DeliveryMode != "pull" || l.Pricing.Currency != "usd" ||
		l.Health.Status != "unknown" || l.Health.Uptime24h != nil || l.Health.Uptime7d != nil || l.Health.Uptime30d != nil {
		t.Fatalf("listing = %+v", l)
	}
	// What the health probe writes is listed: the status and the three uptime windows.
	if _, err := b.pool.Exec(context.Background(), `UPDATE integrations SET health_status = 'degraded',
		uptime_24h = 99.5, uptime_7d = 98.25, uptime_30d = 97 WHERE name = 'crypto-ticker'`); err != nil {
		t.Fatal(err)
	}
	h := b.list(t, "").Items[1].Health
	if h.Status != "degraded" || h.Uptime24h == nil || *h.Uptime24h != 99.5 || h.Uptime7d == nil || *h.Uptime7d != 98.25 ||
		h.Uptime30d == nil || *h.Uptime30d != 97 {
		t.Fatalf("health = %+v", h)
	}
}

func TestFiltersAndSearch(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", display: "Crypto Ticker", typ: "data_source", mode: "push", category: "finance",
		desc: "Live prices of bitcoin and ether", tags: []string{"crypto", "prices"}, published: true, installs: 3})
	b.insert(t, seed{name: "stock-board", display: "Stock Board", category: "finance", pricing: "subscription", price: 499,
		tier: "verified", desc: "Stock quotes on your dashboard", tags: []string{"prices"}, published: true, installs: 2, rating: 2})
	b.insert(t, seed{name: "fantasy-scores", display: "Fantasy Scores", typ: "app", category: "sports",
		desc: "Your fantasy football league", published: true, installs: 1, rating: 4.5})
	cases := map[string]string{
		"type=widget":                  "stock-board",
		"category=finance":             "crypto-ticker,stock-board",
		"tag=prices":                   "crypto-ticker,stock-board",
		"tag=prices&tag=crypto":        "crypto-ticker",
		"pricing=paid":                 "stock-board",
		"pricing=free":                 "crypto-ticker,fantasy-scores",
		"tier=verified":                "stock-board",
		"delivery_mode=push":           "crypto-ticker",
		"q=bitcoin":                    "crypto-ticker",
		"q=stock+quotes":               "stock-board",
		"q=football":                   "fantasy-scores",
		"sort=name":                    "crypto-ticker,fantasy-scores,stock-board",
		"sort=rating":                  "fantasy-scores,stock-board,crypto-ticker",
		"q=nothing-matches-this-query": "",
	}
	for query, want := range cases {
		if got := names(b.list(t, query)); got != want {
			t.Errorf("?%s = %q, want %q", query, got, want)
		}
	}
}

// Keyset paging visits every listing exactly once, for every sort, even with ties.
func TestPagingVisitsEveryListingOnce(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	const n = 23
	for i := range n {
		b.insert(t, seed{name: fmt.Sprintf("widget-%02d", i), display: fmt.Sprintf("Widget %02d", i%5),
			installs: int64(i % 4), rating: float64(1 + i%3), published: true, desc: "shared words"})
	}
	for _, sort := range []string{"popular", "rating", "newest", "name", "relevance"} {
		seen := map[string]int{}
		cursor := ""
		pages := 0
		for {
			q := url.Values{"sort": {sort}, "limit": {"5"}}
			if sort == "relevance" {
				q.Set("q", "shared")
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			p := b.list(t, q.Encode())
			pages++
			for _, l := range p.Items {
				seen[l.Name]++
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
			if pages > 10 {
				t.Fatalf("sort=%s: paging does not end", sort)
			}
		}
		if len(seen) != n {
			t.Errorf("sort=%s: saw %d distinct listings, want %d", sort, len(seen), n)
		}
		for name, c := range seen {
			if c != 1 {
				t.Errorf("sort=%s: %s seen %d times", sort, name, c)
			}
		}
	}
}

func TestBadQueriesNameTheField(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	cases := map[string]string{
		"limit=0":                             "limit",
		"limit=abc":                           "limit",
		"limit=101":                           "limit",
		"type=plugin":                         "type",
		"sort=random":                         "sort",
		"sort=relevance":                      "sort",
		"cursor=%%%":                          "query",
		"cursor=!!!":                          "cursor",
		"cursor=eyJzIjoibmFtZSJ9":             "cursor",
		"colour=blue":                         "colour",
		"category=Not+A+Slug":                 "category",
		"q=" + strings.Repeat("a", 201):       "q",
		"tag=a&tag=b&tag=c&tag=d&tag=e&tag=f": "tag",
		"type=app&type=widget":                "type",
	}
	for query, field := range cases {
		code, body, h := b.get(t, "/v1/integrations?"+query)
		if code != http.StatusBadRequest {
			t.Errorf("?%s = %d, want 400", query, code)
			continue
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Errorf("?%s content-type = %q", query, ct)
		}
		var p httpx.Problem
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("?%s: body %s: %v", query, body, err)
		}
		found := false
		for _, fe := range p.Errors {
			if fe.Field == field && fe.Reason != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("?%s: problem %s does not name field %q", query, body, field)
		}
	}
	// A cursor made for one sort is refused for another.
	for i := range 3 {
		b.insert(t, seed{name: fmt.Sprintf("w-%d", i), published: true})
	}
	p := b.list(t, "sort=name&limit=1")
	code, body, _ := b.get(t, "/v1/integrations?sort=popular&cursor="+p.NextCursor)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "cursor") {
		t.Fatalf("cursor across sorts = %d %s", code, body)
	}
}

func TestGetListing(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", display: "Crypto Ticker", published: true})
	b.insert(t, seed{name: "hidden", published: false})
	code, body, _ := b.get(t, "/v1/integrations/crypto-ticker")
	var l Listing
	if code != http.StatusOK || json.Unmarshal(body, &l) != nil || l.DisplayName != "Crypto Ticker" {
		t.Fatalf("get = %d %s", code, body)
	}
	for path, want := range map[string]int{
		"/v1/integrations/hidden":     http.StatusNotFound,
		"/v1/integrations/missing":    http.StatusNotFound,
		"/v1/integrations/Bad%20Name": http.StatusBadRequest,
	} {
		if code, body, _ := b.get(t, path); code != want {
			t.Errorf("GET %s = %d %s, want %d", path, code, body, want)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "q=a&sort=relevance", "limit=5&cursor=eyJzIjoibmFtZSIsImsiOiJhIiwiaWQiOiJ4In0",
		"tag=a&tag=b", "type=app&pricing=paid&tier=featured&delivery_mode=push", "%zz", "limit=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseQuery(v)
		if err != nil {
			var p *httpx.Problem
			if !errors.As(err, &p) || p.Status != 400 || len(p.Errors) == 0 {
				t.Fatalf("error %v is not a 400 problem naming a field", err)
			}
			return
		}
		if q.limit < 1 || q.limit > maxLimit || sorts[q.sort].expr == "" {
			t.Fatalf("accepted invalid query %+v", q)
		}
	})
}
