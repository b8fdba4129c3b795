package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/pgtest"
)

const someID = "0190f5f4-0000-7000-8000-000000000001"

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// forged is a cursor with the given sort and raw JSON key.
func forged(sort, key string) string {
	return b64(`{"s":"` + sort + `","k":` + key + `,"id":"` + someID + `"}`)
}

// nastyQueries are query strings that must be refused with 400 naming the parameter: NUL
// bytes and invalid UTF-8 (which PostgreSQL refuses in text), forged cursors of every kind,
// and query strings net/url cannot parse.
var nastyQueries = map[string]string{
	"q=%00":                                "q",
	"q=bit%00coin":                         "q",
	"q=%ff":                                "q",
	"q=caf%c3%28":                          "q",
	"q=%ed%a0%80":                          "q", // a UTF-16 surrogate encoded as UTF-8
	"type=%00":                             "type",
	"pricing=%fe":                          "pricing",
	"category=fin%00ance":                  "category",
	"tag=ok&tag=%00":                       "tag",
	"tag=%c0%80":                           "tag", // overlong NUL
	"sort=name%00":                         "sort",
	"limit=5%00":                           "limit",
	"delivery_mode=%ff%fe":                 "delivery_mode",
	"tier=%00":                             "tier",
	"cursor=%00":                           "cursor",
	"%00=1":                                `"\x00"`,
	"%ff=1":                                `"\xff"`,
	"=1":                                   `""`,
	"cursor=%ff":                           "cursor",
	"cursor=" + b64("junk"):                "cursor",
	"cursor=" + b64("null"):                "cursor",
	"cursor=" + b64("[]"):                  "cursor",
	"cursor=" + b64(`"x"`):                 "cursor",
	"cursor=" + b64(`{}`):                  "cursor",
	"cursor=YQ==":                          "cursor", // padded base64
	"cursor=" + b64("{\x00}"):              "cursor",
	"cursor=" + strings.Repeat("A", 2000):  "cursor",
	"cursor=" + forged("popular", `"abc"`): "cursor",
	"cursor=" + forged("popular", `"99999999999999999999999"`):           "cursor",
	"cursor=" + forged("popular", `"1e3"`):                               "cursor",
	"cursor=" + forged("popular", `"1\u0000"`):                           "cursor",
	"cursor=" + forged("popular", `12`):                                  "cursor",
	"cursor=" + forged("popular", `null`) + "&x=1":                       "x",
	"sort=rating&cursor=" + forged("rating", `"1e400"`):                  "cursor",
	"sort=rating&cursor=" + forged("rating", `"NaN"`):                    "cursor",
	"sort=rating&cursor=" + forged("rating", `"0x1p-2"`):                 "cursor",
	"sort=rating&cursor=" + forged("rating", `"1234567890123456789012"`): "cursor",
	"sort=newest&cursor=" + forged("newest", `"yesterday"`):              "cursor",
	"sort=newest&cursor=" + forged("newest", `"2026-13-45T99:00:00Z"`):   "cursor",
	"sort=newest&cursor=" + forged("newest", `"infinity"`):               "cursor",
	"sort=name&cursor=" + forged("name", `"a\u0000b"`):                   "cursor",
	"sort=name&cursor=" + forged("name", `["a"]`):                        "cursor",
	"q=x&cursor=" + forged("relevance", `"NaN"`):                         "cursor",
	"q=x&cursor=" + forged("relevance", `"Infinity"`):                    "cursor",
	"q=x&cursor=" + forged("relevance", `"1e99"`):                        "cursor",
	"q=x&cursor=" + forged("relevance", `"0x1p-2"`):                      "cursor",
	"cursor=" + b64(`{"s":"popular","k":"1","id":"not-a-uuid"}`):         "cursor",
	"cursor=" + b64(`{"s":"popular","k":"1","id":"{`+someID+`}"}`):       "cursor",
	"cursor=" + b64(`{"s":"popular","k":"1","id":"`+someID+`\u0000"}`):   "cursor",
	"cursor=" + b64(`{"s":"bogus","k":"1","id":"`+someID+`"}`):           "cursor",
	"cursor=" + b64(`{"s":1,"k":"1","id":"`+someID+`"}`):                 "cursor",
	"sort=name&cursor=" + forged("popular", `"1"`):                       "cursor",
	"cursor=%%%":                           "query",
	"q=%zz":                                "query",
	"q=a;sort=name":                        "query",
	strings.Repeat("q=a&", 10_000) + "q=a": "query", // 10,001 parameters: past net/url's limit
}

func TestNastyQueriesAre400NamingTheParameter(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "crypto-ticker", published: true})
	for query, field := range nastyQueries {
		code, body, h := b.get(t, "/v1/integrations?"+query)
		checkProblem(t, "?"+clip.Ellipsis(query, 80), code, body, h, field)
	}
}

// Forged names in the path are refused before any query.
func TestNastyNamesAre400(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	for _, path := range []string{"%00", "crypto%00ticker", "%ff", "caf%c3%28", "%c0%80", strings.Repeat("a", 100)} {
		code, body, h := b.get(t, "/v1/integrations/"+path)
		checkProblem(t, path, code, body, h, "name")
	}
}

// checkProblem fails unless the reply is a 400 problem+json naming field with a reason.
func checkProblem(t *testing.T, what string, code int, body []byte, h http.Header, field string) {
	t.Helper()
	if code != http.StatusBadRequest {
		t.Errorf("%s = %d %s, want 400", what, code, body)
		return
	}
	if ct, _, _ := mime.ParseMediaType(h.Get("Content-Type")); ct != "application/problem+json" {
		t.Errorf("%s: content-type %q", what, h.Get("Content-Type"))
	}
	var p httpx.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Errorf("%s: body %s: %v", what, body, err)
		return
	}
	for _, fe := range p.Errors {
		if fe.Field == field && fe.Reason != "" {
			return
		}
	}
	t.Errorf("%s: problem %s does not name %q", what, body, field)
}

// Thousands of unknown parameters get a bounded reply that still says what is wrong.
func TestManyUnknownParametersBoundedReply(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	q := url.Values{}
	for i := range 5000 {
		q.Set(fmt.Sprintf("p%d", i), "x")
	}
	code, body, h := b.get(t, "/v1/integrations?"+q.Encode())
	checkProblem(t, "5000 unknown", code, body, h, "query")
	if len(body) > 2000 {
		t.Fatalf("reply of %d bytes for 5000 unknown parameters", len(body))
	}
}

// Cursors made for the longest display names (100 characters that JSON escapes to 6 bytes
// each, or 4-byte emoji) and for every sort are accepted back.
func TestGenuineCursorsForExtremeListings(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	b.insert(t, seed{name: "emoji", display: strings.Repeat("😀", 100), published: true, desc: "words"})
	b.insert(t, seed{name: "separators", display: strings.Repeat("\u2028", 100), published: true, desc: "words"})
	b.insert(t, seed{name: "plain", display: "Plain", published: true, desc: "words", rating: 4.75, installs: 1 << 40})
	for _, sort := range []string{"popular", "rating", "newest", "name", "relevance"} {
		q := url.Values{"sort": {sort}, "limit": {"1"}}
		if sort == "relevance" {
			q.Set("q", "words")
		}
		seen := 0
		for range 5 {
			p := b.list(t, q.Encode())
			seen += len(p.Items)
			if p.NextCursor == "" {
				break
			}
			q.Set("cursor", p.NextCursor)
		}
		if seen != 3 {
			t.Errorf("sort=%s: paged through %d listings, want 3", sort, seen)
		}
	}
}

// Cursors made before keys of sort=newest were RFC 3339 held PostgreSQL's text output; they
// still page.
func TestLegacyNewestCursor(t *testing.T) {
	t.Parallel()
	b := setupCatalog(t)
	for i := range 3 {
		b.insert(t, seed{name: fmt.Sprintf("w-%d", i), published: true})
	}
	future := "2999-01-02 03:04:05.123456+00"
	p := b.list(t, "sort=newest&cursor="+forged("newest", `"`+future+`"`))
	if len(p.Items) != 3 {
		t.Fatalf("items after a legacy cursor in the future = %d, want 3", len(p.Items))
	}
	p = b.list(t, "sort=newest&cursor="+forged("newest", `"2000-01-02 03:04:05+05:30"`))
	if len(p.Items) != 0 {
		t.Fatalf("items after a legacy cursor in the past = %d, want 0", len(p.Items))
	}
}

// fuzzSeeds are (path, query) pairs for FuzzCatalogHTTP: the nasty cases, plus valid
// requests for the fuzzer to mutate.
func fuzzSeeds() [][2]string {
	seeds := [][2]string{
		{"", ""}, {"", "sort=name&limit=2"}, {"", "q=crypto+OR+-weather"}, {"", `q="unterminated`},
		{"", "q=a&sort=relevance&limit=1"}, {"", "tag=prices&tag=crypto&type=data_source&delivery_mode=push"},
		{"", "pricing=paid&tier=verified&category=finance"},
		{"", "cursor=" + forged("popular", `"-9223372036854775808"`)},
		{"", "sort=rating&cursor=" + forged("rating", `"4.50"`)},
		{"", "sort=newest&cursor=" + forged("newest", `"2026-09-01T12:00:00.123456Z"`)},
		{"", "sort=name&cursor=" + forged("name", `"\uFFFF\u2028😀"`)},
		{"", "q=x&cursor=" + forged("relevance", `"1e-45"`)},
		{"", "q=" + strings.Repeat("%E2%80%A8", 66)}, {"", "q=" + strings.Repeat("!", 200)},
		{"", "q=" + strings.Repeat("a+", 100)}, {"", "q=" + strings.Repeat("x", 300)},
		{"/crypto-ticker", ""}, {"/missing", ""}, {"/%00", ""}, {"/%ff", ""}, {"/a/b", ""},
		{"/../../metrics", ""}, {"/..%2f..%2fmetrics", ""}, {"/", ""}, {"/crypto-ticker", "x=1"},
		{"%00", ""}, {"/%2e%2e", ""}, {"//", "q=%00"},
	}
	for q := range nastyQueries {
		if len(q) < 2000 {
			seeds = append(seeds, [2]string{"", q})
		}
	}
	return seeds
}

// FuzzCatalogHTTP sends arbitrary paths under /v1/integrations and query strings to the
// catalog's full handler over a real, seeded database: nothing may answer 5xx, and every 4xx
// is problem+json (a 400 naming a field).
func FuzzCatalogHTTP(f *testing.F) {
	b := bundle{pool: pgtest.Pool(f)}
	for i, s := range []seed{
		{name: "crypto-ticker", display: "Crypto Ticker", typ: "data_source", mode: "push", category: "finance",
			desc: "Live prices of bitcoin and ether", tags: []string{"crypto", "prices"}, installs: 3, rating: 4.5},
		{name: "stock-board", display: "Stock Board", category: "finance", pricing: "subscription", price: 499,
			tier: "verified", desc: "Stock quotes on your dashboard", tags: []string{"prices"}, installs: 3, rating: 2},
		{name: "fantasy-scores", display: "Fantasy Scores", typ: "app", category: "sports", desc: "fantasy football"},
		{name: "emoji", display: strings.Repeat("😀", 100), desc: "a"},
		{name: "hidden", display: "Hidden"},
	} {
		s.published = i < 4
		b.insert(f, s)
	}
	h := catalogHandler(f, b.pool)
	for _, s := range fuzzSeeds() {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		target := "/v1/integrations" + path
		if query != "" {
			target += "?" + query
		}
		// Parse the request as the server would; what it cannot parse, net/http answers
		// itself with 400 before any handler runs.
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: catalog\r\n\r\n")))
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		res := rec.Result()
		body := rec.Body.Bytes()
		switch {
		case res.StatusCode >= 500:
			t.Fatalf("GET %q = %d %s", target, res.StatusCode, body)
		case res.StatusCode >= 400:
			if ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); ct != "application/problem+json" {
				t.Fatalf("GET %q = %d with content-type %q: %s", target, res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			var p httpx.Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != res.StatusCode {
				t.Fatalf("GET %q = %d, problem %s (%v)", target, res.StatusCode, body, err)
			}
			if res.StatusCode == http.StatusBadRequest && (len(p.Errors) == 0 || p.Errors[0].Field == "" || p.Errors[0].Reason == "") {
				t.Fatalf("GET %q = 400 naming no field: %s", target, body)
			}
		case res.StatusCode == http.StatusOK:
			if !json.Valid(body) {
				t.Fatalf("GET %q = 200 with invalid JSON %s", target, body)
			}
		}
	})
}
