package idp_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/logto"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func start(t *testing.T) (*idp.Server, *http.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{
		DevEndpoints: true,
		Logger:       slog.New(slog.DiscardHandler),
		Clients: []idp.Client{
			{ID: "m2m", Secret: "m2m-secret", Type: "MachineToMachine", ManagementAPI: true},
			{ID: "ingest-app", Secret: "ingest-secret", Type: "MachineToMachine", Scopes: []string{"data:write"}},
		},
		ExtraResources: []idp.Resource{{Name: "uninstall events", Indicator: "serving.knative.dev/service/connect/uninstall", Clients: []string{"m2m"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	return s, hc
}

func base(s *idp.Server) string { return strings.TrimSuffix(s.Issuer(), "/oidc") }

func verifier(t *testing.T, s *idp.Server, hc *http.Client, clk *clock) *auth.Verifier {
	t.Helper()
	cfg := auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource, Logger: slog.New(slog.DiscardHandler)}
	if clk != nil {
		cfg.Clock = clk.Now
	}
	v, err := auth.NewVerifier(context.Background(), cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDiscoveryLayout(t *testing.T) {
	s, hc := start(t)
	resp, err := hc.Get(s.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"issuer": s.Issuer(), "jwks_uri": s.Issuer() + "/jwks",
		"token_endpoint": s.Issuer() + "/token", "authorization_endpoint": s.Issuer() + "/auth",
	} {
		if d[k] != want {
			t.Errorf("%s = %v, want %s", k, d[k], want)
		}
	}
}

func TestMintedAndClientCredentialsTokensVerify(t *testing.T) {
	s, hc := start(t)
	v := verifier(t, s, hc, nil)
	ctx := context.Background()
	tok, err := s.Mint(idp.TokenRequest{Subject: "u1", Scopes: []string{"dashboard:read"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(ctx, tok)
	if err != nil || !p.Has("dashboard:read") || p.Subject != "u1" {
		t.Fatalf("minted: %+v %v", p, err)
	}
	expired, _ := s.Mint(idp.TokenRequest{Subject: "u1", TTL: -time.Second})
	if _, err := v.Verify(ctx, expired); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	other, _ := s.Mint(idp.TokenRequest{Subject: "u1", Audience: "https://other"})
	if _, err := v.Verify(ctx, other); !errors.Is(err, auth.ErrAudience) {
		t.Fatalf("audience: %v", err)
	}

	// Client credentials with a resource indicator.
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {idp.DefaultAPIResource}, "scope": {"data:write"}}
	req, _ := http.NewRequest("POST", s.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("ingest-app", "ingest-secret")
	at := tokenResponse(t, hc, req)["access_token"].(string)
	p, err = v.Verify(ctx, at)
	if err != nil || p.ClientID != "ingest-app" || !p.Has("data:write") || p.Has("dashboard:read") {
		t.Fatalf("client credentials: %+v %v", p, err)
	}
	// A scope the application does not have is refused.
	form.Set("scope", "integrations:admin")
	req, _ = http.NewRequest("POST", s.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("ingest-app", "ingest-secret")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("disallowed scope: status %d", resp.StatusCode)
	}
}

func TestDevTokenEndpoint(t *testing.T) {
	s, hc := start(t)
	resp, err := hc.Post(base(s)+"/dev/token", "application/json",
		strings.NewReader(`{"sub":"u2","scope":"fantasy:read","client_id":"app-9"}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	p, err := verifier(t, s, hc, nil).Verify(context.Background(), out.AccessToken)
	if err != nil || p.ClientID != "app-9" || !p.Has("fantasy:read") {
		t.Fatalf("%+v %v", p, err)
	}
}

// The dev mint never signs a token for a service-only audience: that would let anyone on the
// machine forge events.
func TestDevTokenRefusesSenderAudiences(t *testing.T) {
	s, hc := start(t)
	resp, err := hc.Post(base(s)+"/dev/token", "application/json",
		strings.NewReader(`{"sub":"connect-eventing","client_id":"m2m","aud":"serving.knative.dev/service/connect/uninstall"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || strings.Contains(string(body), "access_token") || !strings.Contains(string(body), "aud") {
		t.Fatalf("dev mint for a sender audience: %d %s", resp.StatusCode, body)
	}
}

func TestKeyRotationPickedUp(t *testing.T) {
	s, hc := start(t)
	clk := &clock{t: time.Now()}
	v := verifier(t, s, hc, clk)
	ctx := context.Background()
	old, _ := s.Mint(idp.TokenRequest{Subject: "u1"})
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Post(base(s)+"/dev/rotate-key", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("rotate: %v %v", resp, err)
	}
	resp.Body.Close()
	fresh, _ := s.Mint(idp.TokenRequest{Subject: "u1"})
	clk.Advance(31 * time.Second)
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("old key still published: %v", err)
	}
}

func tokenResponse(t *testing.T, hc *http.Client, req *http.Request) map[string]any {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("token endpoint: %d %s", resp.StatusCode, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestManagementAPIAndConsentFlow drives the Logto client against the
// server, and a real authorization code + PKCE consent through an
// http.Client with a cookie jar.
func TestManagementAPIAndConsentFlow(t *testing.T) {
	s, hc := start(t)
	ctx := context.Background()
	lc, err := logto.New(logto.Config{Endpoint: base(s), AppID: "m2m", AppSecret: "m2m-secret", HTTPClient: hc,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "https://crypto-ticker.example/callback"
	app, err := lc.CreateApplication(ctx, logto.NewApplication{Name: "Crypto Ticker", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	if app.ID == "" || app.Secret == "" || !app.IsThirdParty || app.Type != "Traditional" {
		t.Fatalf("created %+v", app)
	}
	if err := lc.AssignUserConsentScopes(ctx, app.ID, logto.ConsentScopes{ResourceScopes: []string{"dashboard:write"}}); err != nil {
		t.Fatal(err)
	}
	secret, err := lc.RotateSecret(ctx, app.ID)
	if err != nil || secret == "" || secret == app.Secret {
		t.Fatalf("RotateSecret = %q, %v", secret, err)
	}
	if secrets, err := lc.Secrets(ctx, app.ID); err != nil || len(secrets) != 1 || secrets[0].Value != secret {
		t.Fatalf("secrets after rotation: %+v %v", secrets, err)
	}

	// Two consents by the same user to two apps; revoke one app's grants.
	code := consent(t, s, app.ID, redirect, "alice", "Crypto Ticker wants access to:</h2>\n<ul><li>Know who you are</li><li>Write to your dashboard</li></ul>")
	for _, tc := range []struct {
		secret string
		ok     bool
	}{{app.Secret, false}, {secret, true}} {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code.code}, "redirect_uri": {redirect},
			"code_verifier": {code.verifier}, "resource": {idp.DefaultAPIResource}}
		req, _ := http.NewRequest("POST", s.Issuer()+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(app.ID, tc.secret)
		if !tc.ok {
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Fatal("the rotated-out secret still works")
			}
			continue
		}
		out := tokenResponse(t, hc, req)
		v := verifier(t, s, hc, nil)
		p, err := v.Verify(ctx, out["access_token"].(string))
		if err != nil || p.Subject != "alice" || p.ClientID != app.ID || !p.Has("dashboard:write") || p.Has("dashboard:read") {
			t.Fatalf("user token: %+v %v", p, err)
		}
		// The ID token is for the client, not the API: rejected.
		if _, err := v.Verify(ctx, out["id_token"].(string)); err == nil {
			t.Fatal("ID token accepted as an access token")
		}
	}
	other, err := lc.CreateApplication(ctx, logto.NewApplication{Name: "Weather", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	consent(t, s, other.ID, redirect, "alice", "<li>Know who you are</li></ul>")

	grants, err := lc.ListGrants(ctx, "alice")
	if err != nil || len(grants) != 2 {
		t.Fatalf("grants: %+v %v", grants, err)
	}
	n, err := lc.RevokeGrants(ctx, "alice", app.ID)
	if err != nil || n != 1 {
		t.Fatalf("RevokeGrants = %d, %v", n, err)
	}
	grants, _ = lc.ListGrants(ctx, "alice")
	if len(grants) != 1 || grants[0].Application.ID != other.ID || grants[0].Payload.AccountID != "alice" {
		t.Fatalf("grants after revoke: %+v", grants)
	}
	if n, err := lc.RevokeGrants(ctx, "alice", app.ID); err != nil || n != 0 {
		t.Fatalf("second RevokeGrants = %d, %v", n, err)
	}
	if err := lc.DeleteApplication(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.GetApplication(ctx, other.ID); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("deleted app: %v", err)
	}
	if err := lc.DeleteApplication(ctx, other.ID); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
}

func TestManagementAPIRequiresToken(t *testing.T) {
	s, hc := start(t)
	tok, _ := s.Mint(idp.TokenRequest{Subject: "u1", Scopes: []string{"all"}}) // wrong audience
	req, _ := http.NewRequest("GET", base(s)+"/api/users/u1/grants", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

type codeResult struct{ code, verifier string }

var idRE = regexp.MustCompile(`name="id" value="([^"]+)"`)

// consent runs the browser part of the authorization code flow and returns
// the code from the redirect.
func consent(t *testing.T, s *idp.Server, clientID, redirect, user, wantWords string) codeResult {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Transport: &http.Transport{},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirect) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	defer browser.CloseIdleConnections()
	ver, chal := pkce()
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid dashboard:write dashboard:read"}, "state": {"st-1"}, "code_challenge": {chal},
		"code_challenge_method": {"S256"}, "resource": {idp.DefaultAPIResource}}
	resp, err := browser.Get(s.Issuer() + "/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := idRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form: %d %s", resp.StatusCode, page)
	}
	if strings.Contains(string(page), "dashboard:") || !strings.Contains(string(page), wantWords) {
		t.Fatalf("consent page does not list scopes in words: %s", page)
	}
	resp, err = browser.PostForm(resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+"/login",
		url.Values{"id": {string(m[1])}, "username": {user}, "consent": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st-1" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return codeResult{code: loc.Query().Get("code"), verifier: ver}
}
