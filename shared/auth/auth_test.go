package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/go-jose/go-jose/v4"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/logging/logtest"
)

const audience = "https://api.myscrollr.test"

// issuer is a real HTTP server on 127.0.0.1 publishing discovery and a JWKS,
// with the private keys to sign test tokens.
type issuer struct {
	srv      *httptest.Server
	url      string
	mu       sync.Mutex
	keys     []jose.JSONWebKey // private
	jwksHits atomic.Int64
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	is := &issuer{}
	is.addKey(t, "k1")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oidc/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.url, "jwks_uri": is.url + "/jwks",
			"authorization_endpoint": is.url + "/auth", "token_endpoint": is.url + "/token",
			"id_token_signing_alg_values_supported": []string{"ES384"},
		})
	})
	mux.HandleFunc("GET /oidc/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		is.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.url = is.srv.URL + "/oidc"
	return is
}

func (is *issuer) addKey(t testing.TB, kid string) jose.JSONWebKey {
	t.Helper()
	pk, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := jose.JSONWebKey{Key: pk, KeyID: kid, Algorithm: "ES384", Use: "sig"}
	is.mu.Lock()
	is.keys = append(is.keys, k)
	is.mu.Unlock()
	return k
}

func (is *issuer) key(i int) jose.JSONWebKey {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.keys[i]
}

// claims returns valid access token claims at now.
func (is *issuer) claims(now time.Time, scope string) map[string]any {
	return map[string]any{
		"iss": is.url, "sub": "user-1", "aud": audience, "client_id": "app-1",
		"scope": scope, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1",
	}
}

func sign(t testing.TB, key jose.JSONWebKey, alg jose.SignatureAlgorithm, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type bundle struct {
	is    *issuer
	clock *clock
	logs  *logtest.Buffer
}

func setup(t testing.TB) (*auth.Verifier, *bundle) {
	t.Helper()
	is := newIssuer(t)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	logs := &logtest.Buffer{}
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		Issuer: is.url, Audience: audience, Clock: clk.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	}, is.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return v, &bundle{is: is, clock: clk, logs: logs}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]auth.Config{
		"Config.Issuer":             {Audience: "a"},
		"must be an http(s) URL":    {Issuer: "ftp://x", Audience: "a"},
		"Config.Audience":           {Issuer: "http://127.0.0.1:1/oidc"},
		"not an asymmetric":         {Issuer: "http://127.0.0.1:1/oidc", Audience: "a", Algorithms: []string{"HS256"}},
		"Config.MinRefreshInterval": {Issuer: "http://127.0.0.1:1/oidc", Audience: "a", MinRefreshInterval: -1},
	} {
		_, err := auth.NewVerifier(context.Background(), cfg, nil)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestDiscoveryFindsJWKS(t *testing.T) {
	v, b := setup(t)
	if got, want := v.JWKSURL(), b.is.url+"/jwks"; got != want {
		t.Fatalf("JWKSURL = %q, want %q", got, want)
	}
}

func TestVerifyValid(t *testing.T) {
	v, b := setup(t)
	now := b.clock.Now()
	tok := sign(t, b.is.key(0), jose.ES384, "at+jwt", b.is.claims(now, "dashboard:read dashboard:write"))
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "user-1" || p.ClientID != "app-1" || p.TokenID != "j1" ||
		!p.Has("dashboard:read") || !p.Has("dashboard:write") || p.Has("dashboard") ||
		!p.ExpiresAt.Equal(now.Add(time.Hour)) || len(p.Audience) != 1 || p.Audience[0] != audience {
		t.Fatalf("principal = %+v", p)
	}
	// No typ header is accepted.
	c := b.is.claims(now, "")
	if _, err := v.Verify(context.Background(), sign(t, b.is.key(0), jose.ES384, "", c)); err != nil {
		t.Fatal(err)
	}
}

func hs256WithPublicKey(t *testing.T, pub *ecdsa.PublicKey, claims map[string]any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: der}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, _ := s.Sign(payload)
	out, _ := obj.CompactSerialize()
	return out
}

func unsignedToken(claims map[string]any) string {
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"k1"}`))
	payload, _ := json.Marshal(claims)
	return hdr + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

func tamper(tok string, claims map[string]any) string {
	parts := strings.Split(tok, ".")
	payload, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// TestAttackMatrix sends each malicious token through the middleware of a
// real HTTP server and checks the status and the logged reason.
func TestAttackMatrix(t *testing.T) {
	v, b := setup(t)
	now := b.clock.Now()
	k := b.is.key(0)
	with := func(mod func(c map[string]any)) map[string]any {
		c := b.is.claims(now, "dashboard:read")
		mod(c)
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	strange := jose.JSONWebKey{Key: k.Key, KeyID: "not-published", Algorithm: "ES384"}
	valid := sign(t, k, jose.ES384, "at+jwt", b.is.claims(now, "dashboard:read"))

	handler := v.Require(auth.ScopeDashboardRead)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.PrincipalFrom(r.Context())
		fmt.Fprint(w, p.Subject)
	}))
	srv := httptest.NewServer(handler)
	defer srv.Close()

	cases := []struct {
		name   string
		token  string
		status int
		reason error
	}{
		{"valid", valid, 200, nil},
		{"missing", "", 401, auth.ErrMissingToken},
		{"wrong audience", sign(t, k, jose.ES384, "at+jwt", with(func(c map[string]any) { c["aud"] = "https://other.api" })), 401, auth.ErrAudience},
		{"id token", sign(t, k, jose.ES384, "", with(func(c map[string]any) { c["aud"] = "app-1"; c["nonce"] = "n" })), 401, auth.ErrAudience},
		{"id token typ JWT", sign(t, k, jose.ES384, "JWT", with(func(c map[string]any) { c["aud"] = audience })), 401, auth.ErrType},
		{"wrong issuer", sign(t, k, jose.ES384, "at+jwt", with(func(c map[string]any) { c["iss"] = "https://evil.example/oidc" })), 401, auth.ErrIssuer},
		{"expired by 1s", sign(t, k, jose.ES384, "at+jwt", with(func(c map[string]any) { c["exp"] = now.Unix() - 1 })), 401, auth.ErrExpired},
		{"not yet valid", sign(t, k, jose.ES384, "at+jwt", with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), 401, auth.ErrNotYetValid},
		{"issued in future", sign(t, k, jose.ES384, "at+jwt", with(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() })), 401, auth.ErrNotYetValid},
		{"alg none", unsignedToken(b.is.claims(now, "dashboard:read")), 401, auth.ErrAlgorithm},
		{"HS256 with public key", hs256WithPublicKey(t, &k.Key.(*ecdsa.PrivateKey).PublicKey, b.is.claims(now, "dashboard:read")), 401, auth.ErrAlgorithm},
		{"RS256", sign(t, jose.JSONWebKey{Key: rsaKey, KeyID: "k1"}, jose.RS256, "at+jwt", b.is.claims(now, "dashboard:read")), 401, auth.ErrAlgorithm},
		{"unknown kid", sign(t, strange, jose.ES384, "at+jwt", b.is.claims(now, "dashboard:read")), 401, auth.ErrUnknownKey},
		{"tampered payload", tamper(valid, with(func(c map[string]any) { c["scope"] = "dashboard:read integrations:admin" })), 401, auth.ErrSignature},
		{"garbage", "abc.def", 401, auth.ErrMalformed},
		{"missing scope", sign(t, k, jose.ES384, "at+jwt", b.is.claims(now, "profile:read")), 403, auth.ErrScope},
		{"substring scope", sign(t, k, jose.ES384, "at+jwt", b.is.claims(now, "dashboard:readonly")), 403, auth.ErrScope},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, verr := v.Verify(context.Background(), tc.token)
			if tc.reason == nil && verr != nil {
				t.Fatalf("Verify: %v", verr)
			}
			if tc.reason != nil && tc.reason != auth.ErrScope && !errors.Is(verr, tc.reason) {
				t.Fatalf("Verify error = %v, want %v", verr, tc.reason)
			}
			req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			wa := resp.Header.Get("WWW-Authenticate")
			switch {
			case tc.status == 403 && !strings.Contains(wa, `error="insufficient_scope"`),
				tc.status == 401 && tc.reason != auth.ErrMissingToken && !strings.Contains(wa, `error="invalid_token"`):
				t.Fatalf("WWW-Authenticate = %q", wa)
			}
			if tc.reason != nil && !strings.Contains(b.logs.String(), `"reason":"`+tc.reason.Error()+`"`) {
				t.Fatalf("reason %q not logged", tc.reason)
			}
			if tc.token != "" && strings.Contains(b.logs.String(), tc.token) {
				t.Fatal("token logged")
			}
		})
	}
}

func TestRequireClient(t *testing.T) {
	v, b := setup(t)
	tok := sign(t, b.is.key(0), jose.ES384, "at+jwt", b.is.claims(b.clock.Now(), "data:write"))
	for _, tc := range []struct {
		app    string
		status int
	}{{"app-1", 200}, {"app-2", 403}, {"", 403}} {
		h := v.RequireClient(func(*http.Request) (string, error) { return tc.app, nil }, auth.ScopeDataWrite)(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv := httptest.NewServer(h)
		req, _ := http.NewRequest("POST", srv.URL, nil)
		req.Header.Set("Authorization", "bearer "+tok)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("app %q: status %d, want %d", tc.app, resp.StatusCode, tc.status)
		}
	}
	if !strings.Contains(b.logs.String(), `"reason":"wrong client"`) {
		t.Fatal("wrong client not logged")
	}
}

func TestVerifyEvent(t *testing.T) {
	v, b := setup(t)
	tok := sign(t, b.is.key(0), jose.ES384, "at+jwt", b.is.claims(b.clock.Now(), "data:write"))
	e := cloudevents.NewEvent()
	e.SetID("e1")
	e.SetSource("integrations/x")
	e.SetType("com.myscrollr.connect.record.pushed")
	if _, err := v.VerifyEvent(context.Background(), e, auth.ScopeDataWrite); !errors.Is(err, auth.ErrMissingToken) {
		t.Fatalf("no token: %v", err)
	}
	e.SetExtension(auth.EventAuthExtension, "Bearer "+tok)
	p, err := v.VerifyEvent(context.Background(), e, auth.ScopeDataWrite)
	if err != nil || p.ClientID != "app-1" {
		t.Fatalf("VerifyEvent = %v, %v", p, err)
	}
	if _, err := v.VerifyEvent(context.Background(), e, auth.ScopeDashboardWrite); !errors.Is(err, auth.ErrScope) {
		t.Fatalf("missing scope: %v", err)
	}
}

// TestUnknownKidFlood: 10,000 tokens with random unknown kids, verified in
// parallel, cause at most 2 JWKS fetches (the first load and one refresh).
func TestUnknownKidFlood(t *testing.T) {
	v, b := setup(t)
	now := b.clock.Now()
	k := b.is.key(0)
	// One signed token; only the kid differs, which fails before the signature.
	base := sign(t, k, jose.ES384, "at+jwt", b.is.claims(now, "dashboard:read"))
	_, payloadAndSig, _ := strings.Cut(base, ".")
	const n = 10_000
	var wg sync.WaitGroup
	var accepted atomic.Int64
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				hdr := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"alg":"ES384","typ":"at+jwt","kid":"rnd-%d"}`, i))
				if _, err := v.Verify(context.Background(), hdr+"."+payloadAndSig); err == nil {
					accepted.Add(1)
				} else if !errors.Is(err, auth.ErrUnknownKey) {
					t.Errorf("token %d: %v", i, err)
					return
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if accepted.Load() != 0 {
		t.Fatalf("%d tokens with unknown kids accepted", accepted.Load())
	}
	if hits := b.is.jwksHits.Load(); hits > 2 {
		t.Fatalf("%d JWKS fetches, want at most 2", hits)
	}
	// Valid tokens are still accepted.
	if _, err := v.Verify(context.Background(), base); err != nil {
		t.Fatal(err)
	}
}

// TestKeyRotation: a token signed with a newly published key is accepted
// once the refresh interval has passed, without a restart.
func TestKeyRotation(t *testing.T) {
	v, b := setup(t)
	now := b.clock.Now()
	if _, err := v.Verify(context.Background(), sign(t, b.is.key(0), jose.ES384, "at+jwt", b.is.claims(now, ""))); err != nil {
		t.Fatal(err)
	}
	k2 := b.is.addKey(t, "k2")
	tok2 := sign(t, k2, jose.ES384, "at+jwt", b.is.claims(now, ""))
	if _, err := v.Verify(context.Background(), tok2); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("within the refresh interval: %v", err)
	}
	b.clock.Advance(31 * time.Second)
	if _, err := v.Verify(context.Background(), tok2); err != nil {
		t.Fatalf("after the refresh interval: %v", err)
	}
	if hits := b.is.jwksHits.Load(); hits != 2 {
		t.Fatalf("%d JWKS fetches, want 2", hits)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		Issuer: srv.URL + "/oidc", Audience: audience, Clock: clk.Now,
		Logger: slog.New(slog.DiscardHandler),
	}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	is := newIssuer(t)
	tok := sign(t, is.key(0), jose.ES384, "at+jwt", is.claims(clk.Now(), ""))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrJWKSUnavailable) {
		t.Fatalf("got %v", err)
	}
}

// FuzzVerify: Verify never panics and never accepts a token that is not the
// original valid one.
func FuzzVerify(f *testing.F) {
	v, b := setup(f)
	now := b.clock.Now()
	valid := sign(f, b.is.key(0), jose.ES384, "at+jwt", b.is.claims(now, "dashboard:read"))
	f.Add(valid)
	f.Add("")
	f.Add("a.b.c")
	f.Add(unsignedToken(b.is.claims(now, "x")))
	f.Add(strings.Repeat("A", auth.MaxTokenBytes+1))
	f.Add("eyJhbGciOiJFUzM4NCJ9.e30.")
	f.Add(valid[:len(valid)-4])
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := v.Verify(context.Background(), tok)
		if err == nil && tok != valid {
			// A different encoding of the same signed token is acceptable only
			// if it carries the same claims.
			if p.Subject != "user-1" {
				t.Fatalf("accepted forged token %q", tok)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v, bd := setup(b)
	tok := sign(b, bd.is.key(0), jose.ES384, "at+jwt", bd.is.claims(bd.clock.Now(), "dashboard:read dashboard:write"))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// A verified token is remembered, but never past its exp nor past CacheTTL, and a failed
// verification is never remembered.
func TestVerifiedTokenCache(t *testing.T) {
	v, bd := setup(t)
	ctx := context.Background()
	now := bd.clock.Now()
	claims := bd.is.claims(now, "dashboard:read")
	claims["exp"] = now.Add(10 * time.Minute).Unix()
	tok := sign(t, bd.is.key(0), jose.ES384, "at+jwt", claims)
	p1, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	p1.Scopes[0] = "integrations:admin" // callers mutating a principal must not poison the cache
	p2, err := v.Verify(ctx, tok)
	if err != nil || !p2.Has("dashboard:read") || p2.Has("integrations:admin") {
		t.Fatalf("second verify = %+v, %v", p2, err)
	}
	// Past the cache TTL (5m) the token is verified again (and still valid).
	bd.clock.Advance(6 * time.Minute)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after cache TTL: %v", err)
	}
	// Past exp the cached entry is not used.
	bd.clock.Advance(5 * time.Minute)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("expired token from cache: %v, want ErrExpired", err)
	}
	// A rejected token stays rejected: tampering changes the string, so the cache cannot help it.
	bad := tok[:len(tok)-4] + "AAAA"
	for range 2 {
		if _, err := v.Verify(ctx, bad); err == nil {
			t.Fatal("tampered token accepted")
		}
	}
}

func BenchmarkVerifyUncached(b *testing.B) {
	is := newIssuer(b)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: is.url, Audience: audience, Clock: clk.Now,
		CacheSize: -1, Logger: slog.New(slog.DiscardHandler)}, is.srv.Client())
	if err != nil {
		b.Fatal(err)
	}
	tok := sign(b, is.key(0), jose.ES384, "at+jwt", is.claims(clk.Now(), "dashboard:read dashboard:write"))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
