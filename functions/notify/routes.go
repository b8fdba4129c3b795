package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
)

// Paging bounds.
const (
	defaultLogLimit    = 20
	maxLogLimit        = 100
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
)

// Routes serves notify's HTTP routes; v verifies developer and integration tokens.
func (s *Service) Routes(v *auth.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/lifecycle/keys", httpx.HandlerFunc(s.keys))
	dev := func(pattern string, h httpx.HandlerFunc) {
		mux.Handle(pattern, v.Require(auth.ScopeIntegrationsWrite)(h))
	}
	dev("GET /v1/developer/integrations/{name}/deliveries", s.deliveries)
	dev("POST /v1/developer/integrations/{name}/deliveries/{id}/redeliver", s.redeliver)
	// The integration calling as itself: any valid token of the platform's API; which
	// integration it is comes from its client_id (an integration client, integrations.m2m_app_id).
	mux.Handle("GET /v1/integration/events", v.Require()(httpx.HandlerFunc(s.catchUp)))
	return mux
}

// keys answers the published key set; public and cacheable for 5 minutes (a rotation
// publishes the new key well before it signs alone: see docs/decisions/0008).
func (s *Service) keys(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(s.keySet, '\n'))
	return nil
}

func principal(r *http.Request) (*auth.Principal, error) {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok || p.Subject == "" {
		return nil, httpx.Unauthorized("a bearer token is required")
	}
	return p, nil
}

// notYours answers for an integration the caller does not own, as for one that does not exist.
func notYours(name string) *httpx.Problem {
	return httpx.NotFound("no integration of yours is called " + strconv.Quote(clip.String(name, 64)))
}

// own returns the id of the caller's integration called name, or a 404 problem.
func (s *Service) own(r *http.Request) (string, error) {
	p, err := principal(r)
	if err != nil {
		return "", err
	}
	name := r.PathValue("name")
	var id string
	err = s.pool.QueryRow(r.Context(), `SELECT id::text FROM integrations WHERE name = $1 AND developer_id = $2`,
		name, p.Subject).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", notYours(name)
	}
	if err != nil {
		return "", httpx.Unavailable("cannot read the integration", err)
	}
	return id, nil
}

// intParam reads an optional non-negative integer query parameter; a bad one is a 400 naming it.
func intParam(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, httpx.BadRequest("invalid query parameter", httpx.FieldError{Field: name,
			Reason: "must be a whole number from " + strconv.FormatInt(lo, 10) + " to " + strconv.FormatInt(hi, 10)})
	}
	return n, nil
}

// Delivery is one row of the delivery log.
type Delivery struct {
	EventID        string     `json:"event_id"`
	Type           string     `json:"type"`
	InstallID      string     `json:"install_id"`
	Status         string     `json:"status"` // pending, delivered, disabled, failed
	Attempts       int        `json:"attempts"`
	MaxAttempts    int        `json:"max_attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

// DeliveryPage is a page of the delivery log, newest first.
type DeliveryPage struct {
	Deliveries []Delivery `json:"deliveries"`
	NextCursor *string    `json:"next_cursor"` // null on the last page
}

const deliveryColumns = `d.event_id::text, e.type, e.install_id, d.status, d.attempts, d.next_attempt_at,
	d.last_attempt_at, d.last_status_code, d.last_error, d.delivered_at, d.created_at`

func scanDelivery(row pgx.CollectableRow) (Delivery, error) {
	d := Delivery{MaxAttempts: MaxAttempts}
	err := row.Scan(&d.EventID, &d.Type, &d.InstallID, &d.Status, &d.Attempts, &d.NextAttemptAt,
		&d.LastAttemptAt, &d.LastStatusCode, &d.LastError, &d.DeliveredAt, &d.CreatedAt)
	return d, err
}

// deliveries answers the delivery log of the caller's integration, newest first, paged by
// ?cursor= (the next_cursor of the page before) and ?limit= (1-100, default 20).
func (s *Service) deliveries(w http.ResponseWriter, r *http.Request) error {
	id, err := s.own(r)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", defaultLogLimit, 1, maxLogLimit)
	if err != nil {
		return err
	}
	cursor, err := intParam(r, "cursor", 1<<62, 1, 1<<62)
	if err != nil {
		return err
	}
	rows, err := s.pool.Query(r.Context(), `SELECT `+deliveryColumns+`, e.seq
		FROM lifecycle_events e JOIN lifecycle_deliveries d ON d.event_id = e.id
		WHERE e.integration_id = $1 AND e.seq < $2 ORDER BY e.seq DESC LIMIT $3`, id, cursor, limit+1)
	if err != nil {
		return httpx.Unavailable("cannot read the delivery log", err)
	}
	var seqs []int64
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) {
		d := Delivery{MaxAttempts: MaxAttempts}
		var seq int64
		err := row.Scan(&d.EventID, &d.Type, &d.InstallID, &d.Status, &d.Attempts, &d.NextAttemptAt,
			&d.LastAttemptAt, &d.LastStatusCode, &d.LastError, &d.DeliveredAt, &d.CreatedAt, &seq)
		seqs = append(seqs, seq)
		return d, err
	})
	if err != nil {
		return httpx.Unavailable("cannot read the delivery log", err)
	}
	page := DeliveryPage{Deliveries: list}
	if len(list) > int(limit) {
		page.Deliveries = list[:limit]
		next := strconv.FormatInt(seqs[limit-1], 10)
		page.NextCursor = &next
	}
	if page.Deliveries == nil {
		page.Deliveries = []Delivery{}
	}
	httpx.WriteJSON(w, http.StatusOK, page)
	return nil
}

// redeliver re-queues one delivery of the caller's integration now, with its attempts reset,
// re-enables the endpoint if a 410 had disabled it, makes the attempt at once and answers
// the delivery as it stands after it.
func (s *Service) redeliver(w http.ResponseWriter, r *http.Request) error {
	integ, err := s.own(r)
	if err != nil {
		return err
	}
	eventID := r.PathValue("id")
	if _, err := uuid.Parse(eventID); err != nil {
		return httpx.BadRequest("invalid path parameter", httpx.FieldError{Field: "id", Reason: "must be a lifecycle event id (a UUID)"})
	}
	now := s.now().UTC()
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(r.Context(), `UPDATE lifecycle_deliveries SET status = 'pending', attempts = 0,
			next_attempt_at = $3, lease_until = NULL, lease_token = NULL, updated_at = $3
			WHERE event_id = $1 AND integration_id = $2 AND (status <> 'pending' OR lease_until IS NULL OR lease_until <= $3)`,
			eventID, integ, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var status string
			err := tx.QueryRow(r.Context(), `SELECT status FROM lifecycle_deliveries WHERE event_id = $1 AND integration_id = $2`,
				eventID, integ).Scan(&status)
			if errors.Is(err, pgx.ErrNoRows) {
				return httpx.NotFound("no HTTP delivery of this integration has id " + strconv.Quote(eventID))
			}
			if err != nil {
				return err
			}
			return httpx.Conflict("an attempt of this delivery is being made right now; ask again when it is over")
		}
		_, err = tx.Exec(r.Context(), `DELETE FROM lifecycle_endpoints_disabled WHERE integration_id = $1`, integ)
		return err
	})
	var prob *httpx.Problem
	if errors.As(err, &prob) {
		return prob
	}
	if err != nil {
		return httpx.Unavailable("cannot re-queue the delivery", err)
	}
	if _, err := s.deliver(r.Context(), []string{eventID}); err != nil {
		s.logger(r.Context()).Warn("redelivery attempt not recorded; the schedule retries it", "error", err)
	}
	rows, err := s.pool.Query(r.Context(), `SELECT `+deliveryColumns+`
		FROM lifecycle_deliveries d JOIN lifecycle_events e ON e.id = d.event_id WHERE d.event_id = $1`, eventID)
	if err != nil {
		return httpx.Unavailable("cannot read the delivery", err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	if err != nil {
		return httpx.Unavailable("cannot read the delivery", err)
	}
	httpx.WriteJSON(w, http.StatusOK, d)
	return nil
}

// EventPage is a page of an integration's lifecycle events, oldest first.
type EventPage struct {
	// Events are the CloudEvents in structured JSON, exactly as delivered over HTTP.
	Events []json.RawMessage `json:"events"`
	// NextCursor is the after= of the next call: the last event's cursor, or the request's
	// when there was none.
	NextCursor string `json:"next_cursor"`
}

// catchUp answers the calling integration's lifecycle events after ?after= (default 0, the
// beginning), at most ?limit= (1-1000, default 100). The integration is the one whose
// integration client (the machine-to-machine application the registry made, m2m_app_id) is the
// token's client_id.
func (s *Service) catchUp(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	after, err := intParam(r, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", defaultEventsLimit, 1, maxEventsLimit)
	if err != nil {
		return err
	}
	var integ string
	err = s.pool.QueryRow(r.Context(), `SELECT id::text FROM integrations WHERE m2m_app_id = $1`, p.ClientID).Scan(&integ)
	if errors.Is(err, pgx.ErrNoRows) || p.ClientID == "" {
		return httpx.Forbidden("the token's client is not an integration client")
	}
	if err != nil {
		return httpx.Unavailable("cannot read the integration", err)
	}
	rows, err := s.pool.Query(r.Context(), `SELECT seq, body FROM lifecycle_events
		WHERE integration_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, integ, after, limit)
	if err != nil {
		return httpx.Unavailable("cannot read the lifecycle events", err)
	}
	page := EventPage{Events: []json.RawMessage{}, NextCursor: strconv.FormatInt(after, 10)}
	var seq int64
	var body string
	_, err = pgx.ForEachRow(rows, []any{&seq, &body}, func() error {
		page.Events = append(page.Events, json.RawMessage(body))
		page.NextCursor = strconv.FormatInt(seq, 10)
		return nil
	})
	if err != nil {
		return httpx.Unavailable("cannot read the lifecycle events", err)
	}
	httpx.WriteJSON(w, http.StatusOK, page)
	return nil
}
