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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
	"github.com/myscrollr/connect/shared/sealed"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const frontend = "https://app.myscrollr.test/installs"

// clock is the injected clock of the function and the identity server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// logBuffer captures everything the function logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type bundle struct {
	owner    *pgxpool.Pool // seeds and inspects, as the migration owner
	idp      *idp.Server
	lc       *logto.Client
	svc      *Service
	srv      *httptest.Server // the function as the runtime serves it
	hc       *http.Client     // does not follow redirects
	clk      *clock
	keys     *sealed.Keys
	logs     *logBuffer
	callback string
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// setupInstall starts the development identity server and the function (as the connect_install
// role) behind the runtime's HTTP stack, on a fresh database.
func setupInstall(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{clk: &clock{t: time.Now().UTC().Truncate(time.Second)}, logs: &logBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{
		Logger: discard(), Clock: b.clk.Now,
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
	b.idp = s
	b.hc = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(b.hc.CloseIdleConnections)
	endpoint := strings.TrimSuffix(s.Issuer(), "/oidc")
	b.lc, err = logto.New(logto.Config{Endpoint: endpoint, AppID: "m2m", AppSecret: "m2m-secret", HTTPClient: b.hc, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	b.keys, err = sealed.Parse("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}

	ownerURL, fnURL := pgtest.FunctionURL(t, "install")
	b.owner = openPool(t, ownerURL)
	pool := openPool(t, fnURL)

	var h atomic.Pointer[http.Handler]
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(b.srv.Close)
	b.callback = b.srv.URL + "/v1/installs/callback"

	log := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{LogtoEndpoint: endpoint, APIResource: idp.DefaultAPIResource, Keys: b.keys,
		InstallCallbackURL: b.callback, FrontendURL: frontend, TokenTTL: time.Hour}
	tokenClient := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(tokenClient.CloseIdleConnections)
	b.svc, err = New(cfg, pool, b.lc, tokenClient, log, b.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource, Logger: log, Clock: b.clk.Now}, b.hc)
	if err != nil {
		t.Fatal(err)
	}
	handler, err := runtime.NewHandler(runtime.Function{Name: "install", HTTP: b.svc.Routes(v)}, runtime.Deps{Logger: log, InsecureEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	h.Store(&handler)
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

// integration is a registered integration with its Logto application (AppID, Secret: the
// consent's OIDC client) and its integration client (ClientID, ClientSecret: machine to
// machine, the client_id of its own tokens).
type integration struct {
	ID, Name, AppID, Secret string
	ClientID, ClientSecret  string
}

type listingOpts struct {
	published bool
	developer string
	pricing   string // default free
	scopes    []string
}

// integration registers an application and an integration client at the identity server and
// the integration's row, as the registry does (secret sealed, bound to the row's id).
func (b *bundle) integration(t *testing.T, name string, o listingOpts) integration {
	t.Helper()
	ctx := context.Background()
	app, err := b.lc.CreateApplication(ctx, logto.NewApplication{Name: name, RedirectURIs: []string{b.callback}})
	if err != nil {
		t.Fatal(err)
	}
	if o.scopes == nil {
		o.scopes = []string{"profile:read", "dashboard:read"}
	}
	if err := b.lc.AssignUserConsentScopes(ctx, app.ID, logto.ConsentScopes{ResourceScopes: o.scopes}); err != nil {
		t.Fatal(err)
	}
	client, err := b.lc.CreateM2M(ctx, logto.NewM2M{Name: "client " + name, Resource: idp.DefaultAPIResource})
	if err != nil {
		t.Fatal(err)
	}
	if o.developer == "" {
		o.developer = "dev_1"
	}
	if o.pricing == "" {
		o.pricing = "free"
	}
	price := 0
	if o.pricing != "free" {
		price = 500
	}
	id := uuid.NewString()
	secret, err := b.keys.Seal([]byte(app.Secret), secretAAD(id))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(map[string]any{"scopes": o.scopes})
	b.exec(t, `INSERT INTO integrations (id, developer_id, logto_app_id, client_secret_sealed, name, display_name, type, base_url,
		manifest, pricing_model, price_cents, is_published, published_at, m2m_app_id, m2m_role_id)
		VALUES ($1, $2, $3, $4, $5, $5, 'widget', 'https://example.test', $6, $7, $8, $9, CASE WHEN $9 THEN now() END, $10, $11)`,
		id, o.developer, app.ID, secret, name, m, o.pricing, price, o.published, client.AppID, client.RoleID)
	return integration{ID: id, Name: name, AppID: app.ID, Secret: app.Secret, ClientID: client.AppID, ClientSecret: client.Secret}
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.owner.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.owner.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// userToken is a token the frontend would hold for user.
func (b *bundle) userToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: user, ClientID: "frontend", Scopes: []string{"profile:read"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// clientToken is an integration's own token as it gets one: the client credentials grant of
// its integration client at the identity server, for the API resource.
func (b *bundle) clientToken(t *testing.T, in integration) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {idp.DefaultAPIResource}}
	req, err := http.NewRequest(http.MethodPost, b.idp.Issuer()+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(in.ClientID), url.QueryEscape(in.ClientSecret))
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("client credentials of %s's integration client: %d %v", in.Name, resp.StatusCode, err)
	}
	return tok.AccessToken
}

// appToken is a token minted with sub and client_id appID (what no client-credentials grant
// of a web application gives, for the refusals).
func (b *bundle) appToken(t *testing.T, appID string) string {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: appID, ClientID: appID})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (b *bundle) do(t *testing.T, method, path, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
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
	return resp.StatusCode, out, resp.Header
}

// start is POST /v1/installs; it fails the test unless the status is want.
func (b *bundle) start(t *testing.T, token string, body any, want int) StartResponse {
	t.Helper()
	st, out, _ := b.do(t, "POST", "/v1/installs", token, body)
	if st != want {
		t.Fatalf("POST /v1/installs %v: %d %s, want %d", body, st, out, want)
	}
	var r StartResponse
	if st < 300 {
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func decodeStart(t *testing.T, out []byte) StartResponse {
	var r StartResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Errorf("start answer %s: %v", out, err)
	}
	return r
}

// consent follows the consent URL as user in a browser and returns the callback URL the
// identity server sends the browser to.
func (b *bundle) consent(t *testing.T, consentURL, user string, allow bool) string {
	t.Helper()
	loc, err := idptest.Follow(consentURL, b.callback, user, allow)
	if err != nil {
		t.Fatal(err)
	}
	return loc.String()
}

// callback is the browser arriving at the callback; it returns the frontend redirect's query.
func (b *bundle) callbackAt(t *testing.T, u string) url.Values {
	t.Helper()
	resp, err := b.hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, frontend+"?") {
		t.Fatalf("callback answered %d, Location %q", resp.StatusCode, loc)
	}
	lu, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return lu.Query()
}

// state is what the tests check was (or was not) recorded.
type state struct {
	Installs, Tokens, Completed, Requested, InstallCount int
}

func (b *bundle) state(t *testing.T, in integration) state {
	t.Helper()
	var s state
	err := b.owner.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM user_integrations WHERE integration_id = $1),
		(SELECT count(*) FROM install_tokens),
		(SELECT count(*) FROM outbox WHERE type = 'com.myscrollr.connect.install.completed'),
		(SELECT count(*) FROM outbox WHERE type = 'com.myscrollr.connect.install.requested'),
		(SELECT install_count FROM integrations WHERE id = $1)`, in.ID).
		Scan(&s.Installs, &s.Tokens, &s.Completed, &s.Requested, &s.InstallCount)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
