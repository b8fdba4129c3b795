package auth

import (
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
)

// MaxTokenBytes bounds the size of a token accepted for parsing.
const MaxTokenBytes = 8 << 10

// FutureLeeway is how far in the future `nbf` and `iat` may be.
const FutureLeeway = 5 * time.Second

// Config configures a Verifier. Issuer and Audience are required.
type Config struct {
	// Issuer is the token issuer, ${LOGTO_ENDPOINT}/oidc.
	Issuer string
	// Audience is the API resource indicator the tokens must be issued for
	// (LOGTO_API_RESOURCE).
	Audience string
	// Algorithms are the accepted JWS algorithms; default ["ES384"].
	Algorithms []string
	// JWKSURL is where the signing keys are published; default the
	// discovery document's jwks_uri, or Issuer+"/jwks" if discovery fails.
	JWKSURL string
	// MinRefreshInterval is the least time between two JWKS fetches; default 30s.
	MinRefreshInterval time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger receives rejection reasons from the middleware; default slog.Default().
	Logger *slog.Logger
	// CacheSize bounds how many verified tokens are remembered (by SHA-256 of the token) so
	// a token presented again skips the signature check; default 10000, negative disables.
	CacheSize int
	// CacheTTL is the longest a verified token is remembered (never past its exp); default
	// 5m. It bounds how long a token signed by a key since removed from the JWKS is accepted.
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
	if c.MinRefreshInterval < 0 {
		return errors.New("auth: Config.MinRefreshInterval must not be negative")
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
	cfg     Config
	keys    *keySet
	oidc    *oidc.IDTokenVerifier
	log     *slog.Logger
	jwksURL string
	cache   *verifiedCache // nil when disabled
}

// NewVerifier returns a Verifier for cfg. client fetches discovery and the
// JWKS (nil means http.DefaultClient). When cfg.JWKSURL is empty it reads the
// issuer's discovery document once; if that fails it falls back to
// Issuer+"/jwks" (Logto's layout) rather than failing start-up.
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
		cfg.MinRefreshInterval = 30 * time.Second
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
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = discoverJWKS(ctx, cfg, client)
	}
	algs := make([]jose.SignatureAlgorithm, len(cfg.Algorithms))
	for i, a := range cfg.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	ks := newKeySet(cfg.JWKSURL, client, algs, cfg.MinRefreshInterval, cfg.Clock)
	ov := oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: slices.Clone(cfg.Algorithms),
		Now:                  cfg.Clock,
	})
	return &Verifier{cfg: cfg, keys: ks, oidc: ov, log: cfg.Logger, jwksURL: cfg.JWKSURL,
		cache: newVerifiedCache(cfg.CacheSize, cfg.CacheTTL)}, nil
}

func discoverJWKS(ctx context.Context, cfg Config, client *http.Client) string {
	fallback := cfg.Issuer + "/jwks"
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		cfg.Logger.Warn("auth: discovery failed, using the default JWKS URL",
			"issuer", cfg.Issuer, "jwks_url", fallback, "error", err)
		return fallback
	}
	var d struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&d); err != nil || d.JWKSURI == "" {
		return fallback
	}
	return d.JWKSURI
}

// JWKSURL returns the URL the keys are fetched from.
func (v *Verifier) JWKSURL() string { return v.jwksURL }

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
	if p, ok := v.cache.get(key, v.cfg.Clock()); ok {
		return p, nil
	}
	if err := v.checkHeader(rawToken); err != nil {
		return nil, err
	}
	var keyErr error
	tok, err := v.oidc.Verify(context.WithValue(ctx, errHolderKey{}, &keyErr), rawToken)
	if err != nil {
		return nil, v.classify(rawToken, err, keyErr)
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	now := v.cfg.Clock()
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
	v.cache.put(key, p, now)
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
		return fmt.Errorf("%w: %q (allowed %v)", ErrAlgorithm, truncate(hdr.Alg, 32), v.cfg.Algorithms)
	}
	if hdr.Typ != "" {
		t := strings.ToLower(hdr.Typ)
		if t != "at+jwt" && t != "application/at+jwt" {
			return fmt.Errorf("%w: typ %q", ErrType, truncate(hdr.Typ, 32))
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
					return fmt.Errorf("%w: %q", ErrIssuer, truncate(c.Issuer, 128))
				}
				if !slices.Contains([]string(c.Audience), v.cfg.Audience) {
					return fmt.Errorf("%w: %q", ErrAudience, truncate(strings.Join(c.Audience, " "), 128))
				}
			}
		}
	}
	if strings.Contains(err.Error(), "nbf") {
		return fmt.Errorf("%w: %v", ErrNotYetValid, err)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}
