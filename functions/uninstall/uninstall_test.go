package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var testNow = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

const redirect = "https://integration.example/callback"

type bundle struct {
	pool   *pgxpool.Pool
	idp    *idp.Server
	lc     *logto.Client
	svc    *Service
	events *httptest.Server // the function as the runtime serves it (HTTP routes and events)
	v      *auth.Verifier
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func setupUninstall(t *testing.T) bundle {
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
	lc, err := logto.New(logto.Config{Endpoint: strings.TrimSuffix(s.Issuer(), "/oidc"), AppID: "m2m", AppSecret: "m2m-secret",
		HTTPClient: hc, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource, Logger: discard()}, hc)
	if err != nil {
		t.Fatal(err)
	}
	b := bundle{pool: pgtest.Pool(t), idp: s, lc: lc, v: v}
	b.svc, b.events = b.serve(t, lc)
	return b
}

// serve runs the function's HTTP routes and event handler behind the runtime's HTTP stack.
func (b bundle) serve(t *testing.T, r Revoker) (*Service, *httptest.Server) {
	t.Helper()
	return b.serveWith(t, b.pool, r)
}

// serveWith is serve with the function's queries on pool.
func (b bundle) serveWith(t *testing.T, pool *pgxpool.Pool, r Revoker) (*Service, *httptest.Server) {
	t.Helper()
	svc, err := New(pool, r, discard(), func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	h, err := runtime.NewHandler(runtime.Function{Name: "uninstall", HTTP: svc.Routes(b.v), Events: svc.HandleEvent},
		runtime.Deps{Logger: discard(), InsecureEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return svc, srv
}

// app creates a Logto application for an integration and returns its id.
func (b bundle) app(t *testing.T, name string) string {
	t.Helper()
	a, err := b.lc.CreateApplication(context.Background(), logto.NewApplication{Name: name, RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// consent signs user in at the identity server and allows clientID, which records a grant.
func (b bundle) consent(t *testing.T, clientID, user string) {
	t.Helper()
	if _, err := idptest.Consent(b.idp.Issuer(), clientID, redirect, user); err != nil {
		t.Fatal(err)
	}
}

// grantApps lists the applications user has a grant to, sorted.
func (b bundle) grantApps(t *testing.T, user string) []string {
	t.Helper()
	grants, err := b.lc.ListGrants(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range grants {
		out = append(out, g.Application.ID)
	}
	slices.Sort(out)
	return out
}

func (b bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (b bundle) integration(t *testing.T, name string, appID *string) string {
	t.Helper()
	var id string
	err := b.pool.QueryRow(context.Background(), `INSERT INTO integrations
		(developer_id, logto_app_id, name, display_name, type, base_url, install_count, is_published, published_at)
		VALUES ('dev_1', $1, $2, $2, 'widget', 'https://example.test', 0, true, now()) RETURNING id::text`, appID, name).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (b bundle) install(t *testing.T, user, integrationID string) {
	t.Helper()
	b.exec(t, `INSERT INTO user_integrations (user_id, integration_id) VALUES ($1, $2)`, user, integrationID)
	b.exec(t, `UPDATE integrations SET install_count = install_count + 1 WHERE id = $1`, integrationID)
}

func (b bundle) review(t *testing.T, user, integrationID string, rating int) {
	t.Helper()
	b.exec(t, `INSERT INTO integration_reviews (user_id, integration_id, rating) VALUES ($1, $2, $3)`, user, integrationID, rating)
	b.exec(t, `UPDATE integrations i SET rating_count = r.n, rating_avg = r.a
		FROM (SELECT count(*) n, round(avg(rating), 2) a FROM integration_reviews WHERE integration_id = $1) r WHERE i.id = $1`, integrationID)
}

type snapshot struct {
	Installs, Reviews, Outbox, Processed int
	Ratings                              map[string]string // integration id -> "avg/count/installs"
}

func (b bundle) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	err := b.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM user_integrations), (SELECT count(*) FROM integration_reviews),
		(SELECT count(*) FROM outbox), (SELECT count(*) FROM processed_events)`).Scan(&s.Installs, &s.Reviews, &s.Outbox, &s.Processed)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := b.pool.Query(ctx, `SELECT id::text, rating_avg::text || '/' || rating_count || '/' || install_count FROM integrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	s.Ratings = map[string]string{}
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		s.Ratings[id] = v
	}
	return s
}

func userDeletedEvent(t *testing.T, id, user string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource(events.Source("logto-webhook"))
	e.SetType(events.TypeUserDeleted)
	if err := e.SetData(events.DataContentType, events.UserDeleted{UserID: user, DeletedAt: testNow}); err != nil {
		t.Fatal(err)
	}
	return e
}

// post delivers e to the function over HTTP in binary content mode, as Knative does.
func post(t *testing.T, srv *httptest.Server, e event.Event) int {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/events", strings.NewReader(string(e.Data())))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", e.ID())
	req.Header.Set("Ce-Source", e.Source())
	req.Header.Set("Ce-Type", e.Type())
	req.Header.Set("Content-Type", e.DataContentType())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type fixture struct {
	appA, appB, appC string // alice installed A and B; C is another app alice consented to
	intA, intB, intC string
}

func (b bundle) seed(t *testing.T) fixture {
	t.Helper()
	f := fixture{appA: b.app(t, "Crypto Ticker"), appB: b.app(t, "Weather"), appC: b.app(t, "Scores")}
	f.intA, f.intB, f.intC = b.integration(t, "crypto-ticker", &f.appA), b.integration(t, "weather", &f.appB), b.integration(t, "scores", &f.appC)
	for _, app := range []string{f.appA, f.appB, f.appC} {
		b.consent(t, app, "alice")
	}
	b.consent(t, f.appA, "bob")
	b.install(t, "alice", f.intA)
	b.install(t, "alice", f.intB)
	b.install(t, "bob", f.intA)
	b.review(t, "alice", f.intA, 5)
	b.review(t, "alice", f.intB, 2)
	b.review(t, "bob", f.intA, 2)
	return f
}

func TestUserDeletedRemovesInstallsReviewsAndGrants(t *testing.T) {
	b := setupUninstall(t)
	f := b.seed(t)
	if got := b.snapshot(t); got.Ratings[f.intA] != "3.50/2/2" || got.Ratings[f.intB] != "2.00/1/1" {
		t.Fatalf("seed ratings %v", got.Ratings)
	}

	ev := userDeletedEvent(t, "0190f5f4-0000-7000-8000-000000000001", "alice")
	if status := post(t, b.events, ev); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}

	got := b.snapshot(t)
	if got.Installs != 1 || got.Reviews != 1 || got.Outbox != 2 || got.Processed != 1 {
		t.Fatalf("after: %+v", got)
	}
	if got.Ratings[f.intA] != "2.00/1/1" || got.Ratings[f.intB] != "0.00/0/0" || got.Ratings[f.intC] != "0.00/0/0" {
		t.Fatalf("ratings after: %v", got.Ratings)
	}
	if want := []string{f.appC}; !slices.Equal(b.grantApps(t, "alice"), want) {
		t.Fatalf("alice's grants %v, want only %v", b.grantApps(t, "alice"), want)
	}
	if want := []string{f.appA}; !slices.Equal(b.grantApps(t, "bob"), want) {
		t.Fatalf("bob's grants %v, want %v", b.grantApps(t, "bob"), want)
	}

	rows, err := b.pool.Query(context.Background(), `SELECT aggregatetype, aggregateid, type, source, payload FROM outbox ORDER BY aggregateid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var aggType, aggID, typ, source string
		var payload []byte
		if err := rows.Scan(&aggType, &aggID, &typ, &source, &payload); err != nil {
			t.Fatal(err)
		}
		var d events.InstallRevoked
		if err := json.Unmarshal(payload, &d); err != nil {
			t.Fatal(err)
		}
		if typ != events.TypeInstallRevoked || source != events.Source("uninstall") || aggType != "install" ||
			aggID != events.InstallKey(d.IntegrationID, d.UserID) || d.UserID != "alice" || d.Reason != events.RevokeUserDeleted ||
			d.InstallID == "" || !d.RevokedAt.Equal(testNow) {
			t.Fatalf("outbox row %s %s %s %s %+v", aggType, aggID, typ, source, d)
		}
		seen[d.IntegrationID+"/"+d.Name] = true
	}
	if !seen[f.intA+"/crypto-ticker"] || !seen[f.intB+"/weather"] {
		t.Fatalf("install.revoked for %v", seen)
	}

	// Redelivery: nothing changes.
	if status := post(t, b.events, ev); status != http.StatusOK {
		t.Fatalf("redelivery status %d", status)
	}
	again := b.snapshot(t)
	if again.Installs != got.Installs || again.Reviews != got.Reviews || again.Outbox != got.Outbox || again.Processed != got.Processed {
		t.Fatalf("redelivery changed rows: %+v -> %+v", got, again)
	}
}

func TestUserWithoutInstalls(t *testing.T) {
	b := setupUninstall(t)
	if err := b.svc.HandleEvent(context.Background(), userDeletedEvent(t, "e-1", "nobody")); err != nil {
		t.Fatal(err)
	}
	if s := b.snapshot(t); s.Processed != 1 || s.Outbox != 0 {
		t.Fatalf("%+v", s)
	}
}

func TestLogtoUnreachableIsRetried(t *testing.T) {
	b := setupUninstall(t)
	f := b.seed(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	lc, err := logto.New(logto.Config{Endpoint: dead, AppID: "m2m", AppSecret: "m2m-secret", MaxAttempts: 1, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	svc, srv := b.serve(t, lc)
	before := b.snapshot(t)

	ev := userDeletedEvent(t, "e-2", "alice")
	err = svc.HandleEvent(context.Background(), ev)
	if err == nil || events.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if status := post(t, srv, ev); status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 (retried)", status)
	}
	after := b.snapshot(t)
	if after.Installs != before.Installs || after.Reviews != before.Reviews || after.Outbox != 0 || after.Processed != 0 {
		t.Fatalf("rows changed while Logto was down: %+v -> %+v", before, after)
	}
	if len(b.grantApps(t, "alice")) != 3 {
		t.Fatal("grants changed")
	}

	// Once Logto is back the same event goes through.
	if status := post(t, b.events, ev); status != http.StatusOK {
		t.Fatalf("status %d after recovery", status)
	}
	if s := b.snapshot(t); s.Installs != 1 || s.Ratings[f.intA] != "2.00/1/1" {
		t.Fatalf("after recovery %+v", s)
	}
}

func TestPermanentErrors(t *testing.T) {
	b := setupUninstall(t)
	other := event.New()
	other.SetID("e-3")
	other.SetSource(events.Source("stripe-webhook"))
	other.SetType(events.TypePaymentFailed)
	_ = other.SetData(events.DataContentType, map[string]string{"user_id": "alice"})
	noUser := event.New()
	noUser.SetID("e-4")
	noUser.SetSource(events.Source("logto-webhook"))
	noUser.SetType(events.TypeUserDeleted)
	_ = noUser.SetData(events.DataContentType, map[string]string{"deleted_at": "2026-09-01T12:00:00Z"})
	notJSON := event.New()
	notJSON.SetID("e-5")
	notJSON.SetSource(events.Source("logto-webhook"))
	notJSON.SetType(events.TypeUserDeleted)
	_ = notJSON.SetData(events.DataContentType, []byte(`{"user_id": 12}`))
	for name, e := range map[string]event.Event{"unknown type": other, "no user_id": noUser, "user_id number": notJSON} {
		t.Run(name, func(t *testing.T) {
			if err := b.svc.HandleEvent(context.Background(), e); !events.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
			if status := post(t, b.events, e); status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400 (dead letter)", status)
			}
		})
	}
	if s := b.snapshot(t); s.Processed != 0 {
		t.Fatalf("%+v", s)
	}
}
