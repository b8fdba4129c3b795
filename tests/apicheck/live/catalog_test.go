// Package live checks real answers of the functions against schemas/openapi/connect.yaml: it
// builds the catalog function, runs it against a real PostgreSQL (shared/pgtest) with a few
// seeded listings and reviews, and sends every kind of request through apicheck's Transport.
//
// The registry needs the identity provider (user tokens and the Logto Management API), so its
// answers are checked by the end-to-end tests around make dev (tests/e2e), which wrap their
// client with the same Transport; the catalog needs only its database, so it is checked here
// on every test run.
package live

import (
	"context"
	"encoding/json"

	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/pgtest"
)

func seed(t *testing.T, ownerURL string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	stmts := []string{
		`INSERT INTO integrations (developer_id, name, display_name, type, delivery_mode, description, base_url, category, tags,
			pricing_model, price_cents, verification_tier, install_count, is_published, published_at, current_version,
			manifest, uptime_24h, health_status)
		 VALUES ('dev_1', 'crypto-ticker', 'Crypto Ticker', 'data_source', 'pull', 'Live crypto prices', 'https://example.test',
			'finance', '{crypto,prices}', 'free', 0, 'featured', 40, true, now(), '1.2.0',
			'{"icon":"https://example.test/icon.png","screenshots":["https://example.test/1.png"]}', 99.5, 'healthy')`,
		`INSERT INTO integrations (developer_id, name, display_name, type, description, base_url, category,
			pricing_model, price_cents, verification_tier, install_count, is_published, published_at,
			deprecated_at, deprecation_message, deprecation_sunset)
		 VALUES ('dev_2', 'world-clock', 'World Clock', 'widget', 'Clocks of the world', 'https://example.test',
			'productivity', 'subscription', 299, 'verified', 3, true, now() - interval '1 day',
			now(), 'use world-clock-2', date '2030-01-01')`,
		`INSERT INTO integrations (developer_id, name, display_name, type, base_url, is_published)
		 VALUES ('dev_3', 'draft-app', 'Draft', 'app', 'https://example.test', false)`,
		`INSERT INTO user_integrations (user_id, integration_id) SELECT 'user_' || n, id FROM integrations, generate_series(1, 3) n
		 WHERE name = 'crypto-ticker'`,
		`INSERT INTO integration_reviews (user_id, integration_id, rating, review_text)
		 SELECT 'user_' || n, id, n + 2, 'review ' || n FROM integrations, generate_series(1, 3) n WHERE name = 'crypto-ticker'`,
		`UPDATE integrations SET rating_avg = 4, rating_count = 3 WHERE name = 'crypto-ticker'`,
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("seed: %v\n%s", err, s)
		}
	}
}

// Every kind of answer of the catalog (pages under every sort and filter, a listing, reviews,
// 304, 400, 404, 503 for review writes without an identity provider) matches the description.
func TestCatalogAnswersMatchTheDescription(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary; not in -short")
	}
	checker := newChecker(t)
	owner, fn := pgtest.FunctionURL(t, "catalog")
	seed(t, owner)
	base := startFunction(t, "catalog", "DATABASE_URL="+fn, "LOGTO_ENDPOINT=", "LOGTO_API_RESOURCE=")
	client := &http.Client{Transport: checker.Transport(t, nil), Timeout: 30 * time.Second}

	send := func(method, path string, header map[string]string, body string) (int, http.Header, []byte) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}
	expect := func(method, path string, header map[string]string, body string, want int) (http.Header, []byte) {
		t.Helper()
		got, h, b := send(method, path, header, body)
		if got != want {
			t.Errorf("%s %s: %d, want %d: %s", method, path, got, want, b)
		}
		return h, b
	}

	for _, q := range []string{"", "?q=crypto", "?q=crypto+tickr", "?type=widget", "?category=finance", "?tag=crypto&tag=prices",
		"?pricing=paid", "?pricing=free", "?tier=verified", "?delivery_mode=pull", "?min_rating=3.5",
		"?sort=rating", "?sort=newest", "?sort=name", "?sort=uptime", "?q=clock&sort=relevance"} {
		expect("GET", "/v1/integrations"+q, nil, "", http.StatusOK)
	}
	// Paging: every page of every sort.
	for _, sort := range []string{"popular", "rating", "newest", "name", "uptime"} {
		path := "/v1/integrations?limit=1&sort=" + sort
		for pages := 0; path != ""; pages++ {
			if pages > 3 {
				t.Fatalf("sort=%s: more pages than listings", sort)
			}
			_, b := expect("GET", path, nil, "", http.StatusOK)
			var page struct {
				NextCursor string `json:"next_cursor"`
			}
			if err := json.Unmarshal(b, &page); err != nil {
				t.Fatal(err)
			}
			path = ""
			if page.NextCursor != "" {
				path = "/v1/integrations?limit=1&sort=" + sort + "&cursor=" + url.QueryEscape(page.NextCursor)
			}
		}
	}
	for _, name := range []string{"crypto-ticker", "world-clock"} {
		h, _ := expect("GET", "/v1/integrations/"+name, nil, "", http.StatusOK)
		expect("GET", "/v1/integrations/"+name, map[string]string{"If-None-Match": h.Get("ETag")}, "", http.StatusNotModified)
	}
	_, b := expect("GET", "/v1/integrations/crypto-ticker/reviews?limit=2", nil, "", http.StatusOK)
	var reviews struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(b, &reviews); err != nil || reviews.NextCursor == "" {
		t.Fatalf("reviews page: %v, next_cursor %q", err, reviews.NextCursor)
	}
	expect("GET", "/v1/integrations/crypto-ticker/reviews?limit=2&cursor="+url.QueryEscape(reviews.NextCursor), nil, "", http.StatusOK)
	h, _ := expect("GET", "/v1/integrations/world-clock/reviews", nil, "", http.StatusOK)
	expect("GET", "/v1/integrations/world-clock/reviews", map[string]string{"If-None-Match": h.Get("ETag")}, "", http.StatusNotModified)

	// Refusals: each a documented status with a problem body.
	for _, q := range []string{"?limit=0", "?limit=101", "?sort=bogus", "?bogus=1", "?sort=relevance", "?min_rating=9",
		"?cursor=nope", "?tag=A", "?type=x&type=y"} {
		expect("GET", "/v1/integrations"+q, nil, "", http.StatusBadRequest)
	}
	expect("GET", "/v1/integrations/draft-app", nil, "", http.StatusNotFound)
	expect("GET", "/v1/integrations/nothing-here", nil, "", http.StatusNotFound)
	expect("GET", "/v1/integrations/Not_A_Name", nil, "", http.StatusBadRequest)
	expect("GET", "/v1/integrations/draft-app/reviews", nil, "", http.StatusNotFound)
	expect("GET", "/v1/integrations/crypto-ticker/reviews?limit=0", nil, "", http.StatusBadRequest)
	expect("GET", "/v1/integrations/crypto-ticker/reviews?cursor=x", nil, "", http.StatusBadRequest)
	// Without LOGTO_ENDPOINT the review writes answer 503 (the public GETs keep working).
	expect("PUT", "/v1/integrations/crypto-ticker/reviews/mine", map[string]string{"Content-Type": "application/json",
		"Authorization": "Bearer x"}, `{"rating":5}`, http.StatusServiceUnavailable)
	expect("DELETE", "/v1/integrations/crypto-ticker/reviews/mine", map[string]string{"Authorization": "Bearer x"}, "", http.StatusServiceUnavailable)
}
