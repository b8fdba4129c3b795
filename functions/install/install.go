package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/sealed"
)

// source is the CloudEvent source of this function's events.
var source = events.Source("install")

// StateTTL is how long a consent URL (its state) stays usable.
const StateTTL = 10 * time.Minute

// Revoker revokes every grant of a user to an application; *logto.Client satisfies it.
type Revoker interface {
	RevokeGrants(ctx context.Context, userID, appID string) (int, error)
}

// Service serves the install routes and the payments seam (ContinueAfterPayment).
type Service struct {
	pool     *pgxpool.Pool
	keys     *sealed.Keys
	revoker  Revoker
	hc       *http.Client
	issuer   string // LOGTO_ENDPOINT + "/oidc"
	resource string
	callback string
	frontend string
	tokenTTL time.Duration
	log      *slog.Logger
	now      func() time.Time
	pay      *checkouts // nil: payments not configured (checkout.go)
}

// New returns a Service. hc calls the identity server's token endpoint (nil: a client with a
// 15-second timeout); now stamps everything (nil: time.Now).
func New(cfg Config, pool *pgxpool.Pool, revoker Revoker, hc *http.Client, log *slog.Logger, now func() time.Time) (*Service, error) {
	if pool == nil || revoker == nil || cfg.Keys == nil {
		return nil, errors.New("install: a database pool, a Logto client and sealing keys are required")
	}
	if cfg.LogtoEndpoint == "" || cfg.APIResource == "" || cfg.InstallCallbackURL == "" || cfg.FrontendURL == "" {
		return nil, errors.New("install: LOGTO_ENDPOINT, LOGTO_API_RESOURCE, INSTALL_CALLBACK_URL and FRONTEND_URL are required")
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Service{pool: pool, keys: cfg.Keys, revoker: revoker, hc: hc, issuer: cfg.LogtoEndpoint + "/oidc",
		resource: cfg.APIResource, callback: cfg.InstallCallbackURL, frontend: cfg.FrontendURL,
		tokenTTL: cfg.TokenTTL, log: log, now: now, pay: newCheckouts(cfg.Payments, nil)}, nil
}

// Routes serves the user routes behind v (any user token of the API resource), the consent
// callback (no token: the state is the binding) and the integration's claim (its own token).
func (s *Service) Routes(v *auth.Verifier) http.Handler {
	mux := http.NewServeMux()
	user := func(h httpx.HandlerFunc) http.Handler { return v.Require()(userOnly(h)) }
	mux.Handle("POST /v1/installs", user(s.start))
	mux.Handle("GET /v1/installs", user(s.list))
	mux.Handle("GET /v1/installs/callback", httpx.HandlerFunc(s.handleCallback))
	mux.Handle("POST /v1/integration/installs/{id}/token", v.RequireClient(s.installClient)(httpx.HandlerFunc(s.claim)))
	return mux
}

// userOnly refuses machine-to-machine tokens (Logto gives them sub = client_id): installs
// belong to people.
func userOnly(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, ok := auth.PrincipalFrom(r.Context())
		if !ok || p.Subject == "" {
			return httpx.Unauthorized("a bearer token is required")
		}
		if p.Subject == p.ClientID || len(p.Subject) > 128 {
			return httpx.Forbidden("installs are made with a user's token, not an application's")
		}
		return h(w, r)
	}
}

func userOf(r *http.Request) string {
	p, _ := auth.PrincipalFrom(r.Context())
	return p.Subject
}

var integrationName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// notAvailable answers a name that does not exist and an unpublished integration of another
// developer alike: an unpublished listing is not even confirmed to exist.
func notAvailable(name string) *httpx.Problem {
	return httpx.NotFound("no integration called " + strconv.Quote(clip.String(name, 64)) + " can be installed")
}

// listing is what an install needs of an integration.
type listing struct {
	ID, Name, DeveloperID string
	AppID, SecretSealed   *string
	Published             bool
	PricingModel          string
	PriceCents            int64
	Currency              string
	Scopes                []string // the manifest's
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func loadListing(ctx context.Context, q querier, where string, arg any) (*listing, error) {
	var l listing
	err := q.QueryRow(ctx, `SELECT id::text, name, developer_id, logto_app_id, client_secret_sealed, is_published,
		pricing_model, price_cents, currency,
		coalesce(ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(manifest->'scopes') = 'array'
			THEN manifest->'scopes' ELSE '[]' END)), '{}')
		FROM integrations WHERE `+where, arg).Scan(&l.ID, &l.Name, &l.DeveloperID, &l.AppID, &l.SecretSealed,
		&l.Published, &l.PricingModel, &l.PriceCents, &l.Currency, &l.Scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// lockInstall takes the (user, integration) lock of migration 00008's protocol, shared with
// functions/uninstall.
func lockInstall(ctx context.Context, tx pgx.Tx, userID, integrationID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))`, userID, integrationID)
	return err
}

// secretAAD binds a sealed client secret to its integration row: the registry's format
// (functions/registry secretAAD), which seals it.
func secretAAD(integrationID string) []byte {
	return []byte("integration " + integrationID + " client_secret")
}

func stateAAD(attemptID string) []byte { return []byte("install attempt " + attemptID + " state") }
func verifierAAD(attemptID string) []byte {
	return []byte("install attempt " + attemptID + " verifier")
}
func tokensAAD(installID string) []byte { return []byte("install " + installID + " tokens") }

// random32 is 32 random bytes, base64url without padding (43 characters): a state or a PKCE
// code verifier (RFC 7636: 43 to 128 characters).
func random32() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func stateHash(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

// consentURL is the authorization request at the integration's application: code + PKCE
// (S256), the API resource, the requested scopes plus openid and offline_access (a refresh
// token, so the integration keeps working after the access token expires; Logto issues one
// only with prompt=consent).
func (s *Service) consentURL(appID, state, verifier string, scopes []string) string {
	sum := sha256.Sum256([]byte(verifier))
	scope := "openid offline_access"
	for _, sc := range scopes {
		scope += " " + sc
	}
	q := url.Values{
		"client_id":             {appID},
		"redirect_uri":          {s.callback},
		"response_type":         {"code"},
		"scope":                 {scope},
		"resource":              {s.resource},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"prompt":                {"consent"},
	}
	return s.issuer + "/auth?" + q.Encode()
}

// frontendURL is FRONTEND_URL with one query parameter.
func (s *Service) frontendURL(key, value string) string {
	return s.frontend + "?" + url.Values{key: {value}}.Encode()
}
