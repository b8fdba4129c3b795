package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/eventschema"
	"github.com/myscrollr/connect/shared/inbox"
	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/logto"
)

// consumer is this function's name in processed_events.
const consumer = "uninstall"

// eventIDSpace is the namespace of the name-based UUIDs of the install.revoked events, derived
// from the consumed event and the install, so a replay would produce the same ids.
var eventIDSpace = uuid.MustParse("9b0e4c3e-57d1-4c8a-8f0e-6f3b2a9d7c41")

// Revoker revokes every grant of a user to an application; *logto.Client satisfies it.
type Revoker interface {
	RevokeGrants(ctx context.Context, userID, appID string) (int, error)
}

// Service handles the events that remove installs.
type Service struct {
	pool  *pgxpool.Pool
	logto Revoker
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Service. now stamps revoked_at (nil: time.Now).
func New(pool *pgxpool.Pool, lc Revoker, log *slog.Logger, now func() time.Time) (*Service, error) {
	if pool == nil || lc == nil {
		return nil, errors.New("uninstall: a database pool and a Logto client are required")
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Service{pool: pool, logto: lc, log: log, now: now}, nil
}

// HandleEvent is the runtime.EventHandler of the function.
func (s *Service) HandleEvent(ctx context.Context, e event.Event) error {
	switch e.Type() {
	case events.TypeUserDeleted:
		return s.userDeleted(ctx, e)
	case events.TypeSubscriptionEnded:
		return s.subscriptionEnded(ctx, e)
	case events.TypeInstallRevokeRequested:
		return s.revokeRequested(ctx, e)
	}
	return events.Permanent(fmt.Errorf("uninstall: event type %q is not handled here", e.Type()))
}

// Bounds on what an event may carry. The CloudEvent source and id are the key of
// processed_events (a B-tree, whose entries must stay well under 2.7 kB) and a user id is a
// Logto id, far shorter than its bound.
const (
	maxIDBytes     = 256
	maxSourceBytes = 1024
	maxUserIDBytes = 128
)

// checkEvent refuses, as events.Permanent (400, dead-lettered after one attempt), an event
// that could never be processed however often it were redelivered: a source or id that
// PostgreSQL cannot store as text (NUL bytes, invalid UTF-8) or that is too long for the
// processed_events key, data that is not UTF-8, and data off its JSON Schema (events/eventschema).
// Such an event would otherwise fail in PostgreSQL with an error that is retried forever, or,
// off-schema, be acted on although its producer broke the contract.
func checkEvent(e event.Event) error {
	for _, a := range []struct {
		name, value string
		max         int
	}{{"id", e.ID(), maxIDBytes}, {"source", e.Source(), maxSourceBytes}} {
		if reason := badText(a.value, a.max); reason != "" {
			return events.Permanent(fmt.Errorf("uninstall: %s event: attribute %q: %s", e.Type(), a.name, reason))
		}
	}
	if !utf8.Valid(e.Data()) {
		return events.Permanent(fmt.Errorf("uninstall: data of %s: not valid UTF-8", e.Type()))
	}
	if err := eventschema.Validate(e.Type(), e.Data()); err != nil {
		var se *eventschema.Error
		if errors.As(err, &se) {
			return events.Permanent(fmt.Errorf("uninstall: %w", err))
		}
		return fmt.Errorf("uninstall: validate %s: %w", e.Type(), err) // the schemas did not load: not the event's fault
	}
	return nil
}

// badText says why s cannot be stored as an identifier (empty, longer than max bytes, NUL
// bytes or invalid UTF-8, which PostgreSQL's text refuses), or "" when it can.
func badText(s string, max int) string {
	switch {
	case s == "":
		return "required"
	case len(s) > max:
		return fmt.Sprintf("at most %d bytes", max)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	}
	return ""
}

// install is one user_integrations row with what its revocation needs.
type install struct {
	ID, IntegrationID, Name string
	LogtoAppID              *string
	Sandbox                 bool
}

func (s *Service) userDeleted(ctx context.Context, e event.Event) error {
	log := s.logger(ctx)
	if err := checkEvent(e); err != nil {
		return err
	}
	var d events.UserDeleted
	if err := e.DataAs(&d); err != nil {
		return events.Permanent(fmt.Errorf("uninstall: data of %s: %w", e.Type(), err))
	}
	if reason := badText(d.UserID, maxUserIDBytes); reason != "" {
		return events.Permanent(fmt.Errorf("uninstall: data of %s: field \"user_id\": %s", e.Type(), reason))
	}
	log = log.With(slog.String("user_id", d.UserID), slog.String("event_id", e.ID()))

	// A redelivery of a committed event does nothing, not even call Logto.
	done, err := inbox.Seen(ctx, s.pool, consumer, e.Source(), e.ID())
	if err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	if done {
		log.Debug("user.deleted already handled")
		return nil
	}

	// tx 1 of the protocol (revoke.go): mark every install before its grants go.
	installs, err := userInstalls(ctx, s.pool, d.UserID, false)
	if err != nil {
		return err
	}
	if len(installs) > 0 {
		if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			return lockAndMarkAll(ctx, tx, d.UserID, installs)
		}); err != nil {
			return err
		}
	}
	revoked := map[string]bool{}
	if err := s.revoke(ctx, d.UserID, installs, revoked); err != nil {
		return err
	}

	var nInstalls, nReviews int
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		claimed, err := inbox.Claim(ctx, tx, consumer, e.Source(), e.ID())
		if err != nil || !claimed {
			return err
		}
		// tx 2: lock (and mark) again, read again under lock: an install made since the first
		// read is revoked too.
		current, err := userInstalls(ctx, tx, d.UserID, false)
		if err != nil {
			return err
		}
		if err := lockAndMarkAll(ctx, tx, d.UserID, current); err != nil {
			return err
		}
		installs, err := userInstalls(ctx, tx, d.UserID, true)
		if err != nil {
			return err
		}
		if err := s.revoke(ctx, d.UserID, installs, revoked); err != nil {
			return err
		}
		eventID := derivedEventID(e.Source(), e.ID())
		for _, in := range installs {
			if err := s.removeAndAnnounce(ctx, tx, in, d.UserID, events.RevokeUserDeleted, eventID); err != nil {
				return err
			}
		}
		nInstalls = len(installs)
		nReviews, err = deleteReviews(ctx, tx, d.UserID)
		return err
	})
	if err != nil {
		return fmt.Errorf("uninstall: user %s: %w", d.UserID, err)
	}
	log.Info("user's installs removed", slog.Int("installs", nInstalls), slog.Int("reviews", nReviews))
	return nil
}

// logger is the request's logger (shared/logging), or the Service's.
func (s *Service) logger(ctx context.Context) *slog.Logger {
	if log := logging.From(ctx); log != slog.Default() {
		return log
	}
	return s.log
}

// revoke revokes the user's grants to every application of installs not yet in done.
func (s *Service) revoke(ctx context.Context, userID string, installs []install, done map[string]bool) error {
	for _, in := range installs {
		if in.LogtoAppID == nil || done[*in.LogtoAppID] {
			continue
		}
		_, err := s.logto.RevokeGrants(ctx, userID, *in.LogtoAppID)
		if err != nil && !errors.Is(err, logto.ErrNotFound) { // 404: the user (or grant) is gone
			return fmt.Errorf("uninstall: revoke grants of %s to %s: %w", userID, in.Name, err)
		}
		done[*in.LogtoAppID] = true
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func userInstalls(ctx context.Context, q querier, userID string, lock bool) ([]install, error) {
	sql := `SELECT ui.id::text, ui.integration_id::text, i.name, i.logto_app_id, ui.sandbox
		FROM user_integrations ui JOIN integrations i ON i.id = ui.integration_id
		WHERE ui.user_id = $1 ORDER BY ui.installed_at, ui.id`
	if lock {
		sql += ` FOR UPDATE OF ui`
	}
	rows, err := q.Query(ctx, sql, userID)
	if err != nil {
		return nil, fmt.Errorf("uninstall: list installs: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[install])
	if err != nil {
		return nil, fmt.Errorf("uninstall: list installs: %w", err)
	}
	return out, nil
}

func removeInstall(ctx context.Context, tx pgx.Tx, in install) error {
	if _, err := tx.Exec(ctx, `DELETE FROM user_integrations WHERE id = $1`, in.ID); err != nil {
		return fmt.Errorf("delete install %s: %w", in.ID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE integrations SET install_count = greatest(install_count - 1, 0), updated_at = now()
		WHERE id = $1`, in.IntegrationID); err != nil {
		return fmt.Errorf("install count of %s: %w", in.IntegrationID, err)
	}
	return nil
}

// deleteReviews deletes the user's reviews and recomputes the ratings of the integrations
// they reviewed. It returns how many reviews it deleted.
//
// The integrations' rows are locked first, in id order, as the catalog's review writes lock an
// integration before they touch its reviews (functions/catalog reviewTx): the same order, so
// the two cannot deadlock, and the recomputation below runs after any review write that held
// the lock has committed, so its aggregate includes that write (READ COMMITTED: the
// statement's snapshot is taken after the lock is granted).
func deleteReviews(ctx context.Context, tx pgx.Tx, userID string) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM integrations
		WHERE id IN (SELECT integration_id FROM integration_reviews WHERE user_id = $1)
		ORDER BY id FOR NO KEY UPDATE`, userID); err != nil {
		return 0, fmt.Errorf("lock reviewed integrations: %w", err)
	}
	rows, err := tx.Query(ctx, `DELETE FROM integration_reviews WHERE user_id = $1 RETURNING integration_id`, userID)
	if err != nil {
		return 0, fmt.Errorf("delete reviews: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, fmt.Errorf("delete reviews: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	_, err = tx.Exec(ctx, `UPDATE integrations i
		SET rating_avg = coalesce(r.avg, 0), rating_count = coalesce(r.n, 0), updated_at = now()
		FROM (SELECT id FROM unnest($1::uuid[]) AS id) AS t
		LEFT JOIN LATERAL (SELECT round(avg(rating), 2) AS avg, count(*) AS n
		                   FROM integration_reviews WHERE integration_id = t.id) AS r ON true
		WHERE i.id = t.id`, ids)
	if err != nil {
		return 0, fmt.Errorf("recompute ratings: %w", err)
	}
	return len(ids), nil
}
