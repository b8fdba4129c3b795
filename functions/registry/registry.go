package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/conformance"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/outbox"
	"github.com/myscrollr/connect/shared/sealed"
	"github.com/myscrollr/connect/wasmhost"
)

// source is the CloudEvent source of this function's events.
var source = events.Source("registry")

// Checker runs the automated checks of a manifest (shared/conformance). It must return within
// ctx's deadline; the registry stores every result with the version it checked.
type Checker interface {
	Check(ctx context.Context, m *manifest.Manifest) []conformance.Result
}

// CheckFunc adapts a function to Checker.
type CheckFunc func(ctx context.Context, m *manifest.Manifest) []conformance.Result

// Check calls f.
func (f CheckFunc) Check(ctx context.Context, m *manifest.Manifest) []conformance.Result {
	return f(ctx, m)
}

// Apps is what the registry needs of the Logto Management API; *logto.Client satisfies it.
type Apps interface {
	CreateApplication(ctx context.Context, app logto.NewApplication) (*logto.Application, error)
	AssignUserConsentScopes(ctx context.Context, appID string, s logto.ConsentScopes) error
	DeleteApplication(ctx context.Context, id string) error
	RotateSecret(ctx context.Context, appID string) (string, error)
	ClientApps // integration clients, machine-to-machine (client.go)
}

// Service serves the registry's routes.
type Service struct {
	pool     *pgxpool.Pool
	apps     Apps
	checks   Checker
	keys     *sealed.Keys
	callback string
	resource string // LOGTO_API_RESOURCE: the audience of integration clients' tokens (client.go)
	opts     manifest.Options
	timeout  time.Duration
	log      *slog.Logger
	now      func() time.Time

	wasm          *wasmhost.Host // transform.go; nil: the transform routes answer 503
	wasmMaxModule int            // the upload bound (wasmhost.Config.MaxModuleBytes)

	payouts *payouts // payouts.go; nil: the payouts routes answer 503
}

// New returns a Service. now stamps every change (nil: time.Now).
func New(cfg Config, pool *pgxpool.Pool, apps Apps, checks Checker, log *slog.Logger, now func() time.Time) (*Service, error) {
	if pool == nil || apps == nil || checks == nil || cfg.Keys == nil {
		return nil, errors.New("registry: a database pool, a Logto client, a checker and sealing keys are required")
	}
	if cfg.InstallCallbackURL == "" {
		return nil, errors.New("registry: Config.InstallCallbackURL (INSTALL_CALLBACK_URL) is required")
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	s := &Service{
		pool: pool, apps: apps, checks: checks, keys: cfg.Keys, callback: cfg.InstallCallbackURL, resource: cfg.APIResource,
		opts: manifest.Options{AllowLoopbackHTTP: cfg.AllowLoopbackHTTP}, timeout: cfg.CheckTimeout,
		log: log, now: now,
	}
	s.enablePayouts(cfg.Payments, cfg.PayoutsReturnURL, cfg.PayoutsRefreshURL, nil)
	return s, nil
}

// Routes serves the developer routes behind v with integrations:write and the admin routes
// with integrations:admin.
func (s *Service) Routes(v *auth.Verifier) http.Handler {
	mux := http.NewServeMux()
	dev := func(pattern string, h httpx.HandlerFunc) {
		mux.Handle(pattern, v.Require(auth.ScopeIntegrationsWrite)(h))
	}
	admin := func(pattern string, h httpx.HandlerFunc) {
		mux.Handle(pattern, v.Require(auth.ScopeIntegrationsAdmin)(h))
	}
	dev("POST /v1/developer/integrations", s.register)
	dev("GET /v1/developer/integrations", s.list)
	dev("GET /v1/developer/integrations/{name}", s.get)
	dev("POST /v1/developer/integrations/{name}/versions", s.newVersion)
	dev("POST /v1/developer/integrations/{name}/publish", s.publish)
	dev("POST /v1/developer/integrations/{name}/unpublish", s.unpublish)
	dev("POST /v1/developer/integrations/{name}/deprecate", s.deprecate)
	dev("POST /v1/developer/integrations/{name}/secret", s.rotateSecret)
	dev("POST /v1/developer/integrations/{name}/verification", s.requestVerification)
	dev("PUT /v1/developer/integrations/{name}/versions/{version}/transform", s.putTransform)
	dev("POST /v1/developer/integrations/{name}/versions/{version}/transform/try", s.tryTransform)
	dev("POST /v1/developer/payouts", s.startPayouts)
	dev("GET /v1/developer/payouts", s.getPayouts)
	admin("GET /v1/admin/verifications", s.verificationQueue)
	admin("POST /v1/admin/integrations/{name}/tier", s.setTier)
	return mux
}

// principal is the caller; the middleware guarantees one.
func principal(r *http.Request) (*auth.Principal, error) {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok || p.Subject == "" {
		return nil, httpx.Unauthorized("a bearer token is required")
	}
	return p, nil
}

// notYours is the answer for an integration the caller does not own, the same as for one that
// does not exist: another developer's integrations are not even confirmed to exist.
func notYours(name string) *httpx.Problem {
	return httpx.NotFound("no integration of yours is called " + strconv.Quote(clip.String(name, 64)))
}

// readManifest reads a manifest body: JSON content type, bounded by manifest.MaxSize, every
// problem as a 400 naming its JSON pointer.
func (s *Service) readManifest(w http.ResponseWriter, r *http.Request) (*manifest.Manifest, error) {
	if p := jsonContentType(r.Header.Get("Content-Type")); p != nil {
		return nil, p
	}
	body, p := httpx.ReadBody(w, r, manifest.MaxSize)
	if p != nil {
		return nil, p
	}
	m, err := manifest.Parse(body, s.opts)
	var me *manifest.Error
	if errors.As(err, &me) {
		return nil, me.Problem()
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func jsonContentType(ct string) *httpx.Problem {
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		reason := "must be application/json"
		if ct == "" {
			reason = "missing"
		}
		return httpx.BadRequest("Content-Type must be application/json", httpx.FieldError{Field: "Content-Type", Reason: reason})
	}
	return nil
}

// category is the manifest's category, "other" when absent.
func category(m *manifest.Manifest) string {
	if m.Category == "" {
		return "other"
	}
	return m.Category
}

// checkCategory answers 400 naming /category when it is not in the categories table.
func checkCategory(ctx context.Context, q pgx.Tx, m *manifest.Manifest) error {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM categories WHERE slug = $1)`, category(m)).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return httpx.BadRequest("invalid manifest", httpx.FieldError{Field: "/category", Reason: "not a category of the catalog"})
	}
	return nil
}

var checkName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// runChecks runs the checks bounded by the check timeout and makes their results storable: a
// name the table refuses or a reason over 1000 bytes is corrected, and a run that returned
// nothing is a failing required check, so an integration is never publishable unchecked.
func (s *Service) runChecks(ctx context.Context, m *manifest.Manifest) []conformance.Result {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res := s.checks.Check(ctx, m)
	out := make([]conformance.Result, 0, len(res)+1)
	seen := map[string]bool{}
	for _, r := range res {
		if !checkName.MatchString(r.Name) || seen[r.Name] {
			s.log.Warn("registry: a check result with a bad or repeated name was dropped", slog.String("name", clip.String(r.Name, 64)))
			continue
		}
		seen[r.Name] = true
		r.Reason = clip.String(strings.ToValidUTF8(strings.ReplaceAll(r.Reason, "\x00", ""), "?"), 1000)
		if r.ResponseTimeMS != nil && *r.ResponseTimeMS < 0 {
			r.ResponseTimeMS = nil
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		out = append(out, conformance.Result{Name: "checks", Required: true, Reason: "no automated check ran"})
	}
	return out
}

// insertChecks stores the results of a version.
func insertChecks(ctx context.Context, tx pgx.Tx, integrationID, version string, res []conformance.Result, at time.Time) error {
	for _, r := range res {
		if _, err := tx.Exec(ctx, `INSERT INTO integration_checks
			(integration_id, version, name, required, passed, reason, response_time_ms, checked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			integrationID, version, r.Name, r.Required, r.Passed, r.Reason, r.ResponseTimeMS, at); err != nil {
			return err
		}
	}
	return nil
}

// emit writes one event about an integration to the outbox, in tx.
func emit(ctx context.Context, tx pgx.Tx, integrationID, typ string, data any, at time.Time) error {
	ce, err := outbox.New(source, typ, data)
	if err != nil {
		return err
	}
	ce.SetTime(at)
	ce.SetSubject(integrationID)
	_, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "integration", AggregateID: integrationID, CloudEvent: ce})
	return err
}

// owned locks the caller's integration called name in tx, or answers 404.
func owned(ctx context.Context, tx pgx.Tx, name, developer string) (row, error) {
	var it row
	err := tx.QueryRow(ctx, `SELECT `+rowColumns+` FROM integrations
		WHERE name = $1 AND developer_id = $2 FOR UPDATE`, name, developer).Scan(it.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return it, notYours(name)
	}
	return it, err
}

// row is the part of an integrations row the registry's decisions need.
type row struct {
	ID, Name, DeveloperID, Type, Tier string
	DeliveryMode                      *string
	LogtoAppID                        *string
	LatestVersion, CurrentVersion     *string
	IsPublished                       bool
	PricingModel                      string
}

const rowColumns = `id::text, name, developer_id, type, verification_tier, delivery_mode, logto_app_id,
	latest_version, current_version, is_published, pricing_model`

func (it *row) dest() []any {
	return []any{&it.ID, &it.Name, &it.DeveloperID, &it.Type, &it.Tier, &it.DeliveryMode, &it.LogtoAppID,
		&it.LatestVersion, &it.CurrentVersion, &it.IsPublished, &it.PricingModel}
}

func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

// withDeadline bounds a Logto call that must not hang a request.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 15*time.Second)
}

var errNoLatest = fmt.Errorf("registry: integration without a version")
