package conformance_test

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/conformance"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/ssrf"
)

const bundleJS = `customElements.define("test-widget", class extends HTMLElement {});`

// routes are an integration's handlers by pattern ("GET /health"); nil removes a default.
type routes map[string]http.HandlerFunc

func jsonHandler(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = fmt.Fprint(w, body)
	}
}

func statusHandler(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }
}

const goodSchema = `{"refresh_interval_seconds":60,"streams":[{"name":"prices","key":["symbol"],"schema":{
	"type":"object","required":["symbol","price_cents"],"additionalProperties":false,
	"properties":{"symbol":{"type":"string"},"price_cents":{"type":"integer","minimum":0}}}}]}`

const goodData = `{"records":[{"stream":"prices","data":{"symbol":"BTC","price_cents":6500000}},
	{"stream":"prices","data":{"symbol":"ETH","price_cents":350000}}]}`

func widgetManifestBody(extra string) string {
	return `{"name":"test-widget","version":"1.0.0","element":"test-widget"` + extra + `}`
}

// defaults are the routes of a conforming integration of kind.
func defaults(kind string) routes {
	r := routes{"GET /health": jsonHandler(200, `{"status":"ok"}`)}
	switch kind {
	case "pull":
		r["GET /schema"] = jsonHandler(200, goodSchema)
		r["GET /data"] = jsonHandler(200, goodData)
	case "widget":
		r["GET /manifest"] = jsonHandler(200, widgetManifestBody(`,"sizes":[{"w":2,"h":1}]`))
		r["GET /bundle"] = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			_, _ = fmt.Fprint(w, bundleJS)
		}
	case "app":
		r["POST /lifecycle/install"] = statusHandler(http.StatusUnauthorized)
		r["POST /lifecycle/uninstall"] = statusHandler(http.StatusUnauthorized)
	}
	return r
}

// serve starts an integration of kind on 127.0.0.1 with the overrides applied, over http or
// (tls) https. It counts the requests it gets.
func serve(t *testing.T, kind string, tls bool, overrides routes) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	r := defaults(kind)
	for k, h := range overrides {
		r[k] = h
	}
	mux := http.NewServeMux()
	for pattern, h := range r {
		if h != nil {
			mux.HandleFunc(pattern, h)
		}
	}
	hits := new(atomic.Int64)
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { hits.Add(1); mux.ServeHTTP(w, req) })
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv, hits
}

// client is an SSRF-safe client that may reach 127.0.0.1 (as make dev's SSRF_ALLOW), trusting
// the test servers' certificates.
func client(t *testing.T, servers ...*httptest.Server) *ssrf.Client {
	t.Helper()
	cfg := ssrf.Config{Allow: []ssrf.Destination{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}}}
	for _, s := range servers {
		if s.TLS != nil {
			cfg.RootCAs = s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
		}
	}
	c, err := ssrf.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// manifestFor is a valid manifest of kind at baseURL.
func manifestFor(kind, baseURL string) *manifest.Manifest {
	m := &manifest.Manifest{Name: "test-" + kind, DisplayName: "Test", Version: "1.0.0", BaseURL: baseURL,
		Scopes: []string{"dashboard:read"}, Icon: "https://cdn.example.com/icon.png"}
	switch kind {
	case "pull", "push":
		m.Type, m.DeliveryMode = manifest.TypeDataSource, kind
	case "widget":
		m.Type = manifest.TypeWidget
		m.Widget = &manifest.Widget{Sizes: []manifest.Size{{W: 2, H: 1}}}
	case "app", "app-kafka":
		m.Type = manifest.TypeApp
		if kind == "app-kafka" {
			m.App = &manifest.App{Lifecycle: manifest.LifecycleKafka}
		}
	}
	return m
}

var loopback = conformance.Options{AllowLoopbackHTTP: true, CallTimeout: 5 * time.Second}

func run(t *testing.T, c *ssrf.Client, m *manifest.Manifest, opts conformance.Options) map[string]conformance.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := map[string]conformance.Result{}
	for _, r := range conformance.Run(ctx, c, m, opts) {
		if _, dup := out[r.Name]; dup {
			t.Fatalf("check %s reported twice", r.Name)
		}
		if r.Required != conformance.Required[r.Name] {
			t.Errorf("%s: required %v, want %v", r.Name, r.Required, conformance.Required[r.Name])
		}
		out[r.Name] = r
	}
	return out
}

// expect asserts that check name failed (passed=false) with a reason containing want, or
// passed when want is "".
func expect(t *testing.T, results map[string]conformance.Result, name, want string) {
	t.Helper()
	r, ok := results[name]
	switch {
	case !ok:
		t.Errorf("%s: not run; results %+v", name, results)
	case want == "" && !r.Passed:
		t.Errorf("%s failed: %s", name, r.Reason)
	case want != "" && r.Passed:
		t.Errorf("%s passed (%s), want a failure with %q", name, r.Reason, want)
	case want != "" && !strings.Contains(r.Reason, want):
		t.Errorf("%s reason %q, want it to contain %q", name, r.Reason, want)
	}
}

// Every kind of integration that follows the contracts passes every check, and gets exactly
// the checks of its kind, in order.
func TestConformingIntegrationsPass(t *testing.T) {
	for kind, names := range map[string][]string{
		"pull":      {"schema", "base_url", "health", "pull_schema", "pull_data", "mixed_content"},
		"push":      {"schema", "base_url", "health", "push_schema", "mixed_content"},
		"widget":    {"schema", "base_url", "health", "widget_manifest", "widget_bundle", "mixed_content"},
		"app":       {"schema", "base_url", "health", "lifecycle", "mixed_content"},
		"app-kafka": {"schema", "base_url", "health", "lifecycle", "mixed_content"},
	} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, kind, false, nil)
			m := manifestFor(kind, srv.URL)
			if kind == "widget" {
				m.Name = "test-widget"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			results := conformance.Run(ctx, client(t, srv), m, loopback)
			var got []string
			for _, r := range results {
				got = append(got, r.Name)
				if !r.Passed {
					t.Errorf("%s failed: %s", r.Name, r.Reason)
				}
			}
			if strings.Join(got, ",") != strings.Join(names, ",") {
				t.Errorf("checks %v, want %v", got, names)
			}
			for _, r := range results {
				if r.Name == "health" && r.ResponseTimeMS == nil {
					t.Error("health has no response time")
				}
			}
		})
	}
}

// The same integrations over https pass without the loopback exemption (the client's Allow
// still lets the test reach 127.0.0.1, as SSRF_ALLOW would).
func TestHTTPSWithoutLoopbackExemption(t *testing.T) {
	srv, _ := serve(t, "widget", true, nil)
	m := manifestFor("widget", srv.URL)
	m.Name = "test-widget"
	res := run(t, client(t, srv), m, conformance.Options{CallTimeout: 5 * time.Second})
	for name := range res {
		expect(t, res, name, "")
	}
	// Plain http on 127.0.0.1 is refused without the option.
	plain, _ := serve(t, "widget", false, nil)
	m = manifestFor("widget", plain.URL)
	res = run(t, client(t), m, conformance.Options{CallTimeout: 5 * time.Second})
	expect(t, res, "schema", "https")
	expect(t, res, "base_url", "must be https")
	expect(t, res, "health", "not called")
}

func TestHealth(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		h    http.HandlerFunc
		want string
	}{
		"down status":   {jsonHandler(200, `{"status":"down"}`), `reported "down"`},
		"degraded":      {jsonHandler(200, `{"status":"degraded"}`), `reported "degraded"`},
		"HTTP 503":      {jsonHandler(503, `{"status":"ok"}`), "HTTP status 503"},
		"not the doc":   {jsonHandler(200, `<html>ok</html>`), "body: not a JSON object"},
		"no route":      {nil, "HTTP status 404"},
		"body too long": {jsonHandler(200, `{"status":"ok","output":"`+strings.Repeat("x", 5000)+`"}`), "body over 4096 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, "push", false, routes{"GET /health": tc.h})
			res := run(t, client(t), manifestFor("push", srv.URL), loopback)
			expect(t, res, "health", tc.want)
			expect(t, res, "base_url", "")
		})
	}
	t.Run("server gone", func(t *testing.T) {
		t.Parallel()
		srv, _ := serve(t, "push", false, nil)
		srv.Close()
		res := run(t, client(t), manifestFor("push", srv.URL), loopback)
		expect(t, res, "health", "connection refused")
	})
}

// A health answer slower than the threshold fails with its response time; the clock is the
// test's, moved by the handler.
func TestHealthSlow(t *testing.T) {
	clock := new(atomic.Int64)
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	opts := loopback
	opts.Now = func() time.Time { return start.Add(time.Duration(clock.Load())) }
	srv, _ := serve(t, "push", false, routes{"GET /health": func(w http.ResponseWriter, r *http.Request) {
		clock.Add(int64(2500 * time.Millisecond))
		jsonHandler(200, `{"status":"ok"}`)(w, r)
	}})
	res := run(t, client(t), manifestFor("push", srv.URL), opts)
	expect(t, res, "health", "slow: answered in 2.5s (over 2s)")
	if ms := res["health"].ResponseTimeMS; ms == nil || *ms != 2500 {
		t.Errorf("response time %v, want 2500 ms", ms)
	}
	opts.HealthThreshold = 3 * time.Second
	res = run(t, client(t), manifestFor("push", srv.URL), opts)
	expect(t, res, "health", "")
}

// A hanging integration costs at most CallTimeout per call, and the calls overlap.
func TestTimeoutsBounded(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	srv, _ := serve(t, "pull", false, routes{"GET /health": hang, "GET /schema": hang})
	opts := loopback
	opts.CallTimeout = 300 * time.Millisecond
	began := time.Now()
	res := run(t, client(t), manifestFor("pull", srv.URL), opts)
	took := time.Since(began)
	expect(t, res, "health", "timeout: no complete answer within 300ms")
	expect(t, res, "pull_schema", "timeout")
	expect(t, res, "pull_data", "not checked: GET /schema failed")
	if took > 10*time.Second {
		t.Errorf("Run took %s with a 300ms call timeout", took)
	}
	// ctx bounds Run as a whole.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range conformance.Run(ctx, client(t), manifestFor("pull", srv.URL), loopback) {
		if r.Name == "health" && (r.Passed || !strings.Contains(r.Reason, "cancelled")) {
			t.Errorf("health with a cancelled ctx: %+v", r)
		}
	}
}

func TestPullSource(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		r              routes
		streams        []manifest.Stream
		schema, data   string
		schemaNotFound bool
	}{
		"data does not match schema": {r: routes{"GET /data": jsonHandler(200,
			`{"records":[{"stream":"prices","data":{"symbol":"BTC","price_cents":"a lot"}},{"stream":"prices","data":{"symbol":"ETH","price_cents":1}}]}`)},
			data: "GET /data does not match GET /schema: 1 of 2 records refused; /records/0: /data/price_cents"},
		"undeclared stream": {r: routes{"GET /data": jsonHandler(200, `{"records":[{"stream":"ships","data":{}}]}`)},
			data: `stream "ships" is not declared`},
		"data not the contract": {r: routes{"GET /data": jsonHandler(200, `{"items":[]}`)},
			data: "invalid /data document"},
		"schema not the contract": {r: routes{"GET /schema": jsonHandler(200, `{"streams":[{"name":"Prices"}]}`)},
			schema: "invalid /schema document", data: "not checked: GET /schema failed"},
		"no schema": {r: routes{"GET /schema": nil}, schema: "HTTP status 404", data: "not checked"},
		"manifest stream missing": {streams: []manifest.Stream{{Name: "prices"}, {Name: "alerts"}},
			schema: `no stream "alerts", which the manifest declares at /data_source/streams/1`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, "pull", false, tc.r)
			m := manifestFor("pull", srv.URL)
			if tc.streams != nil {
				m.DataSource = &manifest.DataSource{Streams: tc.streams}
			}
			res := run(t, client(t), m, loopback)
			expect(t, res, "pull_schema", tc.schema)
			expect(t, res, "pull_data", tc.data)
			expect(t, res, "health", "")
		})
	}
}

func TestPushSchemaIsInformative(t *testing.T) {
	srv, _ := serve(t, "push", false, routes{"GET /schema": jsonHandler(200, `{"streams":"none"}`)})
	res := run(t, client(t), manifestFor("push", srv.URL), loopback)
	expect(t, res, "push_schema", "invalid /schema document")
	if res["push_schema"].Required {
		t.Error("push_schema is required")
	}
	srv, _ = serve(t, "push", false, routes{"GET /schema": jsonHandler(200, goodSchema)})
	res = run(t, client(t), manifestFor("push", srv.URL), loopback)
	expect(t, res, "push_schema", "")
}

func TestWidget(t *testing.T) {
	t.Parallel()
	js := func(ct, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			_, _ = fmt.Fprint(w, body)
		}
	}
	sum := sha512.Sum384([]byte(bundleJS))
	sri := "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
	for name, tc := range map[string]struct {
		r              routes
		manifest       string
		bundle         string
		mixed          string
		maxBundleBytes int64
	}{
		"html bundle":                 {r: routes{"GET /bundle": js("text/html", "<p>")}, bundle: "Content-Type text/html, want text/javascript"},
		"no content type":             {r: routes{"GET /bundle": js("", "")}, bundle: "Content-Type"},
		"empty bundle":                {r: routes{"GET /bundle": js("application/javascript", "")}, bundle: "empty"},
		"bundle too large":            {maxBundleBytes: 10, bundle: "body over 10 bytes"},
		"no bundle":                   {r: routes{"GET /bundle": nil}, bundle: "HTTP status 404"},
		"integrity matches":           {r: routes{"GET /manifest": jsonHandler(200, widgetManifestBody(`,"integrity":"`+sri+`"`))}},
		"integrity does not match":    {r: routes{"GET /manifest": jsonHandler(200, widgetManifestBody(`,"integrity":"sha384-`+base64.StdEncoding.EncodeToString(make([]byte, 48))+`"`))}, bundle: "does not match the integrity"},
		"no manifest":                 {r: routes{"GET /manifest": nil}, manifest: "GET /manifest: HTTP status 404", mixed: ""},
		"manifest not JSON":           {r: routes{"GET /manifest": jsonHandler(200, `{`)}, manifest: "not valid JSON"},
		"manifest missing element":    {r: routes{"GET /manifest": jsonHandler(200, `{"name":"test-widget","version":"1.0.0"}`)}, manifest: "/element: required"},
		"bad element name":            {r: routes{"GET /manifest": jsonHandler(200, `{"name":"test-widget","version":"1.0.0","element":"Clock"}`)}, manifest: "/element: must be a custom element name"},
		"unknown member":              {r: routes{"GET /manifest": jsonHandler(200, widgetManifestBody(`,"colour":"red"`))}, manifest: "/colour: unknown field"},
		"bad size from manifest.json": {r: routes{"GET /manifest": jsonHandler(200, widgetManifestBody(`,"sizes":[{"w":20,"h":1}]`))}, manifest: "/sizes/0/w"},
		"another name and version":    {r: routes{"GET /manifest": jsonHandler(200, `{"name":"other","version":"2.0.0","element":"a-b"}`)}, manifest: `/name: is not the manifest's name "test-widget"; /version: is not the manifest's version "1.0.0"`},
		"sizes differ":                {r: routes{"GET /manifest": jsonHandler(200, widgetManifestBody(`,"sizes":[{"w":3,"h":1}]`))}, manifest: "/sizes: differs from the manifest's widget block"},
		"http link in manifest":       {r: routes{"GET /manifest": jsonHandler(200, widgetManifestBody(`,"config":[{"key":"feed","label":"Feed","type":"string","default":"HTTP://feeds.example.com/x?token=s3cret"}]`))}, manifest: "/config: differs", mixed: "GET /manifest /config/0/default"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, "widget", false, tc.r)
			m := manifestFor("widget", srv.URL)
			m.Name = "test-widget"
			opts := loopback
			opts.MaxBundleBytes = tc.maxBundleBytes
			res := run(t, client(t), m, opts)
			expect(t, res, "widget_manifest", tc.manifest)
			expect(t, res, "widget_bundle", tc.bundle)
			expect(t, res, "mixed_content", tc.mixed)
			if strings.Contains(res["mixed_content"].Reason, "s3cret") || strings.Contains(res["widget_manifest"].Reason, "s3cret") {
				t.Error("a reason repeats a link's query")
			}
		})
	}
}

// A bundle that an https widget redirects to http is refused, and so is the mixed content of
// http on 127.0.0.1 when the loopback exemption is off.
func TestWidgetBundleOverHTTP(t *testing.T) {
	plain, _ := serve(t, "widget", false, nil)
	secure, _ := serve(t, "widget", true, routes{"GET /bundle": func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/bundle", http.StatusFound)
	}})
	m := manifestFor("widget", secure.URL)
	m.Name = "test-widget"
	m.Icon = plain.URL + "/icon.png"
	res := run(t, client(t, secure), m, conformance.Options{CallTimeout: 5 * time.Second})
	expect(t, res, "base_url", "")
	expect(t, res, "widget_manifest", "")
	expect(t, res, "widget_bundle", "GET /bundle: served over http, not https")
	expect(t, res, "mixed_content", "http links (mixed content) at /icon")
	// With the exemption, the same redirect to http on 127.0.0.1 is the local runtime's.
	res = run(t, client(t, secure), m, loopback)
	expect(t, res, "widget_bundle", "")
	expect(t, res, "mixed_content", "")
}

func TestAppLifecycle(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		r    routes
		want string
	}{
		"no lifecycle endpoints": {routes{"POST /lifecycle/install": nil, "POST /lifecycle/uninstall": nil}, "POST /lifecycle/install: HTTP status 404"},
		"no uninstall":           {routes{"POST /lifecycle/uninstall": nil}, "POST /lifecycle/uninstall: HTTP status"},
		"server error":           {routes{"POST /lifecycle/install": statusHandler(500)}, "HTTP status 500"},
		"accepts unsigned":       {routes{"POST /lifecycle/install": statusHandler(204), "POST /lifecycle/uninstall": statusHandler(200)}, ""},
		"bad request":            {routes{"POST /lifecycle/install": statusHandler(400), "POST /lifecycle/uninstall": statusHandler(403)}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, "app", false, tc.r)
			res := run(t, client(t), manifestFor("app", srv.URL), loopback)
			expect(t, res, "lifecycle", tc.want)
			if tc.want == "" && res["lifecycle"].ResponseTimeMS == nil {
				t.Error("lifecycle has no response time")
			}
		})
	}
	t.Run("test delivery", func(t *testing.T) {
		t.Parallel()
		got := make(chan http.Header, 2)
		var body atomic.Value
		h := func(w http.ResponseWriter, r *http.Request) {
			var doc struct {
				Type string `json:"type"`
				Test bool   `json:"test"`
			}
			if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
				t.Errorf("test delivery body: %v", err)
			}
			body.Store(doc.Type)
			got <- r.Header.Clone()
			w.WriteHeader(http.StatusUnauthorized)
		}
		srv, _ := serve(t, "app", false, routes{"POST /lifecycle/install": h, "POST /lifecycle/uninstall": h})
		res := run(t, client(t), manifestFor("app", srv.URL), loopback)
		expect(t, res, "lifecycle", "")
		for range 2 {
			hdr := <-got
			if hdr.Get("Webhook-Id") == "" || hdr.Get("Webhook-Timestamp") == "" || hdr.Get("Webhook-Signature") != "" ||
				hdr.Get("Content-Type") != "application/json" {
				t.Errorf("test delivery headers %v", hdr)
			}
		}
		if body.Load() != conformance.LifecycleTestType {
			t.Errorf("test delivery type %v", body.Load())
		}
	})
	t.Run("kafka lifecycle calls nothing", func(t *testing.T) {
		t.Parallel()
		srv, hits := serve(t, "app", false, routes{"POST /lifecycle/install": nil, "POST /lifecycle/uninstall": nil})
		res := run(t, client(t), manifestFor("app-kafka", srv.URL), loopback)
		expect(t, res, "lifecycle", "")
		if n := hits.Load(); n != 1 { // GET /health only
			t.Errorf("%d requests, want 1 (GET /health)", n)
		}
	})
}

func TestMixedContent(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, "push", false, nil)
	for name, tc := range map[string]struct {
		edit func(m *manifest.Manifest)
		want string
	}{
		"http icon": {func(m *manifest.Manifest) { m.Icon = "http://cdn.example.com/icon.png?sig=s3cret" }, "http links (mixed content) at /icon"},
		"http screenshot": {func(m *manifest.Manifest) {
			m.Screenshots = []string{"https://a.example/1.png", "Http://a.example/2.png"}
		}, "at /screenshots/1"},
		"support and privacy":  {func(m *manifest.Manifest) { m.SupportURL, m.PrivacyURL = "http://a.example", "http://b.example" }, "at /support_url, /privacy_url"},
		"author":               {func(m *manifest.Manifest) { m.Author = &manifest.Author{Name: "A", URL: "http://a.example"} }, "at /author/url"},
		"loopback with option": {func(m *manifest.Manifest) { m.Icon = srv.URL + "/icon.svg" }, ""},
		"loopback lookalike":   {func(m *manifest.Manifest) { m.Icon = "http://127.0.0.1.evil.example/icon.svg" }, "at /icon"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := manifestFor("push", srv.URL)
			tc.edit(m)
			res := run(t, client(t), m, loopback)
			expect(t, res, "mixed_content", tc.want)
			if strings.Contains(res["mixed_content"].Reason, "s3cret") || strings.Contains(res["mixed_content"].Reason, "example") {
				t.Errorf("reason repeats a link: %q", res["mixed_content"].Reason)
			}
		})
	}
}

// A private base_url is refused by the SSRF rules before anything is called: the checks that
// call the integration say so instead of connecting.
func TestPrivateBaseURLRefused(t *testing.T) {
	for _, base := range []string{"http://10.0.0.1", "https://10.0.0.1", "https://169.254.169.254/latest", "https://[::1]:8443"} {
		for _, kind := range []string{"pull", "push", "widget", "app"} {
			m := manifestFor(kind, base)
			res := run(t, client(t), m, loopback)
			if r := res["base_url"]; r.Passed || !strings.Contains(r.Reason, "refused by the SSRF rules") {
				t.Errorf("%s %s: base_url %+v", kind, base, r)
			}
			for name, r := range res {
				if name == "schema" || name == "base_url" || name == "mixed_content" {
					continue
				}
				if r.Passed || !strings.Contains(r.Reason, "not called") || r.ResponseTimeMS != nil {
					t.Errorf("%s %s: %s %+v, want not called", kind, base, name, r)
				}
			}
		}
	}
	res := run(t, client(t), manifestFor("pull", "http://10.0.0.1"), loopback)
	expect(t, res, "base_url", "refused by the SSRF rules: private")
}

// Reasons never repeat the URL (whose query may carry a token) nor the address.
func TestReasonsCarryNoURL(t *testing.T) {
	srv, _ := serve(t, "pull", false, routes{"GET /health": statusHandler(500), "GET /schema": statusHandler(500)})
	m := manifestFor("pull", srv.URL+"/api?token=s3cret")
	for _, r := range conformance.Run(context.Background(), client(t), m, loopback) {
		if strings.Contains(r.Reason, "s3cret") || strings.Contains(r.Reason, srv.Listener.Addr().String()) || strings.Contains(r.Reason, "token") {
			t.Errorf("%s: reason %q", r.Name, r.Reason)
		}
	}
}

func TestNilManifest(t *testing.T) {
	res := conformance.Run(context.Background(), client(t), nil, loopback)
	if len(res) != 1 || res[0].Name != "schema" || res[0].Passed {
		t.Fatalf("%+v", res)
	}
}
