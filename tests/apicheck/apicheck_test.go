package apicheck_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/myscrollr/connect/tests/apicheck"
)

// recorder is a testing.TB that keeps what Errorf reports instead of failing the test.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) reported() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

// reply is one canned answer of the fake server.
type reply struct {
	status  int
	ctype   string
	headers map[string]string
	body    any // marshalled as JSON; nil: no body
}

// exchange serves want on a loopback server, sends the request through the Checker's
// Transport, and returns what the Transport reported (empty when the exchange matched).
func exchange(t *testing.T, c *apicheck.Checker, method, target, reqBody string, reqHeaders map[string]string, want reply) string {
	t.Helper()
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		if reqBody == "" && (r.ContentLength != 0 || len(r.TransferEncoding) > 0) {
			t.Errorf("a request without a body was sent with one (length %d, %v)", r.ContentLength, r.TransferEncoding)
		}
		for k, v := range want.headers {
			w.Header().Set(k, v)
		}
		if want.body == nil {
			w.WriteHeader(want.status)
			return
		}
		w.Header().Set("Content-Type", want.ctype)
		w.WriteHeader(want.status)
		_ = json.NewEncoder(w).Encode(want.body)
	}))
	defer srv.Close()
	rec := &recorder{TB: t}
	client := &http.Client{Transport: c.Transport(rec, nil)}
	var body io.Reader
	if reqBody != "" {
		body = strings.NewReader(reqBody)
	}
	req, err := http.NewRequest(method, srv.URL+target, body)
	if err != nil {
		t.Fatal(err)
	}
	if reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range reqHeaders {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// The Transport must hand both bodies on untouched.
	if gotBody != reqBody {
		t.Errorf("the server received body %q, want %q", gotBody, reqBody)
	}
	if want.body != nil {
		wantJSON, _ := json.Marshal(want.body)
		if strings.TrimSpace(string(got)) != string(wantJSON) {
			t.Errorf("the client read body %q, want %q", got, wantJSON)
		}
	}
	return rec.reported()
}

// Fixtures as the handlers encode them (copied from real answers' shapes).

func listing() map[string]any {
	return map[string]any{
		"id": "5b0c8f0e-2a64-4c55-9b3a-0f6a1f2f9d11", "name": "crypto-ticker", "display_name": "Crypto Ticker",
		"type": "data_source", "delivery_mode": "pull", "description": "Prices", "category": "finance",
		"tags": []any{"crypto"}, "verification_tier": "featured",
		"pricing": map[string]any{"model": "free", "price_cents": 0, "currency": "usd"},
		"health":  map[string]any{"status": "healthy", "uptime_24h": 100.0, "uptime_7d": 99.5, "uptime_30d": nil},
		"rating":  map[string]any{"average": 4.5, "count": 2}, "install_count": 12, "current_version": "1.0.0",
		"published_at": "2026-11-29T21:30:40.123456Z",
	}
}

func detail() map[string]any {
	d := listing()
	d["badge"] = "featured"
	d["icon"] = "https://example.com/icon.png"
	d["screenshots"] = []any{}
	d["deprecation"] = map[string]any{"message": "use v2", "sunset": "2027-01-31", "replacement": nil,
		"deprecated_at": "2026-11-29T21:30:40Z"}
	return d
}

func integration() map[string]any {
	days := make([]any, 30)
	for i := range days {
		days[i] = map[string]any{"date": fmt.Sprintf("2026-11-%02d", i+1), "installs": 0}
	}
	return map[string]any{
		"id": "5b0c8f0e-2a64-4c55-9b3a-0f6a1f2f9d11", "name": "crypto-ticker", "display_name": "Crypto Ticker",
		"type": "widget", "delivery_mode": nil, "category": "other", "tags": []any{}, "tier": "unverified",
		"client_id": "app123", "is_published": false, "published_at": nil, "current_version": nil,
		"latest_version": "1.0.0", "deprecation": nil, "verification": nil,
		"versions": []any{map[string]any{
			"version": "1.0.0", "manifest": map[string]any{"name": "crypto-ticker"},
			"created_at": "2026-11-29T21:30:40Z", "publishable": false,
			"checks": []any{map[string]any{"name": "health", "required": true, "passed": false,
				"reason": "GET /health: 500", "response_time_ms": 12, "checked_at": "2026-11-29T21:30:40Z"}},
		}},
		"stats": map[string]any{"active_installs": 0, "installs_by_day": days,
			"uptime": map[string]any{"24h": nil, "7d": nil, "30d": 99.9}, "health_status": "unknown",
			"revenue_by_month": []any{}, "active_subscriptions": 0},
		"created_at": "2026-11-29T21:30:40Z", "updated_at": "2026-11-29T21:30:40Z",
	}
}

func problem(status int, field string) map[string]any {
	p := map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": "bad"}
	if field != "" {
		p["errors"] = []any{map[string]any{"field": field, "reason": "wrong"}}
	}
	return p
}

var (
	cached = map[string]string{"ETag": `"abc_DEF-123"`, "Cache-Control": "public, max-age=30"}
	bearer = map[string]string{"Authorization": "Bearer x.y.z"}
)

func ok(body any, headers map[string]string) reply {
	return reply{status: 200, ctype: "application/json", headers: headers, body: body}
}

func with(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	return m
}

func without(m map[string]any, k string) map[string]any {
	delete(m, k)
	return m
}

func TestTransport(t *testing.T) {
	c := load(t)
	cases := []struct {
		name           string
		method, target string
		body           string
		headers        map[string]string
		reply          reply
		fail           string // "" when the exchange must pass, else a part of the report
	}{
		{name: "good detail", method: "GET", target: "/v1/integrations/crypto-ticker", reply: ok(detail(), cached)},
		{name: "good page", method: "GET", target: "/v1/integrations?q=crypto&tag=a&tag=b&limit=5&sort=rating",
			reply: ok(map[string]any{"items": []any{listing(), without(listing(), "delivery_mode")}, "next_cursor": "eyJ9"},
				map[string]string{"ETag": `"x"`, "Cache-Control": "public, max-age=10"})},
		{name: "good developer integration", method: "GET", target: "/v1/developer/integrations/crypto-ticker",
			headers: bearer, reply: ok(integration(), nil)},
		{name: "good registration", method: "POST", target: "/v1/developer/integrations", headers: bearer,
			body: `{"name":"crypto-ticker","display_name":"C","version":"1.0.0","type":"widget","base_url":"https://x","scopes":[]}`,
			reply: reply{status: 201, ctype: "application/json", body: map[string]any{"client_id": "a", "client_secret": "s", "integration": integration(),
				"integration_client": map[string]any{"client_id": "m", "client_secret": "t", "scope": "", "resource": "https://api.myscrollr.com"}}}},
		{name: "good 304", method: "GET", target: "/v1/integrations/crypto-ticker/reviews", headers: map[string]string{"If-None-Match": `"x"`},
			reply: reply{status: 304, headers: cached}},
		{name: "good POST without a body", method: "POST", target: "/v1/developer/integrations/crypto-ticker/publish",
			headers: bearer, reply: ok(integration(), nil)},
		{name: "good 204", method: "DELETE", target: "/v1/integrations/crypto-ticker/reviews/mine", headers: bearer, reply: reply{status: 204}},
		{name: "refused bad request", method: "GET", target: "/v1/integrations?limit=0",
			reply: reply{status: 400, ctype: "application/problem+json", body: problem(400, "limit")}},
		{name: "refused missing token", method: "GET", target: "/v1/developer/integrations",
			reply: reply{status: 401, ctype: "application/problem+json", headers: map[string]string{"WWW-Authenticate": "Bearer"}, body: problem(401, "")}},
		{name: "shed", method: "GET", target: "/v1/integrations",
			reply: reply{status: 503, ctype: "application/problem+json", headers: map[string]string{"Retry-After": "1", "Cache-Control": "no-store"}, body: problem(503, "")}},

		{name: "extra field", method: "GET", target: "/v1/integrations/crypto-ticker",
			reply: ok(with(detail(), "secret", "x"), cached), fail: "secret"},
		{name: "extra field in a listing of a page", method: "GET", target: "/v1/integrations",
			reply: ok(map[string]any{"items": []any{with(listing(), "badge", nil)}}, cached), fail: "badge"},
		{name: "extra nested field", method: "GET", target: "/v1/developer/integrations/crypto-ticker", headers: bearer,
			reply: ok(with(integration(), "stats", map[string]any{"active_installs": 0, "installs_by_day": integration()["stats"].(map[string]any)["installs_by_day"],
				"uptime": map[string]any{"24h": nil, "7d": nil, "30d": nil}, "health_status": "unknown",
				"revenue_by_month": []any{}, "active_subscriptions": 0, "revenue": 0}), nil), fail: "revenue"},
		{name: "missing field", method: "GET", target: "/v1/developer/integrations/crypto-ticker", headers: bearer,
			reply: ok(without(integration(), "client_id"), nil), fail: "client_id"},
		{name: "missing field in detail", method: "GET", target: "/v1/integrations/crypto-ticker",
			reply: ok(without(detail(), "badge"), cached), fail: "badge"},
		{name: "wrong type", method: "GET", target: "/v1/integrations/crypto-ticker",
			reply: ok(with(detail(), "install_count", "12"), cached), fail: "install_count"},
		{name: "wrong time format", method: "GET", target: "/v1/integrations/crypto-ticker",
			reply: ok(with(detail(), "published_at", "2026-11-29 21:30:40"), cached), fail: "published_at"},
		{name: "undocumented status", method: "GET", target: "/v1/integrations/crypto-ticker",
			reply: reply{status: 418, ctype: "application/problem+json", body: problem(418, "")}, fail: "418"},
		{name: "error not a problem", method: "GET", target: "/v1/integrations/nope",
			reply: reply{status: 404, ctype: "application/json", body: map[string]any{"error": "not found"}}, fail: "404"},
		{name: "problem of the wrong shape", method: "GET", target: "/v1/integrations/nope",
			reply: reply{status: 404, ctype: "application/problem+json", body: map[string]any{"title": "Not Found", "status": "404"}}, fail: "status"},
		{name: "missing ETag", method: "GET", target: "/v1/integrations/crypto-ticker",
			reply: ok(detail(), map[string]string{"Cache-Control": "public, max-age=30"}), fail: "ETag"},
		{name: "shed without Retry-After", method: "GET", target: "/v1/integrations",
			reply: reply{status: 503, ctype: "application/problem+json", headers: map[string]string{"Cache-Control": "no-store"}, body: problem(503, "")}, fail: "Retry-After"},
		{name: "undocumented route", method: "GET", target: "/v1/nothing", reply: ok(map[string]any{}, nil), fail: "undocumented route"},
		{name: "undocumented method", method: "PATCH", target: "/v1/integrations/crypto-ticker", reply: ok(detail(), cached), fail: "undocumented route"},
		{name: "accepted bad request", method: "GET", target: "/v1/integrations?limit=1000",
			reply: ok(map[string]any{"items": []any{}}, cached), fail: "refuses"},
		{name: "accepted bad body", method: "PUT", target: "/v1/integrations/crypto-ticker/reviews/mine", headers: bearer,
			body: `{"rating":9}`,
			reply: reply{status: 201, ctype: "application/json", headers: map[string]string{"Cache-Control": "no-store"},
				body: map[string]any{"review": map[string]any{"id": "5b0c8f0e-2a64-4c55-9b3a-0f6a1f2f9d11", "rating": 5, "text": "",
					"created_at": "2026-11-29T21:30:40Z", "updated_at": "2026-11-29T21:30:40Z"}, "integration_rating": map[string]any{"average": 5, "count": 1}}},
			fail: "refuses"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, c, tc.method, tc.target, tc.body, tc.headers, tc.reply)
			switch {
			case tc.fail == "" && got != "":
				t.Errorf("want no report, got:\n%s", got)
			case tc.fail != "" && got == "":
				t.Errorf("want a report naming %q, got none", tc.fail)
			case tc.fail != "" && !strings.Contains(got, tc.fail):
				t.Errorf("want a report naming %q, got:\n%s", tc.fail, got)
			case tc.fail != "" && !strings.Contains(got, tc.method+" "+tc.target+" -> "):
				t.Errorf("the report does not name the method and path %s %s:\n%s", tc.method, tc.target, got)
			}
		})
	}
}
