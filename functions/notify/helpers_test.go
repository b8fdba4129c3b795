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
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/webhook"
	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
	"github.com/myscrollr/connect/shared/ssrf"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var start = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

// clock is the test clock: every due time, lease and signature timestamp reads it.
type clock struct{ ns atomic.Int64 }

func newClock() *clock                   { c := &clock{}; c.ns.Store(start.UnixNano()); return c }
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func seedKey(t testing.TB, id string, b byte) string {
	t.Helper()
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

// received is one request the test integration got.
type received struct {
	Path      string
	Header    http.Header
	Body      []byte
	Verified  webhook.Verified
	VerifyErr error
}

// integ is a test integration on 127.0.0.1: it verifies each delivery with the keys it is
// given (the published ones), answers status, and keeps what it received.
type integ struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []received
	keys   []webhook.PublicKey
	clock  *clock
	gate   chan struct{} // when set, each delivery waits until it is closed
}

func (in *integ) handler(w http.ResponseWriter, r *http.Request) {
	if in.gate != nil {
		<-in.gate
	}
	body, _ := io.ReadAll(r.Body)
	rec := received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	in.mu.Lock()
	rec.Verified, rec.VerifyErr = webhook.Verify(r.Header, body, in.keys, in.clock.now())
	in.got = append(in.got, rec)
	in.mu.Unlock()
	w.WriteHeader(int(in.status.Load()))
}

func (in *integ) received() []received {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]received(nil), in.got...)
}

type bundle struct {
	owner, pool *pgxpool.Pool
	idp         *idp.Server
	svc         *Service
	srv         *httptest.Server // the function as the runtime serves it
	clock       *clock
	cfg         Config
	logs        *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func openPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// setupNotify builds a database (notify connects as its own role), the development identity
// server, and the function behind the runtime's handler, signing with keys.
func setupNotify(t testing.TB, keys ...string) *bundle {
	t.Helper()
	if len(keys) == 0 {
		keys = []string{seedKey(t, "k1", 1)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	ownerURL, fnURL := pgtest.FunctionURL(t, Name)
	b := &bundle{owner: openPool(t, ownerURL), pool: openPool(t, fnURL), idp: s, clock: newClock(), logs: &syncBuffer{}}
	signing, err := webhook.ParsePrivateKeys(strings.Join(keys, ","))
	if err != nil {
		t.Fatal(err)
	}
	b.cfg = Config{DatabaseURL: fnURL, LogtoEndpoint: strings.TrimSuffix(s.Issuer(), "/oidc"), APIResource: idp.DefaultAPIResource,
		SigningKeys: signing, Allow: []ssrf.Destination{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}},
		Timeout: 5 * time.Second, PerHost: 4, Concurrency: 16, Batch: 100}
	log := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.svc = b.service(t, log)
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource, Logger: log}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := runtime.NewHandler(runtime.Function{Name: Name, HTTP: b.svc.Routes(v), Events: b.svc.HandleEvent},
		runtime.Deps{Logger: log, InsecureEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b
}

// service is another replica on the same database and clock (jitter factor exactly 1).
func (b *bundle) service(t testing.TB, log *slog.Logger) *Service {
	t.Helper()
	svc, err := New(b.pool, b.cfg, log, b.clock.now, func() float64 { return 0.5 })
	if err != nil {
		t.Fatal(err)
	}
	svc.syncFirst = true // these tests count deliveries as soon as HandleEvent returns
	t.Cleanup(svc.Close)
	return svc
}

// publishedKeys fetches GET /v1/lifecycle/keys, as an integration would.
func (b *bundle) publishedKeys(t testing.TB) []webhook.PublicKey {
	t.Helper()
	resp, err := http.Get(b.srv.URL + "/v1/lifecycle/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("keys: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	keys, err := webhook.ParseKeySet(body)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// integration starts a test integration verifying with the published keys and registers it
// (an app, HTTP lifecycle unless kind says otherwise) owned by developer. Its main application
// is "app-"+name, its integration client (the client_id of its own tokens) "client-"+name.
func (b *bundle) integration(t testing.TB, name, developer, typ, manifest string) (*integ, string) {
	t.Helper()
	in := &integ{keys: b.publishedKeys(t), clock: b.clock}
	in.status.Store(http.StatusNoContent)
	in.srv = httptest.NewServer(http.HandlerFunc(in.handler))
	t.Cleanup(in.srv.Close)
	var mode any
	if typ == "data_source" {
		mode = "push"
	}
	var id string
	if err := b.owner.QueryRow(context.Background(), `INSERT INTO integrations
		(developer_id, logto_app_id, m2m_app_id, m2m_role_id, name, display_name, type, delivery_mode, base_url, manifest,
		 is_published, published_at)
		VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, true, now()) RETURNING id::text`,
		developer, "app-"+name, "client-"+name, "role-"+name, name, typ, mode, in.srv.URL, manifest).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return in, id
}

func installCompleted(t testing.TB, integrationID, name, user string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(events.Source("install"))
	e.SetType(events.TypeInstallCompleted)
	if err := e.SetData(events.DataContentType, events.InstallCompleted{InstallID: uuid.NewString(), IntegrationID: integrationID,
		Name: name, UserID: user, Scopes: []string{"profile:read"}, InstalledAt: start}); err != nil {
		t.Fatal(err)
	}
	return e
}

func installRevoked(t testing.TB, integrationID, name, user, installID, reason string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(events.Source("uninstall"))
	e.SetType(events.TypeInstallRevoked)
	if err := e.SetData(events.DataContentType, events.InstallRevoked{InstallID: installID, IntegrationID: integrationID,
		Name: name, UserID: user, Reason: reason, RevokedAt: start}); err != nil {
		t.Fatal(err)
	}
	return e
}

// post delivers e to the function in binary content mode, as Knative does.
func (b *bundle) post(t testing.TB, e event.Event) int {
	t.Helper()
	req, _ := http.NewRequest("POST", b.srv.URL+"/events", bytes.NewReader(e.Data()))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", e.ID())
	req.Header.Set("Ce-Source", e.Source())
	req.Header.Set("Ce-Type", e.Type())
	req.Header.Set("Content-Type", e.DataContentType())
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// get calls a route with a bearer token and decodes the JSON answer into out.
func (b *bundle) call(t testing.TB, method, path, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, b.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
	return resp.StatusCode
}

func (b *bundle) developerToken(t testing.TB, dev string) string {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: dev, Scopes: []string{auth.ScopeIntegrationsWrite}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// integrationToken is a client-credentials token of the client clientID (sub and client_id).
func (b *bundle) integrationToken(t testing.TB, clientID string) string {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: clientID, ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (b *bundle) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.owner.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

const appHTTP = `{"app":{"lifecycle":"http"}}`
