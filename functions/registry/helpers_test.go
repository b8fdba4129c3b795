package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/conformance"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
	"github.com/myscrollr/connect/shared/sealed"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var testNow = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

const callback = "http://127.0.0.1:8080/v1/installs/callback"

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

type bundle struct {
	owner  *pgxpool.Pool // the database owner, for seeding and for looking behind the function
	idp    *idp.Server
	lc     *logto.Client
	hc     *http.Client
	keys   *sealed.Keys
	srv    *httptest.Server // the function as the runtime serves it
	integ  *httptest.Server // an integration on loopback
	down   *atomic.Bool     // the integration's GET /health answers 503
	checks *atomic.Int64    // runs of the checker
	svc    *Service
}

// testChecker is the health part of the automated checks, calling the integration for real on
// loopback: GET {base_url}/health must answer 200 within the threshold.
func testChecker(hc *http.Client, runs *atomic.Int64) Checker {
	return CheckFunc(func(ctx context.Context, m *manifest.Manifest) []conformance.Result {
		runs.Add(1)
		out := []conformance.Result{{Name: "schema", Required: true, Passed: true}}
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.BaseURL+"/health", nil)
		resp, err := hc.Do(req)
		ms := time.Since(start).Milliseconds()
		h := conformance.Result{Name: "health", Required: true, ResponseTimeMS: &ms}
		switch {
		case err != nil:
			h.Reason = "GET /health failed"
		case resp.StatusCode != http.StatusOK:
			h.Reason = "GET /health answered " + resp.Status
		default:
			h.Passed, h.Reason = true, "200 OK"
		}
		if resp != nil {
			resp.Body.Close()
		}
		return append(out, h, conformance.Result{Name: "mixed_content", Required: false, Passed: false, Reason: "advisory only"})
	})
}

func start(t *testing.T) bundle { t.Helper(); return startWith(t, nil, nil) }

// startWith is start with the Logto client wrapped by wrap (nil: as is) and checker instead of
// testChecker (nil: testChecker).
func startWith(t *testing.T, wrap func(Apps) Apps, checker Checker) bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{
		Logger:  discard(),
		Clients: []idp.Client{{ID: "m2m", Secret: "m2m-secret", Type: "MachineToMachine", ManagementAPI: true}},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	b := bundle{idp: s, hc: hc, down: new(atomic.Bool), checks: new(atomic.Int64)}
	b.lc, err = logto.New(logto.Config{Endpoint: strings.TrimSuffix(s.Issuer(), "/oidc"), AppID: "m2m", AppSecret: "m2m-secret",
		HTTPClient: hc, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	b.integ = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && b.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(b.integ.Close)

	ownerURL, fnURL := pgtest.FunctionURL(t, "registry")
	b.owner = openPool(t, ownerURL)
	pool := openPool(t, fnURL)
	b.keys, err = sealed.Parse("t1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Keys: b.keys, InstallCallbackURL: callback, AllowLoopbackHTTP: true, CheckTimeout: 5 * time.Second,
		APIResource: idp.DefaultAPIResource}
	var apps Apps = b.lc
	if wrap != nil {
		apps = wrap(b.lc)
	}
	if checker == nil {
		checker = testChecker(hc, b.checks)
	}
	svc, err := New(cfg, pool, apps, checker, discard(), func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	svc.enableTransforms(testWasmHost(t)) // transform_test.go
	b.svc = svc
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource, Logger: discard()}, hc)
	if err != nil {
		t.Fatal(err)
	}
	h, err := runtime.NewHandler(runtime.Function{Name: "registry", HTTP: svc.Routes(v)}, runtime.Deps{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b
}

func openPool(t *testing.T, u string) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// token mints a user token for sub with scopes.
func (b bundle) token(t *testing.T, sub string, scopes ...string) string {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: sub, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (b bundle) dev(t *testing.T, sub string) string {
	return b.token(t, sub, auth.ScopeIntegrationsWrite)
}

func (b bundle) admin(t *testing.T) string {
	return b.token(t, "admin_1", auth.ScopeIntegrationsAdmin)
}

type reply struct {
	Status int
	Body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// problem is the problem+json body.
type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func (r reply) problem(t *testing.T) problem {
	t.Helper()
	var p problem
	r.decode(t, &p)
	return p
}

func (r reply) fields(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range r.problem(t).Errors {
		out[e.Field] = e.Reason
	}
	return out
}

func (b bundle) do(t *testing.T, method, path, token string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(v)
	case string:
		rd = strings.NewReader(v)
	default:
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{Status: resp.StatusCode, Body: out}
}

// manifestFor is a valid widget manifest served by the bundle's integration, with changes.
func (b bundle) manifestFor(name, version string, change func(m map[string]any)) map[string]any {
	m := map[string]any{
		"name": name, "display_name": "Widget " + name, "version": version, "type": "widget",
		"description": "A clock.", "base_url": b.integ.URL, "scopes": []string{"dashboard:read", "profile:read"},
		"category": "productivity", "tags": []string{"time"},
		"redirect_uris": []string{"https://" + name + ".example/callback"},
	}
	if change != nil {
		change(m)
	}
	return m
}

// register registers name as sub and fails the test unless 201.
func (b bundle) register(t *testing.T, sub, name string, change func(m map[string]any)) Registered {
	t.Helper()
	r := b.do(t, "POST", "/v1/developer/integrations", b.dev(t, sub), b.manifestFor(name, "1.0.0", change))
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", name, r.Status, r.Body)
	}
	var out Registered
	r.decode(t, &out)
	return out
}

// outbox lists the event types written for the integration, in order.
func (b bundle) outbox(t *testing.T, integrationID string) []string {
	t.Helper()
	rows, err := b.owner.Query(context.Background(), `SELECT type FROM outbox WHERE aggregateid = $1 ORDER BY created_at, time, id`, integrationID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimPrefix(s, "com.myscrollr.connect."))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (b bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.owner.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (b bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.owner.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// mgmt calls the identity server's Management API with a Management token.
func (b bundle) mgmt(t *testing.T, path string, out any) int {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: "m2m", ClientID: "m2m", Audience: idp.ManagementResource, Scopes: []string{"all"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", strings.TrimSuffix(b.idp.Issuer(), "/oidc")+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// secretWorks reports whether the identity server accepts secret as clientID's: a code
// exchange with a made-up code fails as invalid_grant for the right secret and invalid_client
// for a wrong one.
func (b bundle) secretWorks(t *testing.T, clientID, secret string) bool {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"made-up"}, "redirect_uri": {callback}}
	req, _ := http.NewRequest("POST", b.idp.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	switch out.Error {
	case "invalid_grant":
		return true
	case "invalid_client", "unauthorized_client":
		return false
	}
	t.Fatalf("token endpoint: %d %q", resp.StatusCode, out.Error)
	return false
}
