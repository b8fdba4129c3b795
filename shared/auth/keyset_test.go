package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/logging/logtest"
)

// provider is an identity provider on 127.0.0.1 whose keys, JWKS Cache-Control and
// availability the test controls, and which logs every request it receives. Its discovery
// document points at /oidc/keys, so a request to a guessed /oidc/jwks is visible.
type provider struct {
	srv *httptest.Server
	url string // the issuer

	mu            sync.Mutex
	keys          []jose.JSONWebKey // private
	cacheControl  string
	age           string
	discoveryDown bool
	jwksDown      bool
	doc           map[string]any // overrides of the discovery document
	requests      []string       // request paths, in order
}

func newProvider(t testing.TB) *provider {
	t.Helper()
	p := &provider{}
	p.setKey(t, "k1")
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	p.url = p.srv.URL + "/oidc"
	return p
}

func (p *provider) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r.URL.Path)
	switch r.URL.Path {
	case "/oidc/.well-known/openid-configuration":
		if p.discoveryDown {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		doc := map[string]any{"issuer": p.url, "jwks_uri": p.url + "/keys"}
		for k, v := range p.doc {
			doc[k] = v
		}
		_ = json.NewEncoder(w).Encode(doc)
	case "/oidc/keys":
		if p.jwksDown {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var set jose.JSONWebKeySet
		for _, k := range p.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		if p.cacheControl != "" {
			w.Header().Set("Cache-Control", p.cacheControl)
		}
		if p.age != "" {
			w.Header().Set("Age", p.age)
		}
		_ = json.NewEncoder(w).Encode(set)
	default:
		http.NotFound(w, r)
	}
}

// setKey publishes a new key under kid, replacing any key published under it.
func (p *provider) setKey(t testing.TB, kid string) jose.JSONWebKey {
	t.Helper()
	pk, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := jose.JSONWebKey{Key: pk, KeyID: kid, Algorithm: "ES384", Use: "sig"}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = slices.DeleteFunc(p.keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
	p.keys = append(p.keys, k)
	return k
}

func (p *provider) removeKey(kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = slices.DeleteFunc(p.keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
}

func (p *provider) key(kid string) jose.JSONWebKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.keys {
		if k.KeyID == kid {
			return k
		}
	}
	panic("no key " + kid)
}

func (p *provider) set(f func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// count returns how many requests reached path.
func (p *provider) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.requests {
		if r == path {
			n++
		}
	}
	return n
}

func (p *provider) fetches() int { return p.count("/oidc/keys") }

// assertNoGuess fails if any request went anywhere but discovery and the discovered JWKS.
func (p *provider) assertNoGuess(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.requests {
		if r != "/oidc/.well-known/openid-configuration" && r != "/oidc/keys" {
			t.Fatalf("request to %s; requests: %v", r, p.requests)
		}
	}
}

// token signs valid access token claims at now, expiring in an hour, with key.
func (p *provider) token(t testing.TB, key jose.JSONWebKey, now time.Time) string {
	t.Helper()
	return sign(t, key, jose.ES384, "at+jwt", map[string]any{
		"iss": p.url, "sub": "user-1", "aud": audience, "client_id": "app-1",
		"scope": "dashboard:read", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
}

type keysBundle struct {
	p     *provider
	clock *clock
	logs  *logtest.Buffer
}

func setupKeys(t *testing.T, mod func(*auth.Config)) (*auth.Verifier, *keysBundle) {
	t.Helper()
	p := newProvider(t)
	return verifierFor(t, p, mod)
}

func verifierFor(t *testing.T, p *provider, mod func(*auth.Config)) (*auth.Verifier, *keysBundle) {
	t.Helper()
	b := &keysBundle{p: p, clock: &clock{t: time.Unix(1_800_000_000, 0)}, logs: &logtest.Buffer{}}
	cfg := auth.Config{Issuer: p.url, Audience: audience, Clock: b.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(b.logs, nil))}
	if mod != nil {
		mod(&cfg)
	}
	v, err := auth.NewVerifier(context.Background(), cfg, p.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return v, b
}

func mustVerify(t *testing.T, v *auth.Verifier, tok, what string) {
	t.Helper()
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustRefuse(t *testing.T, v *auth.Verifier, tok string, want error, what string) {
	t.Helper()
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

// A running verifier keeps accepting tokens when the identity provider replaces the key under
// the same kid: the failed signature of a known kid refreshes the JWKS (rate-limited) and
// retries once. A token of the replaced key is refused afterwards, even though it was cached.
func TestRotationReusingKid(t *testing.T) {
	v, b := setupKeys(t, nil)
	old := b.p.token(t, b.p.key("k1"), b.clock.Now())
	mustVerify(t, v, old, "before rotation")

	b.clock.Advance(time.Minute)
	fresh := b.p.token(t, b.p.setKey(t, "k1"), b.clock.Now())
	mustVerify(t, v, fresh, "new key under the old kid")
	if got := b.p.fetches(); got != 2 {
		t.Fatalf("%d JWKS fetches, want 2 (start, one refresh on the failed signature)", got)
	}
	mustVerify(t, v, fresh, "new key again")
	mustRefuse(t, v, old, auth.ErrSignature, "token of the replaced key (cached before the rotation)")
	if got := b.p.fetches(); got != 2 {
		t.Fatalf("%d JWKS fetches, want 2: the refused token must not refresh within the interval", got)
	}
}

// A rotation under the same kid within MinRefreshInterval of the last fetch is picked up once
// the interval has passed.
func TestRotationReusingKidRateLimited(t *testing.T) {
	v, b := setupKeys(t, nil)
	mustVerify(t, v, b.p.token(t, b.p.key("k1"), b.clock.Now()), "before rotation")
	fresh := b.p.token(t, b.p.setKey(t, "k1"), b.clock.Now())
	mustRefuse(t, v, fresh, auth.ErrSignature, "within the refresh interval")
	b.clock.Advance(29 * time.Second)
	mustRefuse(t, v, fresh, auth.ErrSignature, "still within the refresh interval")
	if got := b.p.fetches(); got != 1 {
		t.Fatalf("%d JWKS fetches within the interval, want 1", got)
	}
	b.clock.Advance(time.Second)
	mustVerify(t, v, fresh, "after the refresh interval")
}

// N tokens with a known kid and a bad signature, verified in parallel, cause at most one JWKS
// fetch per MinRefreshInterval.
func TestBadSignatureRefreshRateLimited(t *testing.T) {
	v, b := setupKeys(t, nil)
	now := b.clock.Now()
	mustVerify(t, v, b.p.token(t, b.p.key("k1"), now), "valid token")
	attacker, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := jose.JSONWebKey{Key: attacker, KeyID: "k1", Algorithm: "ES384"}
	const n = 200
	tokens := make([]string, n)
	for i := range tokens {
		c := map[string]any{"iss": b.p.url, "sub": "user-1", "aud": audience, "exp": now.Add(time.Hour).Unix(), "jti": i}
		tokens[i] = sign(t, forged, jose.ES384, "at+jwt", c)
	}
	flood := func() {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					if _, err := v.Verify(context.Background(), tokens[i]); !errors.Is(err, auth.ErrSignature) {
						t.Errorf("forged token %d: %v, want ErrSignature", i, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	for round := range 3 {
		b.clock.Advance(30 * time.Second)
		before := b.p.fetches()
		flood()
		if got := b.p.fetches() - before; got > 1 {
			t.Fatalf("round %d: %d JWKS fetches for %d bad signatures in one interval, want at most 1", round, got, n)
		}
	}
	if got := b.p.fetches(); got < 2 {
		t.Fatalf("%d JWKS fetches in all: a bad signature past the interval must refresh", got)
	}
}

// A key removed from the JWKS stops verifying tokens once the refresh period (here the 15 minute
// cap, the JWKS has no Cache-Control) has passed, including a token verified and cached before.
func TestRemovedKeyRefusedAfterRefreshPeriod(t *testing.T) {
	v, b := setupKeys(t, func(c *auth.Config) { c.CacheTTL = auth.MaxJWKSAge })
	k2 := b.p.setKey(t, "k2")
	start := b.clock.Now()
	tok1 := b.p.token(t, b.p.key("k1"), start)
	tok2 := b.p.token(t, k2, start)
	mustVerify(t, v, tok1, "k1")
	mustVerify(t, v, tok2, "k2") // now cached
	b.p.removeKey("k2")
	b.clock.Advance(auth.MaxJWKSAge - time.Second)
	mustVerify(t, v, tok2, "k2 before the refresh period ends")
	if got := b.p.fetches(); got != 1 {
		t.Fatalf("%d JWKS fetches within the refresh period, want 1", got)
	}
	b.clock.Advance(time.Second)
	mustRefuse(t, v, tok2, auth.ErrUnknownKey, "cached token of the removed key at the end of the refresh period")
	mustVerify(t, v, tok1, "k1 is still published")
	if got := b.p.fetches(); got != 2 {
		t.Fatalf("%d JWKS fetches, want 2", got)
	}
}

// The same with a short Cache-Control max-age and the default CacheTTL (5m): the cached token of
// the removed key is refused as soon as max-age has passed.
func TestRemovedKeyRefusedAfterMaxAge(t *testing.T) {
	v, b := setupKeys(t, nil)
	b.p.set(func(p *provider) { p.cacheControl = "public, max-age=60" })
	k2 := b.p.setKey(t, "k2")
	tok2 := b.p.token(t, k2, b.clock.Now())
	mustVerify(t, v, tok2, "k2")
	b.p.removeKey("k2")
	b.clock.Advance(59 * time.Second)
	mustVerify(t, v, tok2, "k2 from the cache within max-age")
	b.clock.Advance(time.Second)
	mustRefuse(t, v, tok2, auth.ErrUnknownKey, "cached token of the removed key after max-age")
}

// The JWKS is fetched again after the Cache-Control max-age (less Age), capped at JWKSMaxAge and
// never sooner than MinRefreshInterval; no-store and no-cache refresh on the next use the rate
// limit allows.
func TestJWKSRefreshPeriod(t *testing.T) {
	for _, tc := range []struct {
		cacheControl, age string
		cfg               func(*auth.Config)
		want              time.Duration
	}{
		{cacheControl: "", want: 15 * time.Minute},
		{cacheControl: "max-age=120", want: 2 * time.Minute},
		{cacheControl: "public, max-age=600, must-revalidate", want: 10 * time.Minute},
		{cacheControl: `max-age="90"`, want: 90 * time.Second},
		{cacheControl: "max-age=3600", want: 15 * time.Minute},
		{cacheControl: "max-age=99999999999999999999999", want: 15 * time.Minute},
		{cacheControl: "max-age=600", age: "300", want: 5 * time.Minute},
		{cacheControl: "max-age=600", age: "900", want: 30 * time.Second},
		{cacheControl: "max-age=5", want: 30 * time.Second},
		{cacheControl: "max-age=0", want: 30 * time.Second},
		{cacheControl: "no-cache", want: 30 * time.Second},
		{cacheControl: "no-store", want: 30 * time.Second},
		{cacheControl: "max-age=120, no-store", want: 30 * time.Second},
		{cacheControl: "max-age=-1", want: 15 * time.Minute},
		{cacheControl: "max-age=soon", want: 15 * time.Minute},
		{cacheControl: "max-age=3600", cfg: func(c *auth.Config) { c.JWKSMaxAge = 5 * time.Minute }, want: 5 * time.Minute},
		{cacheControl: "no-cache", cfg: func(c *auth.Config) { c.MinRefreshInterval = 10 * time.Second }, want: 10 * time.Second},
	} {
		name := tc.cacheControl + " age=" + tc.age
		t.Run(name, func(t *testing.T) {
			v, b := setupKeys(t, tc.cfg)
			b.p.set(func(p *provider) { p.cacheControl, p.age = tc.cacheControl, tc.age })
			tok := b.p.token(t, b.p.key("k1"), b.clock.Now())
			mustVerify(t, v, tok, "first use")
			b.clock.Advance(tc.want - time.Second)
			mustVerify(t, v, tok, "before the refresh time")
			if got := b.p.fetches(); got != 1 {
				t.Fatalf("%d JWKS fetches before %s, want 1", got, tc.want)
			}
			b.clock.Advance(time.Second)
			mustVerify(t, v, tok, "at the refresh time")
			if got := b.p.fetches(); got != 2 {
				t.Fatalf("%d JWKS fetches at %s, want 2", got, tc.want)
			}
		})
	}
}

// When the refresh after the refresh time fails, the keys fetched earlier keep verifying for
// JWKSGrace (the failure is logged), then nothing verifies until a fetch succeeds; a key absent
// from that fetch is not trusted again.
func TestJWKSGrace(t *testing.T) {
	v, b := setupKeys(t, nil)
	b.p.set(func(p *provider) { p.cacheControl = "max-age=60" })
	k2 := b.p.setKey(t, "k2")
	tok1 := b.p.token(t, b.p.key("k1"), b.clock.Now())
	tok2 := b.p.token(t, k2, b.clock.Now())
	mustVerify(t, v, tok1, "k1")
	mustVerify(t, v, tok2, "k2")

	b.p.set(func(p *provider) { p.jwksDown = true })
	b.clock.Advance(time.Minute)
	mustVerify(t, v, tok2, "refresh failed, within the grace")
	if !strings.Contains(b.logs.String(), "JWKS refresh failed") {
		t.Fatalf("refresh failure not logged: %s", b.logs.String())
	}
	b.clock.Advance(15*time.Minute - time.Second)
	mustVerify(t, v, tok1, "last second of the grace")
	b.clock.Advance(time.Second)
	mustRefuse(t, v, tok1, auth.ErrJWKSUnavailable, "grace over")
	mustRefuse(t, v, tok2, auth.ErrJWKSUnavailable, "grace over, cached token")

	b.p.removeKey("k2")
	b.p.set(func(p *provider) { p.jwksDown = false })
	b.clock.Advance(30 * time.Second)
	mustVerify(t, v, tok1, "identity provider back")
	mustRefuse(t, v, tok2, auth.ErrUnknownKey, "removed while the identity provider was down")
}

// With a negative JWKSGrace the verifier fails closed at the refresh time.
func TestJWKSNoGrace(t *testing.T) {
	v, b := setupKeys(t, func(c *auth.Config) { c.JWKSGrace = -1 })
	b.p.set(func(p *provider) { p.cacheControl = "max-age=60" })
	tok := b.p.token(t, b.p.key("k1"), b.clock.Now())
	mustVerify(t, v, tok, "fresh keys")
	b.p.set(func(p *provider) { p.jwksDown = true })
	b.clock.Advance(time.Minute)
	mustRefuse(t, v, tok, auth.ErrJWKSUnavailable, "refresh failed, no grace")
}

// Discovery that fails at start is retried by verifications (rate-limited) and, once it
// succeeds, tokens verify without a restart; no request ever goes to a guessed JWKS URL.
func TestDiscoveryRetried(t *testing.T) {
	p := newProvider(t)
	p.set(func(p *provider) { p.discoveryDown = true })
	v, b := verifierFor(t, p, nil)
	if got := v.JWKSURL(); got != "" {
		t.Fatalf("JWKSURL = %q before discovery succeeded", got)
	}
	if !strings.Contains(b.logs.String(), "discovery failed") {
		t.Fatalf("discovery failure not logged: %s", b.logs.String())
	}
	tok := p.token(t, p.key("k1"), b.clock.Now())
	mustRefuse(t, v, tok, auth.ErrJWKSUnavailable, "discovery still down")
	for range 50 {
		mustRefuse(t, v, tok, auth.ErrJWKSUnavailable, "discovery still down, rate-limited")
	}
	const discovery = "/oidc/.well-known/openid-configuration"
	if got := p.count(discovery); got != 2 {
		t.Fatalf("%d discovery requests, want 2 (start, one retry)", got)
	}
	p.set(func(p *provider) { p.discoveryDown = false })
	mustRefuse(t, v, tok, auth.ErrJWKSUnavailable, "discovery back, retry not yet due")
	b.clock.Advance(time.Second)
	mustVerify(t, v, tok, "discovery back")
	if got, want := v.JWKSURL(), p.url+"/keys"; got != want {
		t.Fatalf("JWKSURL = %q, want %q", got, want)
	}
	if got := p.count(discovery); got != 3 {
		t.Fatalf("%d discovery requests, want 3", got)
	}
	p.assertNoGuess(t)
}

// An explicit JWKSURL skips discovery.
func TestExplicitJWKSURL(t *testing.T) {
	p := newProvider(t)
	v, b := verifierFor(t, p, func(c *auth.Config) { c.JWKSURL = p.url + "/keys" })
	mustVerify(t, v, p.token(t, p.key("k1"), b.clock.Now()), "explicit JWKS URL")
	if got := p.count("/oidc/.well-known/openid-configuration"); got != 0 {
		t.Fatalf("%d discovery requests with an explicit JWKSURL", got)
	}
}

// A discovery document with a jwks_uri that is not an http(s) URL, or that names another
// issuer, is refused, and nothing is fetched from it.
func TestDiscoveryValidated(t *testing.T) {
	for name, doc := range map[string]map[string]any{
		"file scheme":     {"jwks_uri": "file:///etc/passwd"},
		"relative":        {"jwks_uri": "/oidc/keys"},
		"no host":         {"jwks_uri": "http:///oidc/keys"},
		"user info":       {"jwks_uri": "http://user:pw@127.0.0.1:1/keys"},
		"missing":         {"jwks_uri": ""},
		"not a string":    {"jwks_uri": 42},
		"another issuer":  {"issuer": "https://evil.example/oidc"},
		"javascript":      {"jwks_uri": "javascript:alert(1)"},
		"bad percent-esc": {"jwks_uri": "http://127.0.0.1:1/%zz"},
	} {
		t.Run(name, func(t *testing.T) {
			p := newProvider(t)
			p.set(func(p *provider) { p.doc = doc })
			v, b := verifierFor(t, p, nil)
			if got := v.JWKSURL(); got != "" {
				t.Fatalf("JWKSURL = %q", got)
			}
			mustRefuse(t, v, p.token(t, p.key("k1"), b.clock.Now()), auth.ErrJWKSUnavailable, "invalid discovery")
			p.assertNoGuess(t)
			if got := p.fetches(); got != 0 {
				t.Fatalf("%d JWKS fetches", got)
			}
		})
	}
}

// A token is invalid at now == exp and valid one second before; the verified-token cache never
// returns a token at or past its exp.
func TestExpiryBoundary(t *testing.T) {
	v, b := setupKeys(t, nil)
	now := b.clock.Now()
	claims := func(exp time.Time) map[string]any {
		return map[string]any{"iss": b.p.url, "sub": "user-1", "aud": audience, "exp": exp.Unix()}
	}
	k := b.p.key("k1")
	mustRefuse(t, v, sign(t, k, jose.ES384, "at+jwt", claims(now)), auth.ErrExpired, "exp == now")
	soon := sign(t, k, jose.ES384, "at+jwt", claims(now.Add(time.Second)))
	mustVerify(t, v, soon, "exp == now+1s")
	mustVerify(t, v, soon, "exp == now+1s, cached")
	b.clock.Advance(time.Second)
	mustRefuse(t, v, soon, auth.ErrExpired, "cached token at exp")

	// A fractional exp counts from its whole second (go-oidc truncates it): never later.
	frac := sign(t, k, jose.ES384, "at+jwt", map[string]any{"iss": b.p.url, "sub": "u", "aud": audience,
		"exp": json.Number("1800000002.5")})
	mustVerify(t, v, frac, "a second before a fractional exp's whole second")
	b.clock.Advance(time.Second)
	mustRefuse(t, v, frac, auth.ErrExpired, "at a fractional exp's whole second")
}

func TestKeyConfigValidation(t *testing.T) {
	const iss = "http://127.0.0.1:1/oidc"
	for want, cfg := range map[string]auth.Config{
		"Config.JWKSMaxAge must be between":    {Issuer: iss, Audience: "a", JWKSMaxAge: 16 * time.Minute},
		"Config.JWKSMaxAge must be between 0":  {Issuer: iss, Audience: "a", JWKSMaxAge: -time.Second},
		"Config.JWKSGrace must be at most":     {Issuer: iss, Audience: "a", JWKSGrace: 2 * time.Hour},
		"must not exceed Config.JWKSMaxAge":    {Issuer: iss, Audience: "a", JWKSMaxAge: 10 * time.Second},
		"must not exceed Config.JWKSMaxAge (1": {Issuer: iss, Audience: "a", MinRefreshInterval: 20 * time.Minute},
		"Config.JWKSURL":                       {Issuer: iss, Audience: "a", JWKSURL: "ftp://127.0.0.1/keys"},
	} {
		if _, err := auth.NewVerifier(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}
