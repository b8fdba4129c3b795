// Package identity runs the token attack matrix against the development identity server over
// HTTP: the verifier discovers the server and fetches its JWKS the way a function does against
// Logto, and every malicious token is built from what an attacker could get (the server's
// public keys, a real token, a real ID token).
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/logging/logtest"
)

const (
	webClient   = "web-app"
	webSecret   = "web-secret"
	redirect    = "http://127.0.0.1:1/callback"
	integration = "app-crypto-ticker"
)

type bundle struct {
	idp  *idp.Server
	api  *httptest.Server
	logs *logtest.Buffer
}

func setup(t *testing.T, refresh time.Duration) bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{
		Logger: slog.New(slog.DiscardHandler),
		Clients: []idp.Client{{ID: webClient, Secret: webSecret, Name: "MyScrollr", Type: "Traditional",
			RedirectURIs: []string{redirect}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	logs := &logtest.Buffer{}
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource,
		MinRefreshInterval: refresh, Logger: slog.New(slog.NewJSONHandler(logs, nil))}, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux := http.NewServeMux()
	mux.Handle("GET /dashboard", v.Require(auth.ScopeDashboardRead)(ok))
	// An integration route: only the integration's own Logto application may call it.
	mux.Handle("POST /data", v.RequireClient(func(*http.Request) (string, error) { return integration, nil }, auth.ScopeDataWrite)(ok))
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	return bundle{idp: s, api: api, logs: logs}
}

func (b bundle) call(t *testing.T, method, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest(method, b.api.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (b bundle) mint(t *testing.T, r idp.TokenRequest) string {
	t.Helper()
	if r.Subject == "" {
		r.Subject = "u_alice"
	}
	tok, err := b.idp.Mint(r)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwks is the server's published key set, as anyone can fetch it.
func (b bundle) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(b.idp.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	return set
}

// idToken runs a real sign-in and returns the ID token the server issues.
func (b bundle) idToken(t *testing.T) string {
	t.Helper()
	code, verifier, err := idptest.Authorize(b.idp.Issuer(), webClient, redirect, "u_alice")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, b.idp.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(webClient, webSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		IDToken string `json:"id_token"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &out); err != nil || out.IDToken == "" {
		t.Fatalf("token exchange: %d %s", resp.StatusCode, body)
	}
	return out.IDToken
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func segment(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func payloadOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAttackMatrix(t *testing.T) {
	b := setup(t, 0) // the default: at most one JWKS refresh per 30 s
	valid := b.mint(t, idp.TokenRequest{Scopes: []string{auth.ScopeDashboardRead}})
	claims := payloadOf(t, valid)
	set := b.jwks(t)
	pub := set.Keys[0]
	pubJSON, _ := json.Marshal(pub)
	parts := strings.Split(valid, ".")
	tampered := maps.Clone(claims)
	tampered["scope"] = "dashboard:read integrations:admin"
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()

	cases := []struct {
		name, method, path, token string
		want                      int
		reason                    string
	}{
		{"valid token", "GET", "/dashboard", valid, 200, ""},
		{"no token", "GET", "/dashboard", "", 401, "token"},
		{"wrong audience", "GET", "/dashboard", b.mint(t, idp.TokenRequest{Scopes: []string{auth.ScopeDashboardRead}, Audience: "https://other.example"}), 401, "audience"},
		{"an ID token", "GET", "/dashboard", b.idToken(t), 401, ""},
		{"wrong issuer", "GET", "/dashboard", b.mint(t, idp.TokenRequest{Scopes: []string{auth.ScopeDashboardRead}, Extra: map[string]any{"iss": "http://127.0.0.1:9/oidc"}}), 401, "issuer"},
		{"expired by 1 s", "GET", "/dashboard", b.mint(t, idp.TokenRequest{Scopes: []string{auth.ScopeDashboardRead}, TTL: -time.Second}), 401, "expired"},
		{"not yet valid", "GET", "/dashboard", b.mint(t, idp.TokenRequest{Scopes: []string{auth.ScopeDashboardRead}, Extra: map[string]any{"nbf": now.Add(time.Minute).Unix()}}), 401, ""},
		{"alg none", "GET", "/dashboard", segment(map[string]any{"alg": "none", "typ": "at+jwt"}) + "." + parts[1] + ".", 401, ""},
		{"HS256 keyed with the public key", "GET", "/dashboard", sign(t, jose.HS256, pubJSON, pub.KeyID, claims), 401, ""},
		{"RS256 where only ES384 is allowed", "GET", "/dashboard", sign(t, jose.RS256, rsaKey, pub.KeyID, claims), 401, ""},
		{"unknown kid", "GET", "/dashboard", sign(t, jose.ES384, otherEC, "not-a-known-kid", claims), 401, ""},
		{"server's kid, attacker's key", "GET", "/dashboard", sign(t, jose.ES384, otherEC, pub.KeyID, claims), 401, ""},
		{"tampered payload", "GET", "/dashboard", parts[0] + "." + segment(tampered) + "." + parts[2], 401, ""},
		{"missing scope", "GET", "/dashboard", b.mint(t, idp.TokenRequest{Scopes: []string{auth.ScopeProfileRead}}), 403, "scope"},
		{"scope only as a substring", "GET", "/dashboard", b.mint(t, idp.TokenRequest{Scopes: []string{"dashboard:readonly"}}), 403, "scope"},
		{"integration route, its own client", "POST", "/data", b.mint(t, idp.TokenRequest{Subject: integration, ClientID: integration, Scopes: []string{auth.ScopeDataWrite}}), 200, ""},
		{"integration route, another client", "POST", "/data", b.mint(t, idp.TokenRequest{Subject: "app-other", ClientID: "app-other", Scopes: []string{auth.ScopeDataWrite}}), 403, ""},
	}
	for _, tc := range cases {
		before := b.logs.Len()
		if got := b.call(t, tc.method, tc.path, tc.token); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
			continue
		}
		logged := b.logs.Since(before)
		if tc.want >= 400 {
			if !strings.Contains(logged, `"msg":"auth: request rejected"`) || !strings.Contains(logged, `"reason":"`) {
				t.Errorf("%s: no rejection reason logged: %q", tc.name, logged)
			}
			if tc.reason != "" && !strings.Contains(strings.ToLower(logged), tc.reason) {
				t.Errorf("%s: logged %q, want it to mention %q", tc.name, logged, tc.reason)
			}
			if tc.token != "" && strings.Contains(logged, tc.token) {
				t.Errorf("%s: the token was logged", tc.name)
			}
		}
	}
}

// A key rotation at the identity server is picked up by a running verifier, without a restart.
func TestKeyRotationPickedUp(t *testing.T) {
	// A short refresh interval keeps the test quick; the default (30 s) bounds the pick-up time
	// the same way.
	b := setup(t, 200*time.Millisecond)
	before := b.mint(t, idp.TokenRequest{Scopes: []string{auth.ScopeDashboardRead}})
	if got := b.call(t, "GET", "/dashboard", before); got != 200 {
		t.Fatalf("before rotation: %d", got)
	}
	if _, err := b.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	after := b.mint(t, idp.TokenRequest{Scopes: []string{auth.ScopeDashboardRead}})
	if strings.Split(after, ".")[0] == strings.Split(before, ".")[0] {
		t.Fatal("rotation did not change the signing key id")
	}
	// The verifier refreshes its JWKS on the unknown kid (the first refresh after start-up
	// is allowed at once).
	deadline := time.Now().Add(10 * time.Second)
	for b.call(t, "GET", "/dashboard", after) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("a token signed with the rotated key is still refused")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// 10,000 tokens with random unknown kids cause at most 2 JWKS fetches at the identity server
// (one refresh is allowed per 30 s), and none is accepted.
func TestUnknownKidStorm(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := idp.New(idp.Config{Issuer: "http://" + ln.Addr().String() + "/oidc", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var jwksFetches atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oidc/jwks" {
			jwksFetches.Add(1)
		}
		s.Handler().ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: s.Issuer(), Audience: idp.DefaultAPIResource,
		Logger: slog.New(slog.DiscardHandler)}, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	valid, _ := s.Mint(idp.TokenRequest{Subject: "u_alice", Scopes: []string{auth.ScopeDashboardRead}})
	if _, err := v.Verify(context.Background(), valid); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	claims := payloadOf(t, valid)
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	const n = 10000
	// The attacker's tokens: each names a fresh kid. A key lookup comes before any signature
	// check, so one real ES384 signature serves as every token's signature segment; signing
	// 10,000 tokens would only measure the signer (minutes under -race).
	template := strings.Split(sign(t, jose.ES384, key, "template", claims), ".")
	tokens := make([]string, n)
	for i := range tokens {
		var kid [8]byte
		rand.Read(kid[:])
		hdr := segment(map[string]string{"alg": "ES384", "typ": "at+jwt", "kid": base64.RawURLEncoding.EncodeToString(kid[:])})
		tokens[i] = hdr + "." + template[1] + "." + template[2]
	}
	fetchesBefore := jwksFetches.Load()
	var accepted atomic.Int32
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if _, err := v.Verify(context.Background(), tokens[i]); err == nil {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 0 {
		t.Fatalf("%d tokens with unknown kids accepted", accepted.Load())
	}
	if got := jwksFetches.Load() - fetchesBefore; got > 2 {
		t.Fatalf("%d JWKS fetches for %d unknown kids; want at most 2", got, n)
	}
}
