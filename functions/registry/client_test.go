package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
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

// verifyClient checks that the integration client's client credentials give a token of its
// own for the API resource carrying exactly scopes, that the main application gets none, and
// that a wrong secret gets none.
func (b bundle) verifyClient(t *testing.T, reg Registered, scopes ...string) {
	t.Helper()
	c := reg.IntegrationClient
	tok, oerr := b.clientToken(t, c.ClientID, c.ClientSecret)
	if tok == "" {
		t.Fatalf("client credentials of the integration client: %s", oerr)
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: b.idp.Issuer(), Audience: idp.DefaultAPIResource, Logger: discard()}, b.hc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), tok)
	if err != nil || p.ClientID != c.ClientID || !slices.Equal(p.Scopes, scopes) {
		t.Fatalf("integration client's token: %+v %v; want client %s with scopes %v", p, err, c.ClientID, scopes)
	}
	// The main application (third party, web) gets no such token, and a wrong secret none.
	if tok, _ := b.clientToken(t, reg.ClientID, reg.ClientSecret); tok != "" {
		t.Fatal("the main application obtained a client-credentials token")
	}
	if tok, _ := b.clientToken(t, c.ClientID, c.ClientSecret+"x"); tok != "" {
		t.Fatal("a wrong secret obtained a token")
	}
}

// storedClient returns integrations.m2m_app_id and m2m_role_id of name.
func (b bundle) storedClient(t *testing.T, name string) (appID, roleID string) {
	t.Helper()
	if err := b.owner.QueryRow(context.Background(), `SELECT coalesce(m2m_app_id, ''), coalesce(m2m_role_id, '')
		FROM integrations WHERE name = $1`, name).Scan(&appID, &roleID); err != nil {
		t.Fatal(err)
	}
	return appID, roleID
}

// Every registration makes an integration client: a push source's carries data:write (what
// POST /v1/ingest requires; functions/ingest's TestPushCredentialsFromLogto pushes with such a
// token), anything else's no scope; both are stored and answered once.
func TestRegisterCreatesIntegrationClient(t *testing.T) {
	t.Parallel()
	b := start(t)
	for _, tc := range []struct {
		name   string
		change func(map[string]any)
		scopes []string
	}{
		{"coin-prices", pushManifest, []string{"data:write"}},
		{"world-clock", nil, nil},
	} {
		reg := b.register(t, "dev_alice", tc.name, tc.change)
		c := reg.IntegrationClient
		if c.ClientID == "" || c.ClientSecret == "" || c.ClientID == reg.ClientID {
			t.Fatalf("%s: integration client %+v (main application %s)", tc.name, c, reg.ClientID)
		}
		if c.Scope != strings.Join(tc.scopes, " ") || c.Resource != idp.DefaultAPIResource {
			t.Fatalf("%s: scope and resource: %+v", tc.name, c)
		}
		appID, roleID := b.storedClient(t, tc.name)
		if appID != c.ClientID || roleID == "" {
			t.Fatalf("%s: stored m2m_app_id %q m2m_role_id %q, answered %q", tc.name, appID, roleID, c.ClientID)
		}
		if code := b.mgmt(t, "/api/roles/"+url.PathEscape(roleID), nil); code != 200 {
			t.Fatalf("%s: GET the integration client's role: %d", tc.name, code)
		}
		b.verifyClient(t, reg, tc.scopes...)
		// The secret is shown once: reading the integration does not show it.
		r := b.do(t, "GET", "/v1/developer/integrations/"+tc.name, b.dev(t, "dev_alice"), nil)
		if r.Status != 200 || strings.Contains(string(r.Body), c.ClientSecret) {
			t.Fatalf("%s: get: %d %s", tc.name, r.Status, r.Body)
		}
	}
	if n := b.count(t, `SELECT count(DISTINCT m2m_app_id) FROM integrations WHERE m2m_app_id IS NOT NULL AND m2m_role_id IS NOT NULL`); n != 2 {
		t.Fatalf("%d integrations with their own integration client, want 2", n)
	}
}

// clientApps records the integration clients made and deleted through it, and can make
// creating them fail.
type clientApps struct {
	Apps
	after   func() // runs after the main application is created
	fail    bool   // CreateM2M fails
	made    []logto.M2M
	deleted []logto.M2M
	apps    []string // main applications created
}

func (r *clientApps) CreateApplication(ctx context.Context, app logto.NewApplication) (*logto.Application, error) {
	a, err := r.Apps.CreateApplication(ctx, app)
	if err == nil {
		r.apps = append(r.apps, a.ID)
		if r.after != nil {
			r.after()
		}
	}
	return a, err
}

func (r *clientApps) CreateM2M(ctx context.Context, m logto.NewM2M) (*logto.M2M, error) {
	if r.fail {
		return nil, errors.New("injected: the identity provider is down")
	}
	out, err := r.Apps.CreateM2M(ctx, m)
	if err == nil {
		r.made = append(r.made, *out)
	}
	return out, err
}

func (r *clientApps) DeleteM2M(ctx context.Context, m logto.M2M) error {
	r.deleted = append(r.deleted, m)
	return r.Apps.DeleteM2M(ctx, m)
}

// A registration that fails after the integration client was made deletes it with the main
// application: Logto keeps no application or role without an integration.
func TestRegisterFailureDeletesIntegrationClient(t *testing.T) {
	t.Parallel()
	rec := &clientApps{}
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
		t.Fatalf("integration clients made %+v, deleted %+v", rec.made, rec.deleted)
	}
	ctx := context.Background()
	if _, err := b.lc.GetApplication(ctx, rec.made[0].AppID); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("the integration client still exists: %v", err)
	}
	if _, err := b.lc.GetRole(ctx, rec.made[0].RoleID); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("the integration client's role still exists: %v", err)
	}
	if _, err := b.lc.GetApplication(ctx, rec.apps[0]); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("the main application still exists: %v", err)
	}
}

// When the integration client cannot be made, the answer is 503, the main application is
// deleted and nothing is written.
func TestRegisterIntegrationClientUnavailable(t *testing.T) {
	t.Parallel()
	rec := &clientApps{fail: true}
	b := startWith(t, func(a Apps) Apps { rec.Apps = a; return rec }, nil)
	r := b.do(t, "POST", "/v1/developer/integrations", b.dev(t, "dev_alice"), b.manifestFor("world-clock", "1.0.0", nil))
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("integration client unavailable: %d %s", r.Status, r.Body)
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
