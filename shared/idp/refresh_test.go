package idp_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/logto"
)

// exchange posts form to the token endpoint as clientID and returns the status and body.
func exchange(t *testing.T, hc *http.Client, s *idp.Server, clientID, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("token endpoint %d: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// offlineCode runs the consent for app as user, asking for scope (plus openid), and returns
// the code and the PKCE verifier.
func offlineCode(t *testing.T, s *idp.Server, appID, redirect, user, scope string) (string, string) {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	v := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(v))
	q := url.Values{"client_id": {appID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid " + scope}, "state": {"st"}, "prompt": {"consent"}, "resource": {idp.DefaultAPIResource},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	loc, err := idptest.Follow(s.Issuer()+"/auth?"+q.Encode(), redirect, user, true)
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("state") != "st" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect %s", loc)
	}
	return loc.Query().Get("code"), v
}

// offline_access gives a refresh token that renews the access token after it expired, only
// for the client it was issued to, and dies with the grant when the grant is revoked through
// the Management API.
func TestRefreshTokenLivesWithTheGrant(t *testing.T) {
	clk := &clock{t: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{
		Logger: slog.New(slog.DiscardHandler), Clock: clk.Now, AccessTokenTTL: time.Hour,
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
	lc, err := logto.New(logto.Config{Endpoint: base(s), AppID: "m2m", AppSecret: "m2m-secret", HTTPClient: hc,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "https://ticker.example/callback"
	app, err := lc.CreateApplication(ctx, logto.NewApplication{Name: "Ticker", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := lc.CreateApplication(ctx, logto.NewApplication{Name: "Other", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.AssignUserConsentScopes(ctx, app.ID, logto.ConsentScopes{ResourceScopes: []string{"dashboard:read"}}); err != nil {
		t.Fatal(err)
	}
	v := verifier(t, s, hc, clk)

	// Without offline_access: no refresh token.
	code, pkce := offlineCode(t, s, app.ID, redirect, "bob", "dashboard:read")
	st, out := exchange(t, hc, s, app.ID, app.Secret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {pkce}, "resource": {idp.DefaultAPIResource}})
	if st != 200 || out["access_token"] == nil || out["refresh_token"] != nil {
		t.Fatalf("code exchange without offline_access: %d %v", st, out)
	}

	code, pkce = offlineCode(t, s, app.ID, redirect, "alice", "offline_access dashboard:read")
	st, out = exchange(t, hc, s, app.ID, app.Secret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {pkce}, "resource": {idp.DefaultAPIResource}})
	rt, _ := out["refresh_token"].(string)
	if st != 200 || rt == "" {
		t.Fatalf("code exchange with offline_access: %d %v", st, out)
	}
	if _, err := v.Verify(ctx, out["access_token"].(string)); err != nil {
		t.Fatalf("fresh access token: %v", err)
	}

	clk.Advance(2 * time.Hour)
	if _, err := v.Verify(ctx, out["access_token"].(string)); err == nil {
		t.Fatal("the access token still verifies two hours later")
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	st, out = exchange(t, hc, s, app.ID, app.Secret, refresh)
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, out)
	}
	p, err := v.Verify(ctx, out["access_token"].(string))
	if err != nil || p.Subject != "alice" || p.ClientID != app.ID || !p.Has("dashboard:read") || len(p.Scopes) != 1 {
		t.Fatalf("refreshed token: %+v %v", p, err)
	}
	// Only its client may use it; a scope not granted is refused; a wrong token is refused.
	if st, out := exchange(t, hc, s, other.ID, other.Secret, refresh); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("another client's refresh: %d %v", st, out)
	}
	if st, out := exchange(t, hc, s, app.ID, app.Secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"scope": {"dashboard:write"}}); st != 400 || out["error"] != "invalid_scope" {
		t.Fatalf("refresh for a scope not granted: %d %v", st, out)
	}
	if st, out := exchange(t, hc, s, app.ID, app.Secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt + "x"}}); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("a forged refresh token: %d %v", st, out)
	}

	if n, err := lc.RevokeGrants(ctx, "alice", app.ID); err != nil || n != 1 {
		t.Fatalf("RevokeGrants = %d, %v", n, err)
	}
	if st, out := exchange(t, hc, s, app.ID, app.Secret, refresh); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("refresh after the grant was revoked: %d %v", st, out)
	}
}
