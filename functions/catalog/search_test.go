package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func (b bundle) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Every filter and every sort, each against listings chosen so that a wrong answer differs.
func TestEveryFilterAndSort(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "alpha", display: "Alpha Feed", typ: "data_source", mode: "pull", category: "news",
		tags: []string{"rss"}, pricing: "one_time", price: 300, tier: "verified", installs: 40, rating: 3.5, published: true})
	b.insert(t, seed{name: "bravo", display: "Bravo Board", typ: "widget", category: "finance",
		tags: []string{"prices", "stocks"}, pricing: "subscription", price: 200, tier: "featured", installs: 30, rating: 4.8, published: true})
	b.insert(t, seed{name: "charlie", display: "Charlie Chat", typ: "app", category: "social",
		tags: []string{"chat"}, installs: 20, rating: 1.5, published: true})
	b.insert(t, seed{name: "delta", display: "Delta Push", typ: "data_source", mode: "push", category: "finance",
		tags: []string{"prices"}, installs: 10, published: true})
	// published_at: alpha oldest, delta newest.
	for i, n := range []string{"alpha", "bravo", "charlie", "delta"} {
		b.exec(t, `UPDATE integrations SET published_at = '2026-01-01'::timestamptz + $2 * interval '1 day' WHERE name = $1`, n, i)
	}
	// Uptime: charlie has none (last).
	b.exec(t, `UPDATE integrations SET uptime_30d = CASE name WHEN 'alpha' THEN 99.9 WHEN 'bravo' THEN 97 WHEN 'delta' THEN 99.95 END`)
	cases := map[string]string{
		"":                                       "alpha,bravo,charlie,delta",
		"type=data_source":                       "alpha,delta",
		"type=widget":                            "bravo",
		"type=app":                               "charlie",
		"category=finance":                       "bravo,delta",
		"category=sports":                        "",
		"tag=prices":                             "bravo,delta",
		"tag=prices&tag=stocks":                  "bravo",
		"pricing=free":                           "charlie,delta",
		"pricing=paid":                           "alpha,bravo",
		"pricing=one_time":                       "alpha",
		"pricing=subscription":                   "bravo",
		"tier=unverified":                        "charlie,delta",
		"tier=verified":                          "alpha",
		"tier=featured":                          "bravo",
		"delivery_mode=pull":                     "alpha",
		"delivery_mode=push":                     "delta",
		"min_rating=1":                           "alpha,bravo,charlie",
		"min_rating=3.5":                         "alpha,bravo",
		"min_rating=4.75":                        "bravo",
		"min_rating=5":                           "",
		"type=data_source&category=finance":      "delta",
		"category=finance&pricing=paid":          "bravo",
		"sort=popular":                           "alpha,bravo,charlie,delta",
		"sort=rating":                            "bravo,alpha,charlie,delta",
		"sort=newest":                            "delta,charlie,bravo,alpha",
		"sort=name":                              "alpha,bravo,charlie,delta",
		"sort=uptime":                            "delta,alpha,bravo,charlie",
		"sort=uptime&category=finance":           "delta,bravo",
		"sort=rating&min_rating=2":               "bravo,alpha",
		"sort=newest&type=data_source":           "delta,alpha",
		"q=board":                                "bravo",
		"q=prices&sort=popular":                  "bravo,delta",
		"q=push&sort=relevance":                  "delta",
		"q=prices&type=data_source":              "delta",
		"q=chat&sort=rating&min_rating=1":        "charlie",
		"q=finance&category=finance&type=widget": "bravo",
	}
	for query, want := range cases {
		// Without sort, popular: installs alpha 40 > bravo 30 > charlie 20 > delta 10.
		if got := names(b.list(t, query)); got != want {
			t.Errorf("?%s = %q, want %q", query, got, want)
		}
	}
}

// The names weigh more than the category and tags, which weigh more than the description.
func TestSearchWeights(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "in-desc", display: "Plain", desc: "shows the weather outside", installs: 3, published: true})
	b.insert(t, seed{name: "in-tag", display: "Other", tags: []string{"weather"}, installs: 2, published: true})
	b.insert(t, seed{name: "in-name", display: "Weather Now", installs: 1, published: true})
	if got := names(b.list(t, "q=weather")); got != "in-name,in-tag,in-desc" {
		t.Fatalf("q=weather ranked %q, want name, then tag, then description", got)
	}
	if got := names(b.list(t, "q=weather&sort=popular")); got != "in-desc,in-tag,in-name" {
		t.Fatalf("q=weather&sort=popular = %q", got)
	}
}

// A one-letter typo still finds the listing, through the trigram fallback; the fallback's
// cursor pages on in the same mode.
func TestTypoSearch(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", display: "Crypto Ticker", desc: "Live prices", published: true})
	b.insert(t, seed{name: "world-clock", display: "World Clock", desc: "Time zones", published: true})
	b.insert(t, seed{name: "weather-now", display: "Weather Now", desc: "Forecasts", published: true})
	b.insert(t, seed{name: "hidden-ticker", display: "Crypto Ticker Hidden", published: false})
	for q, want := range map[string]string{
		"crypto tickr":  "crypto-ticker",
		"cryptp ticker": "crypto-ticker",
		"wrold clock":   "world-clock",
		"world clokc":   "world-clock",
		"weathr":        "weather-now",
		"zzzzqqq":       "",
	} {
		got := names(b.list(t, url.Values{"q": {q}}.Encode()))
		if got != want {
			t.Errorf("q=%q = %q, want %q", q, got, want)
		}
	}
	// Fuzzy results page by their cursor.
	for i := range 5 {
		b.insert(t, seed{name: fmt.Sprintf("crypto-ticker-%d", i), display: fmt.Sprintf("Crypto Ticker %d", i), published: true})
	}
	seen := map[string]int{}
	q := url.Values{"q": {"crypto tickr"}, "limit": {"2"}}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("fuzzy paging does not end")
		}
		p := b.list(t, q.Encode())
		for _, l := range p.Items {
			seen[l.Name]++
		}
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
	}
	if len(seen) != 6 {
		t.Errorf("fuzzy paging saw %v, want the 6 crypto tickers", seen)
	}
	for n, c := range seen {
		if c != 1 {
			t.Errorf("%s seen %d times", n, c)
		}
	}
}

// Keyset paging never repeats or skips a listing while listings are being added: every
// listing present before paging started is seen exactly once and no listing twice, for every
// sort, while a goroutine inserts listings concurrently and more are inserted between pages
// (landing before and after the cursor in each sort's order).
func TestPagingUnderConcurrentInserts(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	const n = 30
	before := map[string]bool{}
	for i := range n {
		name := fmt.Sprintf("orig-%02d", i)
		b.insert(t, seed{name: name, display: fmt.Sprintf("Listing %02d", i%7), installs: int64(i % 5),
			rating: float64(1 + i%4), desc: "common words", published: true})
		b.exec(t, `UPDATE integrations SET uptime_30d = CASE WHEN $2 % 3 = 0 THEN NULL ELSE 90 + $2 % 4 END WHERE name = $1`, name, i)
		before[name] = true
	}
	for _, sort := range []string{"popular", "rating", "newest", "name", "uptime", "relevance"} {
		// Only this sort's inserts match the search of sort=relevance, so its matches stay
		// under MaxRanked, the candidates it ranks (see MaxRanked).
		desc := "other words"
		if sort == "relevance" {
			desc = "common words"
		}
		ins := func(ctx context.Context, name string, i int) error {
			_, err := b.pool.Exec(ctx, `INSERT INTO integrations (developer_id, name, display_name, type, description, base_url,
				install_count, rating_avg, rating_count, uptime_30d, is_published, published_at)
				VALUES ('dev', $1, $2, 'widget', $6, 'https://example.test', $3, $4, 1, $5, true, now())`,
				name, fmt.Sprintf("Listing %02d", i%7), i%6, 1+i%5, []any{nil, 95}[i%2], desc)
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		errc := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60 && ctx.Err() == nil; i++ {
				if err := ins(ctx, fmt.Sprintf("bg-%s-%04d", sort, i), i); err != nil && ctx.Err() == nil {
					errc <- err
					return
				}
			}
		}()
		seen := map[string]int{}
		q := url.Values{"sort": {sort}, "limit": {"10"}}
		if sort == "relevance" {
			q.Set("q", "common")
		}
		for page := 0; ; page++ {
			if page > 400 {
				t.Fatalf("sort=%s: paging does not end", sort)
			}
			p := b.list(t, q.Encode())
			for _, l := range p.Items {
				seen[l.Name]++
			}
			if p.NextCursor == "" {
				break
			}
			q.Set("cursor", p.NextCursor)
			if err := ins(context.Background(), fmt.Sprintf("fg-%s-%03d", sort, page), page); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		wg.Wait()
		select {
		case err := <-errc:
			t.Fatalf("sort=%s: background insert: %v", sort, err)
		default:
		}
		for name, c := range seen {
			if c != 1 {
				t.Errorf("sort=%s: %s seen %d times", sort, name, c)
			}
		}
		for name := range before {
			if seen[name] != 1 {
				t.Errorf("sort=%s: %s seen %d times, want once", sort, name, seen[name])
			}
		}
	}
}

func TestListBadNewParameters(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	for query, field := range map[string]string{
		"min_rating=0":   "min_rating",
		"min_rating=5.5": "min_rating",
		"min_rating=abc": "min_rating",
		"min_rating=1e0": "min_rating",
		"min_rating=NaN": "min_rating",
		"tier=official":  "tier",
		"sort=uptime&cursor=" + forged("uptime", `"x"`): "cursor",
	} {
		code, body, h := b.get(t, "/v1/integrations?"+query)
		checkProblem(t, "?"+query, code, body, h, field)
	}
}

// The listing's page: badge, icon, screenshots, rating, installs, uptime and status, and the
// deprecation when there is one.
func TestDetail(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", display: "Crypto Ticker", tier: "featured", installs: 12, rating: 4.25, published: true})
	b.insert(t, seed{name: "plain", published: true})
	b.exec(t, `UPDATE integrations SET manifest = '{"icon":"https://cdn.test/i.png","screenshots":["https://cdn.test/1.png","https://cdn.test/2.png"]}',
		health_status = 'healthy', uptime_24h = 100, uptime_7d = 99.5, uptime_30d = 98.75,
		deprecated_at = '2026-05-01T00:00:00Z', deprecation_message = 'Use plain', deprecation_sunset = '2026-12-31',
		deprecation_replacement = 'plain' WHERE name = 'crypto-ticker'`)
	code, body, _ := b.get(t, "/v1/integrations/crypto-ticker")
	if code != http.StatusOK {
		t.Fatalf("GET = %d %s", code, body)
	}
	var d Detail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Badge == nil || *d.Badge != "featured" || d.Icon == nil || *d.Icon != "https://cdn.test/i.png" ||
		strings.Join(d.Screenshots, " ") != "https://cdn.test/1.png https://cdn.test/2.png" ||
		d.Rating.Average != 4.25 || d.Rating.Count != 3 || d.InstallCount != 12 || d.Health.Status != "healthy" ||
		d.Health.Uptime24h == nil || *d.Health.Uptime24h != 100 || *d.Health.Uptime7d != 99.5 || *d.Health.Uptime30d != 98.75 {
		t.Fatalf("detail = %s", body)
	}
	if dep := d.Deprecation; dep == nil || dep.Message != "Use plain" || dep.Sunset == nil || *dep.Sunset != "2026-12-31" ||
		dep.Replacement == nil || *dep.Replacement != "plain" || dep.DeprecatedAt.Year() != 2026 {
		t.Fatalf("deprecation = %s", body)
	}
	// Nothing optional set: nulls and an empty list, in the body as such.
	_, body, _ = b.get(t, "/v1/integrations/plain")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"badge": "null", "icon": "null", "screenshots": "[]", "deprecation": "null"} {
		if string(raw[k]) != want {
			t.Errorf("plain: %s = %s, want %s", k, raw[k], want)
		}
	}
}

// Public GETs carry an ETag and Cache-Control; If-None-Match with it gets 304 and no body, a
// change gets a new ETag.
func TestETag(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", published: true})
	for _, path := range []string{"/v1/integrations?sort=name", "/v1/integrations/crypto-ticker", "/v1/integrations/crypto-ticker/reviews"} {
		code, _, h := b.get(t, path)
		etag := h.Get("ETag")
		if code != http.StatusOK || !strings.HasPrefix(etag, `"`) || !strings.HasPrefix(h.Get("Cache-Control"), "public, max-age=") {
			t.Fatalf("%s: %d etag %q cache-control %q", path, code, etag, h.Get("Cache-Control"))
		}
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
			code, body, h2 := b.getWith(t, path, map[string]string{"If-None-Match": inm})
			if code != http.StatusNotModified || len(body) != 0 || h2.Get("ETag") != etag || h2.Get("Cache-Control") == "" {
				t.Errorf("%s If-None-Match %s = %d (%d bytes) etag %q", path, inm, code, len(body), h2.Get("ETag"))
			}
		}
		if code, _, _ := b.getWith(t, path, map[string]string{"If-None-Match": `"other"`}); code != http.StatusOK {
			t.Errorf("%s with a stale ETag = %d, want 200", path, code)
		}
		b.exec(t, `UPDATE integrations SET install_count = install_count + 1, rating_avg = 3, rating_count = rating_count + 1 WHERE name = 'crypto-ticker'`)
		code, _, h = b.getWith(t, path, map[string]string{"If-None-Match": etag})
		if code != http.StatusOK || h.Get("ETag") == etag {
			t.Errorf("%s after a change = %d with etag %q (was %q)", path, code, h.Get("ETag"), etag)
		}
	}
}

func (b bundle) getWith(t *testing.T, path string, headers map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return b.do(t, req)
}
