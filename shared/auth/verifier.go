package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/myscrollr/connect/shared/clip"
)

// MaxTokenBytes bounds the size of a token accepted for parsing.
const MaxTokenBytes = 8 << 10

// FutureLeeway is how far in the future `nbf` and `iat` may be.
const FutureLeeway = 5 * time.Second

// MaxJWKSAge is the longest a fetched JWKS is trusted before it is fetched
// again: the default and the maximum of [Config.JWKSMaxAge].
const MaxJWKSAge = 15 * time.Minute

// defaultJWKSGrace is the default of [Config.JWKSGrace]; maxJWKSGrace bounds it.
const (
	defaultJWKSGrace = 15 * time.Minute
	maxJWKSGrace     = time.Hour
)

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	// Issuer is the token issuer, ${LOGTO_ENDPOINT}/oidc.
	Issuer string
	// Audience is the API resource indicator the tokens must be issued for
	// (LOGTO_API_RESOURCE).
	Audience string
	// Algorithms are the accepted JWS algorithms; default ["ES384"].
	Algorithms []string
	// JWKSURL is where the signing keys are published; default the jwks_uri of
	// the issuer's discovery document. Discovery that fails at start is retried
	// by later verifications (rate-limited like JWKS fetches), and tokens are
	// refused with ErrJWKSUnavailable until it succeeds; no URL is guessed.
	JWKSURL string
	// MinRefreshInterval is the least time between two JWKS fetch attempts
	// (unknown kid, failed signature, expired key set, discovery retry);
	// default 30s, at most JWKSMaxAge.
	MinRefreshInterval time.Duration
	// JWKSMaxAge is the longest a fetched JWKS is trusted: after it the next
	// verification fetches the keys again, so a key withdrawn at the identity
	// provider stops verifying tokens. The JWKS response's Cache-Control
	// max-age (less its Age) shortens it, no-store and no-cache make it the
	// shortest the rate limit allows (MinRefreshInterval); default and maximum
	// MaxJWKSAge (15m).
	JWKSMaxAge time.Duration
	// JWKSGrace is how long keys past their refresh time keep verifying
	// tokens while the JWKS cannot be fetched (identity provider down), so an
	// outage shorter than this does not log everyone out; after it every
	// token is refused with ErrJWKSUnavailable until a fetch succeeds. Keys
	// absent from a successful fetch are never trusted again, grace or not.
	// Default 15m, at most 1h; negative means none (fail closed at the
	// refresh time).
	JWKSGrace time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger receives rejection reasons from the middleware and the key set's warnings (failed
	// discovery or JWKS fetches); default slog.Default().
	Logger *slog.Logger
	// CacheSize bounds how many verified tokens are remembered (by SHA-256 of the token) so
	// a token presented again skips the signature check; default 10000, negative disables.
	CacheSize int
	// CacheTTL is the longest a verified token is remembered (never at or past its exp, and
	// never past a change of the published keys); default 5m, at most JWKSMaxAge.
	CacheTTL time.Duration
}

func (c *Config) validate() error {
	if c.Issuer == "" {
		return errors.New("auth: Config.Issuer (LOGTO_ENDPOINT + \"/oidc\") is required")
	}
	if !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://") {
		return fmt.Errorf("auth: Config.Issuer %q must be an http(s) URL", c.Issuer)
	}
	if c.Audience == "" {
		return errors.New("auth: Config.Audience (LOGTO_API_RESOURCE) is required")
	}
	for _, a := range c.Algorithms {
		switch jose.SignatureAlgorithm(a) {
		case jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
			jose.PS256, jose.PS384, jose.PS512, jose.EdDSA:
		default:
			return fmt.Errorf("auth: Config.Algorithms: %q is not an asymmetric JWS algorithm", a)
		}
	}
	if c.JWKSURL != "" {
		if err := checkJWKSURL(c.JWKSURL, ""); err != nil {
			return fmt.Errorf("auth: Config.JWKSURL: %v", err)
		}
	}
	if c.MinRefreshInterval < 0 {
		return errors.New("auth: Config.MinRefreshInterval must not be negative")
	}
	if c.JWKSMaxAge < 0 || c.JWKSMaxAge > MaxJWKSAge {
		return fmt.Errorf("auth: Config.JWKSMaxAge must be between 0 (default) and %s", MaxJWKSAge)
	}
	if c.JWKSGrace > maxJWKSGrace {
		return fmt.Errorf("auth: Config.JWKSGrace must be at most %s", maxJWKSGrace)
	}
	maxAge, minInterval := cmp.Or(c.JWKSMaxAge, MaxJWKSAge), cmp.Or(c.MinRefreshInterval, defaultMinRefreshInterval)
	if minInterval > maxAge {
		return fmt.Errorf("auth: Config.MinRefreshInterval (%s) must not exceed Config.JWKSMaxAge (%s)", minInterval, maxAge)
	}
	return nil
}

// Principal is the verified identity a token carries.
type Principal struct {
	Subject   string    // `sub`: the Logto user id, or the client id for M2M tokens
	ClientID  string    // `client_id`: the Logto application that obtained the token
	Scopes    []string  // `scope`, split on spaces
	Audience  []string  // `aud`
	ExpiresAt time.Time // `exp`
	TokenID   string    // `jti`, for audit logs
}

// Has reports whether the principal holds scope, by exact match.
func (p *Principal) Has(scope string) bool {
	return p != nil && scope != "" && slices.Contains(p.Scopes, scope)
}

// HasAll reports whether the principal holds every scope.
func (p *Principal) HasAll(scopes ...string) bool {
	for _, s := range scopes {
		if !p.Has(s) {
			return false
		}
	}
	return true
}

// Verifier verifies access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg   Config
	keys  *keySet
	oidc  *oidc.IDTokenVerifier
	log   *slog.Logger
	cache *verifiedCache // nil when disabled
}

const defaultMinRefreshInterval = 30 * time.Second

// NewVerifier returns a Verifier for cfg. client fetches discovery and the
// JWKS (nil means http.DefaultClient). When cfg.JWKSURL is empty it reads the
// issuer's discovery document; if that fails it logs a warning and still
// returns (an identity provider blip must not stop start-up): verifications
// retry discovery, rate-limited like JWKS fetches, and refuse every token with
// ErrJWKSUnavailable until it succeeds. The JWKS itself is fetched on first use.
func NewVerifier(ctx context.Context, cfg Config, client *http.Client) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{string(jose.ES384)}
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = defaultMinRefreshInterval
	}
	if cfg.JWKSMaxAge == 0 {
		cfg.JWKSMaxAge = MaxJWKSAge
	}
	switch {
	case cfg.JWKSGrace == 0:
		cfg.JWKSGrace = defaultJWKSGrace
	case cfg.JWKSGrace < 0:
		cfg.JWKSGrace = 0
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	cfg.CacheTTL = min(cfg.CacheTTL, cfg.JWKSMaxAge)
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	algs := make([]jose.SignatureAlgorithm, len(cfg.Algorithms))
	for i, a := range cfg.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	ks := newKeySet(cfg, client, algs)
	if cfg.JWKSURL == "" {
		dctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		u, err := ks.discover(dctx)
		cancel()
		if err != nil {
			cfg.Logger.Warn("auth: discovery failed; tokens are refused until a retry succeeds",
				"issuer", cfg.Issuer, "error", err)
		} else {
			ks.url = u
		}
	}
	ov := oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: slices.Clone(cfg.Algorithms),
		Now:                  cfg.Clock,
	})
	return &Verifier{cfg: cfg, keys: ks, oidc: ov, log: cfg.Logger,
		cache: newVerifiedCache(cfg.CacheSize, cfg.CacheTTL)}, nil
}

// JWKSURL returns the URL the keys are fetched from: Config.JWKSURL or the
// discovered jwks_uri, "" while discovery has not succeeded.
func (v *Verifier) JWKSURL() string { return v.keys.jwksURL() }

// claims are the access token claims beyond what go-oidc checks.
type claims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	ClientID  string       `json:"client_id"`
	Scope     *string      `json:"scope"`
	NotBefore *json.Number `json:"nbf"`
	IssuedAt  *json.Number `json:"iat"`
	JTI       string       `json:"jti"`
}

// Verify verifies rawToken and returns its principal. Errors wrap one of the
// Err* reasons.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*Principal, error) {
	if rawToken == "" {
		return nil, ErrMissingToken
	}
	if len(rawToken) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	key := sha256.Sum256([]byte(rawToken))
	// The key set is brought up to date before the cache is consulted, so a
	// cached token is accepted only on keys a fresh verification would use.
	if gen, ok := v.keys.current(ctx); ok {
		if p, ok := v.cache.get(key, v.cfg.Clock(), gen); ok {
			return p, nil
		}
	}
	if err := v.checkHeader(rawToken); err != nil {
		return nil, err
	}
	var note verifyNote
	tok, err := v.oidc.Verify(context.WithValue(ctx, verifyNoteKey{}, &note), rawToken)
	if err != nil {
		return nil, v.classify(rawToken, err, note.err)
	}
	now := v.cfg.Clock()
	// go-oidc accepts a token until now is after exp; RFC 7519 §4.1.4 says it
	// must not be accepted on or after exp.
	if !now.Before(tok.Expiry) {
		return nil, fmt.Errorf("%w: at %s", ErrExpired, tok.Expiry.UTC().Format(time.RFC3339))
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if c.NotBefore != nil {
		t, err := numericDate(*c.NotBefore)
		if err != nil {
			return nil, fmt.Errorf("%w: nbf: %v", ErrMalformed, err)
		}
		if t.After(now.Add(FutureLeeway)) {
			return nil, fmt.Errorf("%w: nbf %s is after %s", ErrNotYetValid, t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	if c.IssuedAt != nil {
		t, err := numericDate(*c.IssuedAt)
		if err != nil {
			return nil, fmt.Errorf("%w: iat: %v", ErrMalformed, err)
		}
		if t.After(now.Add(FutureLeeway)) {
			return nil, fmt.Errorf("%w: iat %s is in the future", ErrNotYetValid, t.UTC().Format(time.RFC3339))
		}
	}
	if tok.Subject == "" {
		return nil, fmt.Errorf("%w: no sub", ErrMalformed)
	}
	p := &Principal{
		Subject:   tok.Subject,
		ClientID:  c.ClientID,
		Audience:  tok.Audience,
		ExpiresAt: tok.Expiry,
		TokenID:   c.JTI,
	}
	if c.Scope != nil {
		p.Scopes = strings.Fields(*c.Scope)
	}
	v.cache.put(key, p, now, note.gen)
	return p, nil
}

// checkHeader rejects tokens whose header is unusable before any key lookup:
// the algorithm must be allowed and the type, if present, at+jwt.
func (v *Verifier) checkHeader(raw string) error {
	algs := make([]jose.SignatureAlgorithm, 0, len(v.cfg.Algorithms))
	for _, a := range v.cfg.Algorithms {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	hdrPart, _, ok := strings.Cut(raw, ".")
	if !ok {
		return fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	var hdr struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	b, err := decodeSegment(hdrPart)
	if err != nil {
		return fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if !slices.Contains(algs, jose.SignatureAlgorithm(hdr.Alg)) {
		return fmt.Errorf("%w: %q (allowed %v)", ErrAlgorithm, clip.Ellipsis(hdr.Alg, 32), v.cfg.Algorithms)
	}
	if hdr.Typ != "" {
		t := strings.ToLower(hdr.Typ)
		if t != "at+jwt" && t != "application/at+jwt" {
			return fmt.Errorf("%w: typ %q", ErrType, clip.Ellipsis(hdr.Typ, 32))
		}
	}
	return nil
}

// classify maps a go-oidc error to a typed reason. Claims are read without
// verification only to name the reason; the token is rejected either way.
func (v *Verifier) classify(raw string, err, keyErr error) error {
	if keyErr != nil {
		return keyErr
	}
	var expired *oidc.TokenExpiredError
	if errors.As(err, &expired) {
		return fmt.Errorf("%w: at %s", ErrExpired, expired.Expiry.UTC().Format(time.RFC3339))
	}
	parts := strings.Split(raw, ".")
	if len(parts) == 3 {
		if b, derr := decodeSegment(parts[1]); derr == nil {
			var c struct {
				Issuer   string       `json:"iss"`
				Audience oidcAudience `json:"aud"`
			}
			if json.Unmarshal(b, &c) == nil {
				if c.Issuer != v.cfg.Issuer {
					return fmt.Errorf("%w: %q", ErrIssuer, clip.Ellipsis(c.Issuer, 128))
				}
				if !slices.Contains([]string(c.Audience), v.cfg.Audience) {
					return fmt.Errorf("%w: %q", ErrAudience, clip.Ellipsis(strings.Join(c.Audience, " "), 128))
				}
			}
		}
	}
	if strings.Contains(err.Error(), "nbf") {
		return fmt.Errorf("%w: %v", ErrNotYetValid, err)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}
