package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/webhook"
	"github.com/myscrollr/connect/infra/local/stack"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest"
)

// testIntegration is an app integration as a developer writes one: it fetches the platform's
// public lifecycle keys (nothing shared in advance), verifies every delivery's Standard
// Webhooks signature with them, and handles each webhook-id once.
type testIntegration struct {
	t       *testing.T
	keysURL string
	hc      *http.Client // fetches the keys from the front door, held to the description
	srv     *httptest.Server

	mu       sync.Mutex
	keys     []webhook.PublicKey
	seen     map[string]int // webhook-id -> deliveries received
	received []lifecycleEvent
	refused  int
}

type lifecycleEvent struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func newTestIntegration(t *testing.T, keysURL string) *testIntegration {
	ti := &testIntegration{t: t, keysURL: keysURL, seen: map[string]int{},
		hc: &http.Client{Timeout: 30 * time.Second, Transport: apiTransport(t)}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("POST /lifecycle/{verb}", ti.lifecycle)
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIntegration) fetchKeys() ([]webhook.PublicKey, error) {
	resp, err := ti.hc.Get(ti.keysURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, webhook.MaxKeySetBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", ti.keysURL, resp.StatusCode, body)
	}
	return webhook.ParseKeySet(body)
}

func (ti *testIntegration) lifecycle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	ti.mu.Lock()
	keys := ti.keys
	ti.mu.Unlock()
	if keys == nil {
		k, err := ti.fetchKeys()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		ti.mu.Lock()
		ti.keys, keys = k, k
		ti.mu.Unlock()
	}
	v, err := webhook.Verify(r.Header, body, keys, time.Now())
	if err != nil {
		ti.mu.Lock()
		ti.refused++
		ti.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var e lifecycleEvent
	if err := json.Unmarshal(body, &e); err != nil || e.ID != v.ID || events.LifecycleVerb(e.Type) != r.PathValue("verb") {
		http.Error(w, "not the lifecycle event the path and signature say", http.StatusBadRequest)
		return
	}
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.seen[v.ID]++
	if ti.seen[v.ID] == 1 {
		ti.received = append(ti.received, e)
	}
	w.WriteHeader(http.StatusNoContent)
}

// events returns the distinct lifecycle events received so far, of type typ.
func (ti *testIntegration) events(typ string) []lifecycleEvent {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	var out []lifecycleEvent
	for _, e := range ti.received {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func (ti *testIntegration) waitFor(ctx context.Context, typ string) lifecycleEvent {
	ti.t.Helper()
	for {
		if got := ti.events(typ); len(got) > 0 {
			return got[0]
		}
		select {
		case <-ctx.Done():
			ti.t.Fatalf("the integration never received %s", typ)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// clientToken is what an integration gets with the client credentials of its integration
// client: an access token for the API resource whose client_id is that client's.
func clientToken(t *testing.T, s *stack.Stack, appID, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {s.APIResource}}
	req, _ := http.NewRequest(http.MethodPost, s.LogtoEndpoint+"/oidc/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(appID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("client credentials of %s: %d %s", appID, resp.StatusCode, body)
	}
	return tok.AccessToken
}

// api calls the front door with a bearer token and returns the status and body.
func api(t *testing.T, client *http.Client, method, u, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// A user installs a free app through the identity server's consent page; the app, which
// verifies signatures with only the published keys, receives install once, claims the user's
// tokens once; the user revokes; the grant is gone at the identity server; the app receives
// uninstall.
func TestInstallConsentRevokeEndToEnd(t *testing.T) {
	s := startStack(t, testConfig(t, "relay", "install", "notify", "uninstall"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	app := newTestIntegration(t, s.URL+"/v1/lifecycle/keys")
	m := &manifest.Manifest{Name: "e2e-notes", DisplayName: "E2E Notes", Version: "1.0.0", Type: "app",
		Description: "An app installed end to end.", BaseURL: app.srv.URL,
		Scopes: []string{"profile:read", "dashboard:read"}, App: &manifest.App{Lifecycle: manifest.LifecycleHTTP}}
	pub, err := s.PublishListing(ctx, stack.Listing{Manifest: m})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.PublishListing(ctx, stack.Listing{Manifest: &manifest.Manifest{Name: "e2e-other", DisplayName: "E2E Other",
		Version: "1.0.0", Type: "app", Description: "Another app.", BaseURL: app.srv.URL, Scopes: []string{"profile:read"}}})
	if err != nil {
		t.Fatal(err)
	}
	const user = "u_e2e_install"
	userToken, err := s.Identity().Mint(idp.TokenRequest{Subject: user, Audience: s.APIResource, Scopes: []string{"dashboard:read"}})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: apiTransport(t),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// Start: the consent URL of the integration's application.
	code, body := api(t, client, http.MethodPost, s.URL+"/v1/installs", userToken, map[string]any{"integration": m.Name, "scopes": []string{"dashboard:read"}})
	var started struct {
		Status     string `json:"status"`
		ConsentURL string `json:"consent_url"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &started) != nil || started.ConsentURL == "" {
		t.Fatalf("POST /v1/installs = %d %s", code, body)
	}
	// No token: 401, and nothing is started.
	if code, body := api(t, client, http.MethodPost, s.URL+"/v1/installs", "", map[string]any{"integration": m.Name}); code != http.StatusUnauthorized {
		t.Fatalf("POST /v1/installs without a token = %d %s, want 401", code, body)
	}
	// Scopes the manifest does not have are refused, naming the field.
	if code, body := api(t, client, http.MethodPost, s.URL+"/v1/installs", userToken, map[string]any{"integration": m.Name, "scopes": []string{"fantasy:read"}}); code != http.StatusBadRequest || !strings.Contains(string(body), "scopes/0") {
		t.Fatalf("a scope outside the manifest = %d %s", code, body)
	}

	// The user consents on the identity server's page; the browser comes back to the callback.
	callback, err := idptest.Follow(started.ConsentURL, s.URL+"/v1/installs/callback", user, true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(callback.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "installed="+m.Name) {
		t.Fatalf("callback = %d, Location %q", resp.StatusCode, loc)
	}
	// The same callback again (a replayed state) records nothing more.
	resp, err = client.Get(callback.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "install_error=") {
		t.Fatalf("replayed callback = %d, Location %q; want an install_error", resp.StatusCode, loc)
	}

	// The install holds the granted scopes.
	code, body = api(t, client, http.MethodGet, s.URL+"/v1/installs", userToken, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"`+m.Name+`"`) || !strings.Contains(string(body), "dashboard:read") || strings.Contains(string(body), "profile:read") {
		t.Fatalf("GET /v1/installs = %d %s; want %s with dashboard:read only", code, body, m.Name)
	}

	// The app receives install, signed, once per event id.
	inst := app.waitFor(ctx, events.TypeLifecycleInstall)
	var installed events.LifecycleInstall
	if err := json.Unmarshal(inst.Data, &installed); err != nil {
		t.Fatal(err)
	}
	if installed.UserID != user || installed.Integration != m.Name || installed.Sandbox {
		t.Fatalf("install event %+v", installed)
	}

	// The app claims the user's tokens once, with its own token; another integration cannot.
	claim := s.URL + "/v1/integration/installs/" + installed.InstallID + "/token"
	if code, body := api(t, client, http.MethodPost, claim, clientToken(t, s, other.ClientID, other.ClientSecret), nil); code != http.StatusForbidden {
		t.Fatalf("another integration's claim = %d %s, want 403", code, body)
	}
	// A user's token is not an integration's: refused.
	if code, body := api(t, client, http.MethodPost, claim, userToken, nil); code != http.StatusForbidden {
		t.Fatalf("a user's claim = %d %s, want 403", code, body)
	}
	appToken := clientToken(t, s, pub.ClientID, pub.ClientSecret)
	code, body = api(t, client, http.MethodPost, claim, appToken, nil)
	var tokens struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &tokens) != nil || tokens.AccessToken == "" || tokens.RefreshToken == "" {
		t.Fatalf("claim = %d %s; want the access and refresh tokens", code, body)
	}
	if code, body := api(t, client, http.MethodPost, claim, appToken, nil); code != http.StatusGone {
		t.Fatalf("second claim = %d %s, want 410", code, body)
	}

	lc, err := logto.New(logto.Config{Endpoint: s.LogtoEndpoint, AppID: first(s.M2MCredentials()), AppSecret: second(s.M2MCredentials())})
	if err != nil {
		t.Fatal(err)
	}
	grants, err := lc.ListGrants(ctx, user)
	if err != nil || len(grants) != 1 {
		t.Fatalf("grants before revoking: %v, %v", grants, err)
	}

	// The user revokes: the grant is gone, the install too, and the app receives uninstall.
	if code, body := api(t, client, http.MethodDelete, s.URL+"/v1/installs/"+m.Name, userToken, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE /v1/installs/%s = %d %s", m.Name, code, body)
	}
	if grants, err := lc.ListGrants(ctx, user); err != nil || len(grants) != 0 {
		t.Fatalf("grants after revoking: %v, %v", grants, err)
	}
	un := app.waitFor(ctx, events.TypeLifecycleUninstall)
	var uninstalled events.LifecycleUninstall
	if err := json.Unmarshal(un.Data, &uninstalled); err != nil {
		t.Fatal(err)
	}
	if uninstalled.InstallID != installed.InstallID || uninstalled.Reason != events.RevokeUserRequest {
		t.Fatalf("uninstall event %+v", uninstalled)
	}
	code, body = api(t, client, http.MethodGet, s.URL+"/v1/installs", userToken, nil)
	if code != http.StatusOK || strings.Contains(string(body), `"`+m.Name+`"`) {
		t.Fatalf("GET /v1/installs after revoking = %d %s", code, body)
	}

	// Each event reached the app once, and nothing unsigned or forged was accepted.
	app.mu.Lock()
	defer app.mu.Unlock()
	for id, n := range app.seen {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if len(app.received) != 2 || app.refused != 0 {
		t.Errorf("received %d distinct events (%d refused); want install and uninstall", len(app.received), app.refused)
	}
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	requireCount(t, ctx, conn, 0, `SELECT count(*) FROM user_integrations WHERE user_id = '`+user+`'`)
}

func first(a, _ string) string  { return a }
func second(_, b string) string { return b }
