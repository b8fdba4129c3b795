package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The developer portal through make dev's front door, with tokens from the development
// identity server: a developer registers an integration served by a demo integration, gets the
// client secret once, the Logto application exists with the manifest's consent scopes, the
// automated checks run against the integration, publishing puts the listing in the catalog;
// a token without integrations:write is refused, another developer sees nothing, drafts never
// appear publicly, and a failing check (health down) blocks publishing and names the reason.
func TestRegistryEndToEnd(t *testing.T) {
	cfg := testConfig(t, "catalog", "registry")
	cfg.Demo = true
	s := startStack(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	api := newAPIClient(t, s.URL)

	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tickerURL string
	if err := conn.QueryRow(ctx, `SELECT base_url FROM integrations WHERE name = 'crypto-ticker'`).Scan(&tickerURL); err != nil {
		t.Fatal(err)
	}

	alice := devToken(t, s.LogtoEndpoint, "dev-alice", "integrations:write")
	bob := devToken(t, s.LogtoEndpoint, "dev-bob", "integrations:write")
	carol := devToken(t, s.LogtoEndpoint, "user-carol", "dashboard:read")
	manifest := func(name, baseURL string) map[string]any {
		return map[string]any{
			"name": name, "display_name": "Alice's Ticker", "version": "1.0.0", "type": "data_source",
			"delivery_mode": "pull", "description": "Coin prices, polled every minute.",
			"base_url": baseURL, "scopes": []string{"dashboard:write", "profile:read"},
			"category": "finance", "tags": []string{"crypto"},
			"redirect_uris": []string{"http://127.0.0.1:9/alice/callback"},
			"data_source": map[string]any{"refresh_interval_seconds": 60,
				"streams": []any{map[string]any{"name": "quotes"}}},
		}
	}

	// Without integrations:write: 403, and nothing is created.
	if r := api.do(t, "POST", "/v1/developer/integrations", carol, manifest("alice-ticker", tickerURL)); r.status != http.StatusForbidden {
		t.Fatalf("register with a user token = %d %s; want 403", r.status, r.body)
	}

	// Register: 201 with the client secret, shown this once.
	r := api.do(t, "POST", "/v1/developer/integrations", alice, manifest("alice-ticker", tickerURL))
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Integration  struct {
			IsPublished bool `json:"is_published"`
			Versions    []struct {
				Checks []struct {
					Name   string `json:"name"`
					Passed bool   `json:"passed"`
					Reason string `json:"reason"`
				} `json:"checks"`
				Publishable bool `json:"publishable"`
			} `json:"versions"`
		} `json:"integration"`
	}
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &reg) != nil || reg.ClientID == "" || reg.ClientSecret == "" {
		t.Fatalf("register = %d %s", r.status, r.body)
	}
	if len(reg.Integration.Versions) != 1 || !reg.Integration.Versions[0].Publishable || reg.Integration.IsPublished {
		t.Fatalf("registered integration: %s", r.body)
	}
	var checks []string
	for _, c := range reg.Integration.Versions[0].Checks {
		checks = append(checks, c.Name)
		if !c.Passed {
			t.Errorf("check %s failed against the demo pull source: %s", c.Name, c.Reason)
		}
	}
	for _, want := range []string{"schema", "base_url", "health", "pull_schema", "pull_data", "mixed_content"} {
		if !slices.Contains(checks, want) {
			t.Errorf("check %s did not run (ran %v)", want, checks)
		}
	}

	// The Logto application exists with the manifest's consent scopes and redirect URIs.
	mgmt := managementToken(t, s.LogtoEndpoint, s)
	var app struct {
		ID                 string `json:"id"`
		IsThirdParty       bool   `json:"isThirdParty"`
		OIDCClientMetadata struct {
			RedirectURIs []string `json:"redirectUris"`
		} `json:"oidcClientMetadata"`
	}
	if code := getJSON(t, s.LogtoEndpoint+"/api/applications/"+reg.ClientID, mgmt, &app); code != 200 || !app.IsThirdParty ||
		!slices.Equal(app.OIDCClientMetadata.RedirectURIs, []string{s.URL + "/v1/installs/callback", "http://127.0.0.1:9/alice/callback"}) {
		t.Fatalf("application %s = %d %+v", reg.ClientID, code, app)
	}
	var consent struct {
		ResourceScopes []struct {
			Scopes []struct {
				Name string `json:"name"`
			} `json:"scopes"`
		} `json:"resourceScopes"`
	}
	if code := getJSON(t, s.LogtoEndpoint+"/api/applications/"+reg.ClientID+"/user-consent-scopes", mgmt, &consent); code != 200 {
		t.Fatalf("consent scopes = %d", code)
	}
	var scopes []string
	for _, rs := range consent.ResourceScopes {
		for _, sc := range rs.Scopes {
			scopes = append(scopes, sc.Name)
		}
	}
	slices.Sort(scopes)
	if !slices.Equal(scopes, []string{"dashboard:write", "profile:read"}) {
		t.Fatalf("consent scopes %v; want the manifest's", scopes)
	}

	// Shown once: the developer's views never carry it.
	r = api.do(t, "GET", "/v1/developer/integrations/alice-ticker", alice, nil)
	if r.status != 200 || bytes.Contains(r.body, []byte(reg.ClientSecret)) || bytes.Contains(r.body, []byte("client_secret")) {
		t.Fatalf("GET own = %d; must not show the secret: %s", r.status, r.body)
	}
	// Another developer sees nothing and changes nothing.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/developer/integrations/alice-ticker"},
		{"POST", "/v1/developer/integrations/alice-ticker/publish"},
		{"POST", "/v1/developer/integrations/alice-ticker/secret"},
	} {
		if r := api.do(t, c.method, c.path, bob, nil); r.status != http.StatusNotFound {
			t.Fatalf("bob %s %s = %d %s; want 404", c.method, c.path, r.status, r.body)
		}
	}
	r = api.do(t, "GET", "/v1/developer/integrations", bob, nil)
	if r.status != 200 || bytes.Contains(r.body, []byte("alice-ticker")) {
		t.Fatalf("bob's list = %d %s", r.status, r.body)
	}

	// A draft is not public.
	if r := api.do(t, "GET", "/v1/integrations/alice-ticker", "", nil); r.status != http.StatusNotFound {
		t.Fatalf("draft detail = %d %s; want 404", r.status, r.body)
	}
	if r := api.do(t, "GET", "/v1/integrations?q=alice", "", nil); r.status != 200 || bytes.Contains(r.body, []byte("alice-ticker")) {
		t.Fatalf("draft in the catalog: %d %s", r.status, r.body)
	}

	// Publish: the listing appears.
	if r := api.do(t, "POST", "/v1/developer/integrations/alice-ticker/publish", alice, nil); r.status != 200 {
		t.Fatalf("publish = %d %s", r.status, r.body)
	}
	if r := api.do(t, "GET", "/v1/integrations/alice-ticker", "", nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"Alice's Ticker"`)) {
		t.Fatalf("published detail = %d %s", r.status, r.body)
	}
	if r := api.do(t, "GET", "/v1/integrations?q=alice", "", nil); r.status != 200 || !bytes.Contains(r.body, []byte("alice-ticker")) {
		t.Fatalf("published listing not found by search: %d %s", r.status, r.body)
	}

	// Health down (nothing listens at the base URL): registered, but publishing is refused
	// naming the health check and its reason.
	down := "http://" + closedAddr(t)
	if r := api.do(t, "POST", "/v1/developer/integrations", alice, manifest("alice-down", down)); r.status != http.StatusCreated {
		t.Fatalf("register alice-down = %d %s", r.status, r.body)
	}
	r = api.do(t, "POST", "/v1/developer/integrations/alice-down/publish", alice, nil)
	var prob struct {
		Errors []struct{ Field, Reason string } `json:"errors"`
	}
	if r.status != http.StatusUnprocessableEntity || json.Unmarshal(r.body, &prob) != nil {
		t.Fatalf("publish with health down = %d %s; want 422", r.status, r.body)
	}
	named := false
	for _, e := range prob.Errors {
		named = named || (e.Field == "checks/health" && e.Reason != "")
	}
	if !named {
		t.Fatalf("publish refusal does not name checks/health: %s", r.body)
	}
	if r := api.do(t, "GET", "/v1/integrations/alice-down", "", nil); r.status != http.StatusNotFound {
		t.Fatalf("unpublishable listing is public: %d", r.status)
	}

	// An attacker's registrations: no token is 401; a malformed body is a 400 naming the
	// problem; a base URL on the metadata service is registered as a draft whose base_url check
	// failed (nothing else is called) and can never be published.
	if r := api.do(t, "POST", "/v1/developer/integrations", "", manifest("mallory-x", tickerURL)); r.status != http.StatusUnauthorized {
		t.Fatalf("register without a token = %d %s; want 401", r.status, r.body)
	}
	if r := api.do(t, "POST", "/v1/developer/integrations", alice, map[string]any{"name": 7}); r.status != http.StatusBadRequest ||
		!bytes.Contains(r.body, []byte(`"/name"`)) {
		t.Fatalf("malformed manifest = %d %s; want 400 naming /name", r.status, r.body)
	}
	mallory := devToken(t, s.LogtoEndpoint, "dev-mallory", "integrations:write")
	r = api.do(t, "POST", "/v1/developer/integrations", mallory, manifest("mallory-meta", "https://169.254.169.254"))
	if r.status != http.StatusCreated || !bytes.Contains(r.body, []byte("refused by the SSRF rules: metadata")) {
		t.Fatalf("register on the metadata address = %d %s; want a draft whose base_url check names the refusal", r.status, r.body)
	}
	r = api.do(t, "POST", "/v1/developer/integrations/mallory-meta/publish", mallory, nil)
	if r.status != http.StatusUnprocessableEntity || !bytes.Contains(r.body, []byte("checks/base_url")) {
		t.Fatalf("publish on the metadata address = %d %s; want 422 naming checks/base_url", r.status, r.body)
	}
}

// apiClient calls the front door as the frontend does.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(t *testing.T, base string) *apiClient {
	return &apiClient{base: base, hc: &http.Client{Timeout: 60 * time.Second, Transport: apiTransport(t)}}
}

type apiResponse struct {
	status int
	body   []byte
	header http.Header
}

func (c *apiClient) do(t *testing.T, method, path, token string, body any) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiResponse{status: resp.StatusCode, body: b, header: resp.Header}
}

// managementToken is a Logto Management API token for the stack's machine-to-machine app.
func managementToken(t *testing.T, endpoint string, s interface{ M2MCredentials() (string, string) }) string {
	t.Helper()
	id, secret := s.M2MCredentials()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {"https://default.logto.app/api"}, "scope": {"all"}}
	req, _ := http.NewRequest("POST", endpoint+"/oidc/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("management token: %d %v", resp.StatusCode, err)
	}
	return out.AccessToken
}

func getJSON(t *testing.T, u, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
