// Package idp is the development identity server: a Logto-compatible OpenID
// provider for running and testing the marketplace on one machine.
//
// It is a real OIDC provider built on github.com/zitadel/oidc/v3/pkg/op, laid
// out like Logto: issuer <base>/oidc, discovery at
// /oidc/.well-known/openid-configuration, keys at /oidc/jwks, token at
// /oidc/token, authorization at /oidc/auth. It supports client credentials,
// authorization code with PKCE (a plain HTML sign-in and consent page that
// names the scopes in words) and resource indicators (RFC 8707: `resource`
// becomes the access token's `aud`). Access tokens are ES384 JWTs shaped like
// Logto's: header `typ: at+jwt` and `kid`; claims iss, sub, aud, client_id,
// space-separated scope, iat, exp, jti.
//
// offline_access (with prompt=consent, as Logto wants it) adds a refresh token
// to the authorization-code answer for confidential clients; grant_type
// refresh_token renews the access token for the same client, subject, resource
// and scopes (or fewer) while the user's grant to the application lives:
// revoking the grant through the Management API (DELETE
// /api/users/{userId}/grants/{grantId}) or deleting the application ends its
// refresh tokens. Refresh tokens are not rotated here (Logto may rotate them;
// a client that keeps the newest one it is given works with both).
//
// It also answers the Logto Management API routes the marketplace calls
// (/api/applications..., /api/users/{id}/grants..., /api/resources...,
// /api/roles...) from an in-memory store, guarded by an M2M token for the
// resource https://default.logto.app/api with scope "all". A completed consent
// creates a grant, which the Management API lists and revokes. A
// machine-to-machine application created through it obtains, by client
// credentials, the scopes of its MachineToMachine roles on the requested
// resource, and none without a role (roles.go).
//
// Dev-only extras, enabled by [Config.DevEndpoints]: POST /dev/token mints a
// token for any subject, scopes, client and audience; POST /dev/rotate-key
// rotates the signing key. [Server.Mint] and [Server.RotateKey] do the same
// in process.
//
// Differences from Logto worth knowing: user accounts are not stored (any
// user name signs in, and becomes `sub`); a resource scope's id is its name;
// without a `resource` the access token's audience is the client id.
package idp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ManagementResource is the Management API resource indicator (Logto OSS).
const ManagementResource = "https://default.logto.app/api"

// DefaultAddr is where the development identity server listens by default.
const DefaultAddr = "127.0.0.1:3001"

// Client is an application registered at start-up.
type Client struct {
	ID     string
	Secret string
	Name   string // shown on the consent page
	// Type is "MachineToMachine" (client credentials), "Traditional" (auth
	// code with a secret) or "SPA" (public, auth code + PKCE). Default
	// "Traditional".
	Type         string
	RedirectURIs []string
	ThirdParty   bool
	// Scopes the client may obtain; nil means any. For machine-to-machine
	// clients these are the scopes of their roles.
	Scopes []string
	// ManagementAPI lets a machine-to-machine client obtain Management API
	// tokens (scope "all").
	ManagementAPI bool
}

// Resource is an API resource with its scopes.
type Resource struct {
	Name      string
	Indicator string
	Scopes    []string
	// Clients, when not nil, are the only applications that may obtain tokens for this
	// resource, by client credentials only: no user flow reaches it. The audiences of the
	// functions' event endpoints are such resources (sender identity, see shared/runtime).
	Clients []string
}

// Config configures a Server. The zero value serves on DefaultAddr.
type Config struct {
	// Issuer is the issuer URL; default http://127.0.0.1:3001/oidc, or
	// derived from the listener by Start.
	Issuer string
	// Clients are registered at start.
	Clients []Client
	// Resources are the API resources; the MyScrollr API with every scope
	// of the marketplace is added by default when empty.
	Resources []Resource
	// ExtraResources are added to Resources (after the default one).
	ExtraResources []Resource
	// DevEndpoints enables POST /dev/token and POST /dev/rotate-key.
	DevEndpoints bool
	// AccessTokenTTL is the access token lifetime; default 1 hour.
	AccessTokenTTL time.Duration
	// KeepKeys is how many signing keys stay published after rotations; default 3.
	KeepKeys int
	Logger   *slog.Logger
	Clock    func() time.Time
}

// DefaultAPIResource is the MyScrollr API resource indicator used locally.
const DefaultAPIResource = "https://api.myscrollr.local"

// Server is the development identity server. Its methods are safe for
// concurrent use.
type Server struct {
	cfg     Config
	issuer  string
	base    string // issuer without /oidc
	log     *slog.Logger
	now     func() time.Time
	store   *store
	handler http.Handler
	legacy  *op.LegacyServer
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = "http://" + DefaultAddr + "/oidc"
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasSuffix(u.Path, "/oidc") {
		return nil, fmt.Errorf("idp: Config.Issuer %q must be an http(s) URL ending in /oidc", cfg.Issuer)
	}
	if cfg.AccessTokenTTL == 0 {
		cfg.AccessTokenTTL = time.Hour
	}
	if cfg.AccessTokenTTL < 0 {
		return nil, errors.New("idp: Config.AccessTokenTTL must not be negative")
	}
	if cfg.KeepKeys == 0 {
		cfg.KeepKeys = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if len(cfg.Resources) == 0 {
		cfg.Resources = []Resource{{Name: "MyScrollr API", Indicator: DefaultAPIResource, Scopes: scopeNames()}}
	}
	cfg.Resources = append(slices.Clone(cfg.Resources), cfg.ExtraResources...)
	s := &Server{cfg: cfg, issuer: cfg.Issuer, base: strings.TrimSuffix(cfg.Issuer, "/oidc"), log: cfg.Logger, now: cfg.Clock}
	s.store = newStore(s)
	for _, c := range cfg.Clients {
		if err := s.store.addClient(c); err != nil {
			return nil, err
		}
	}
	if _, err := s.RotateKey(); err != nil {
		return nil, err
	}
	if err := s.buildHandler(); err != nil {
		return nil, err
	}
	return s, nil
}

// Issuer returns the issuer URL.
func (s *Server) Issuer() string { return s.issuer }

// Handler serves everything: /oidc/..., /login, /api/..., /dev/....
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr (DefaultAddr if empty; "127.0.0.1:0" picks a free
// port), and serves until ctx is done. When cfg.Issuer is empty the issuer
// is derived from the listener. It returns once listening; Done reports the
// end of serving.
func Start(ctx context.Context, addr string, cfg Config) (*Server, <-chan error, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("idp: listen %s: %w", addr, err)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "http://" + ln.Addr().String() + "/oidc"
	}
	s, err := New(cfg)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	srv := &http.Server{Handler: s.Handler(),
		// Slow clients are cut off as at the functions (shared/runtime/timeouts.go): header,
		// whole request (header and body) and idle limits; no write timeout.
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 15 * time.Second, IdleTimeout: 90 * time.Second,
		MaxHeaderBytes: 64 << 10}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info("development identity server listening", "issuer", s.issuer)
	return s, done, nil
}

// signingKey is one ES384 key.
type signingKey struct {
	id  string
	key *ecdsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES384 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is a published key (op.Key).
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES384 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// RotateKey adds a new signing key and signs with it from now on; the
// previous keys stay published (up to Config.KeepKeys in all) so tokens they
// signed still verify. It returns the new key id.
func (s *Server) RotateKey() (string, error) {
	pk, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return "", err
	}
	k := &signingKey{id: randomID(12), key: pk}
	s.store.mu.Lock()
	s.store.keys = append(s.store.keys, k)
	if len(s.store.keys) > s.cfg.KeepKeys {
		s.store.keys = slices.Delete(s.store.keys, 0, len(s.store.keys)-s.cfg.KeepKeys)
	}
	s.store.mu.Unlock()
	return k.id, nil
}

// TokenRequest describes a token for Mint.
type TokenRequest struct {
	Subject  string
	Scopes   []string
	ClientID string        // default "dev-client"
	Audience string        // default DefaultAPIResource
	TTL      time.Duration // default Config.AccessTokenTTL; negative gives an expired token
	// Extra claims, merged last (tests use them to craft odd tokens).
	Extra map[string]any
}

// Mint signs an access token as the server would issue it.
func (s *Server) Mint(r TokenRequest) (string, error) {
	if r.Subject == "" {
		return "", errors.New("idp: Mint: subject is required")
	}
	if r.ClientID == "" {
		r.ClientID = "dev-client"
	}
	if r.Audience == "" {
		r.Audience = DefaultAPIResource
	}
	if r.TTL == 0 {
		r.TTL = s.cfg.AccessTokenTTL
	}
	tok, _, err := s.signAccessToken(r.Subject, r.ClientID, r.Audience, r.Scopes, r.TTL, r.Extra)
	return tok, err
}

// signAccessToken signs a Logto-shaped access token and returns it with its id.
func (s *Server) signAccessToken(sub, clientID, aud string, scopes []string, ttl time.Duration, extra map[string]any) (string, string, error) {
	now := s.now()
	jti := randomID(16)
	claims := map[string]any{
		"iss": s.issuer, "sub": sub, "aud": aud, "client_id": clientID,
		"scope": strings.Join(scopes, " "), "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": jti,
	}
	for k, v := range extra {
		claims[k] = v
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", err
	}
	k := s.store.currentKey()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return "", "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", "", err
	}
	out, err := obj.CompactSerialize()
	return out, jti, err
}

// verifyAccessToken checks a token this server issued (for the Management
// API): signature with a published key, issuer, audience, expiry, scope.
func (s *Server) verifyAccessToken(raw, audience, scope string) (map[string]any, error) {
	if len(raw) > 8<<10 {
		return nil, errors.New("token too long")
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES384})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("malformed token")
	}
	kid := jws.Signatures[0].Protected.KeyID
	var key *signingKey
	s.store.mu.RLock()
	for _, k := range s.store.keys {
		if k.id == kid {
			key = k
		}
	}
	s.store.mu.RUnlock()
	if key == nil {
		return nil, errors.New("unknown key")
	}
	payload, err := jws.Verify(&key.key.PublicKey)
	if err != nil {
		return nil, errors.New("bad signature")
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errors.New("bad claims")
	}
	exp, _ := c["exp"].(float64)
	if c["iss"] != s.issuer || c["aud"] != audience || int64(exp) < s.now().Unix() {
		return nil, errors.New("wrong issuer, audience or expired")
	}
	sc, _ := c["scope"].(string)
	if !slices.Contains(strings.Fields(sc), scope) {
		return nil, errors.New("missing scope " + scope)
	}
	return c, nil
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
