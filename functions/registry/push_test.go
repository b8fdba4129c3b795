package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/logto"
)

// pushManifest turns the bundle's widget manifest into a push data source's.
func pushManifest(m map[string]any) {
	m["type"] = "data_source"
	m["delivery_mode"] = "push"
	m["scopes"] = []string{"data:write"}
	delete(m, "redirect_uris")
	m["data_source"] = map[string]any{"streams": []any{map[string]any{
		"name": "prices", "key": []string{"coin"},
		"schema": map[string]any{"type": "object", "required": []string{"coin"}, "properties": map[string]any{"coin": map[string]any{"type": "string"}}},
	}}}
}

// clientToken runs the client credentials grant for the API resource and returns the
// identity server's answer: the access token, or the OAuth error.
func (b bundle) clientToken(t *testing.T, clientID, secret string) (token, oauthErr string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {idp.DefaultAPIResource}}
	req, _ := http.NewRequest("POST", b.idp.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.AccessToken, out.Error
}

func TestRegisterPushSourceCreatesPushCredentials(t *testing.T) {
	t.Parallel()
	b := start(t)
	reg := b.register(t, "dev_alice", "coin-prices", pushManifest)
	if reg.Push == nil || reg.Push.ClientID == "" || reg.Push.ClientSecret == "" || reg.Push.ClientID == reg.ClientID {
		t.Fatalf("push credentials: %+v (main application %s)", reg.Push, reg.ClientID)
	}
	if reg.Push.Scope != "data:write" || reg.Push.Resource != idp.DefaultAPIResource {
		t.Fatalf("push scope and resource: %+v", reg.Push)
	}
	var clientID, roleID string
	if err := b.owner.QueryRow(context.Background(), `SELECT coalesce(push_client_id, ''), coalesce(push_role_id, '')
		FROM integrations WHERE name = 'coin-prices'`).Scan(&clientID, &roleID); err != nil {
		t.Fatal(err)
	}
	if clientID != reg.Push.ClientID || roleID == "" {
		t.Fatalf("stored push_client_id %q push_role_id %q, answered %q", clientID, roleID, reg.Push.ClientID)
	}
	if code := b.mgmt(t, "/api/roles/"+url.PathEscape(roleID), nil); code != 200 {
		t.Fatalf("GET the push role: %d", code)
	}

	// The push application's client credentials give a token of its own carrying data:write,
	// which is what POST /v1/ingest requires (functions/ingest's TestPushCredentialsFromLogto
	// pushes with such a token).
	tok, oerr := b.clientToken(t, reg.Push.ClientID, reg.Push.ClientSecret)
	if tok == "" {
		t.Fatalf("client credentials of the push application: %s", oerr)
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: b.idp.Issuer(), Audience: idp.DefaultAPIResource, Logger: discard()}, b.hc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), tok)
	if err != nil || p.ClientID != reg.Push.ClientID || !p.Has("data:write") || p.Has("integrations:write") || p.Has("dashboard:read") {
		t.Fatalf("push token: %+v %v", p, err)
	}
	// The main application (third party, web) gets no such token, and a wrong secret none.
	if tok, _ := b.clientToken(t, reg.ClientID, reg.ClientSecret); tok != "" {
		t.Fatal("the main application obtained a client-credentials token")
	}
	if tok, _ := b.clientToken(t, reg.Push.ClientID, reg.Push.ClientSecret+"x"); tok != "" {
		t.Fatal("a wrong push secret obtained a token")
	}

	// Anything that is not a push source gets no push credentials.
	w := b.register(t, "dev_alice", "world-clock", nil)
	if w.Push != nil {
		t.Fatalf("a widget got push credentials: %+v", w.Push)
	}
	r := b.do(t, "GET", "/v1/developer/integrations/world-clock", b.dev(t, "dev_alice"), nil)
	if r.Status != 200 {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	if n := b.count(t, `SELECT count(*) FROM integrations WHERE push_client_id IS NOT NULL OR push_role_id IS NOT NULL`); n != 1 {
		t.Fatalf("%d integrations with push credentials, want 1", n)
	}
}

// pushApps records the push credentials made and deleted through it, and can make creating
// them fail.
type pushApps struct {
	Apps
	after   func() // runs after the main application is created
	fail    bool   // CreateM2M fails
	made    []logto.M2M
	deleted []logto.M2M
	apps    []string // main applications created
}

func (r *pushApps) CreateApplication(ctx context.Context, app logto.NewApplication) (*logto.Application, error) {
	a, err := r.Apps.CreateApplication(ctx, app)
	if err == nil {
		r.apps = append(r.apps, a.ID)
		if r.after != nil {
			r.after()
		}
	}
	return a, err
}

func (r *pushApps) CreateM2M(ctx context.Context, m logto.NewM2M) (*logto.M2M, error) {
	if r.fail {
		return nil, errors.New("injected: the identity provider is down")
	}
	out, err := r.Apps.CreateM2M(ctx, m)
	if err == nil {
		r.made = append(r.made, *out)
	}
	return out, err
}

func (r *pushApps) DeleteM2M(ctx context.Context, m logto.M2M) error {
	r.deleted = append(r.deleted, m)
	return r.Apps.DeleteM2M(ctx, m)
}

// A registration that fails after the push credentials were made deletes them with the main
// application: Logto keeps no application or role without an integration.
func TestRegisterPushFailureDeletesPushCredentials(t *testing.T) {
	t.Parallel()
	rec := &pushApps{}
	var b bundle
	b = startWith(t, func(a Apps) Apps {
		rec.Apps = a
		rec.after = func() {
			b.exec(t, `INSERT INTO integrations (developer_id, name, display_name, type, base_url) VALUES ('dev_bob', 'coin-prices', 'C', 'widget', 'https://c.example')`)
		}
		return rec
	}, nil)
	r := b.do(t, "POST", "/v1/developer/integrations", b.dev(t, "dev_alice"), b.manifestFor("coin-prices", "1.0.0", pushManifest))
	if r.Status != http.StatusConflict || r.fields(t)["/name"] != "taken" {
		t.Fatalf("lost race: %d %s", r.Status, r.Body)
	}
	if len(rec.made) != 1 || len(rec.deleted) != 1 || rec.deleted[0] != rec.made[0] {
		t.Fatalf("push credentials made %+v, deleted %+v", rec.made, rec.deleted)
	}
	ctx := context.Background()
	if _, err := b.lc.GetApplication(ctx, rec.made[0].AppID); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("the push application still exists: %v", err)
	}
	if _, err := b.lc.GetRole(ctx, rec.made[0].RoleID); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("the push role still exists: %v", err)
	}
	if _, err := b.lc.GetApplication(ctx, rec.apps[0]); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("the main application still exists: %v", err)
	}
}

// When the push credentials cannot be made, the answer is 503, the main application is
// deleted and nothing is written.
func TestRegisterPushCredentialsUnavailable(t *testing.T) {
	t.Parallel()
	rec := &pushApps{fail: true}
	b := startWith(t, func(a Apps) Apps { rec.Apps = a; return rec }, nil)
	r := b.do(t, "POST", "/v1/developer/integrations", b.dev(t, "dev_alice"), b.manifestFor("coin-prices", "1.0.0", pushManifest))
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("push credentials unavailable: %d %s", r.Status, r.Body)
	}
	if len(rec.apps) != 1 {
		t.Fatalf("main applications created: %v", rec.apps)
	}
	if _, err := b.lc.GetApplication(context.Background(), rec.apps[0]); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("the main application still exists: %v", err)
	}
	if n := b.count(t, `SELECT count(*) FROM integrations`) + b.count(t, `SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("%d rows written", n)
	}
}
