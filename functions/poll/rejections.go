package main

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
)

// Paging of the rejections route.
const (
	DefaultRejectionsLimit = 50
	MaxRejectionsLimit     = 100
)

// Rejection is one item of the rejections route: a record refused, one problem per item.
type Rejection struct {
	Stream     *string   `json:"stream"` // null when it could not be read
	Key        *string   `json:"key"`    // null when it could not be derived
	Field      string    `json:"field"`  // JSON pointer into the record's item of GET /data ("" the whole)
	Reason     string    `json:"reason"`
	Sample     string    `json:"sample"` // the record as received, at most 4 KiB
	RejectedAt time.Time `json:"rejected_at"`
}

// SourceStatus is the poller's view of the source: why nothing may be arriving.
type SourceStatus struct {
	LastError           *string    `json:"last_error"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastPolledAt        *time.Time `json:"last_polled_at"`
	LastSuccessAt       *time.Time `json:"last_success_at"`
	NextPollAt          time.Time  `json:"next_poll_at"`
}

// RejectionsPage is the body of GET /v1/developer/integrations/{name}/rejections.
type RejectionsPage struct {
	Integration string        `json:"integration"`
	Source      *SourceStatus `json:"source"` // null until the poller has seen the source
	Items       []Rejection   `json:"items"`
	NextCursor  string        `json:"next_cursor,omitempty"`
}

// Routes serves the developer's rejections route behind v (integrations:write).
func (s *Service) Routes(v *auth.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/developer/integrations/{name}/rejections",
		v.Require(auth.ScopeIntegrationsWrite)(httpx.HandlerFunc(s.rejections)))
	return mux
}

func (s *Service) rejections(w http.ResponseWriter, r *http.Request) error {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		return httpx.Unauthorized("a bearer token is required")
	}
	q := r.URL.Query()
	var fields []httpx.FieldError
	limit := DefaultRejectionsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRejectionsLimit {
			fields = append(fields, httpx.FieldError{Field: "limit", Reason: "must be an integer from 1 to 100"})
		} else {
			limit = n
		}
	}
	var before int64 = -1
	if v := q.Get("cursor"); v != "" {
		id, ok := decodeCursor(v)
		if !ok {
			fields = append(fields, httpx.FieldError{Field: "cursor", Reason: "not a cursor of this route; use next_cursor as given"})
		} else {
			before = id
		}
	}
	if len(fields) > 0 {
		return httpx.BadRequest("invalid query", fields...)
	}
	name := r.PathValue("name")
	ctx := r.Context()
	var id string
	// Only the integration's developer sees it; anyone else gets the 404 an unknown name gets.
	err := s.pool.QueryRow(ctx, `SELECT id::text FROM integrations WHERE name = $1 AND developer_id = $2`, name, p.Subject).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return httpx.NotFound("no integration of yours is called " + strconv.Quote(clip.String(name, 64)))
	}
	if err != nil {
		return err
	}
	page := RejectionsPage{Integration: name, Items: []Rejection{}}
	var st SourceStatus
	err = s.pool.QueryRow(ctx, `SELECT last_error, consecutive_failures, last_polled_at, last_success_at, next_poll_at
		FROM poll_sources WHERE integration_id = $1`, id).Scan(&st.LastError, &st.ConsecutiveFailures, &st.LastPolledAt, &st.LastSuccessAt, &st.NextPollAt)
	switch {
	case err == nil:
		page.Source = &st
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, stream, key, field, reason, sample, rejected_at FROM record_rejections
		WHERE integration_id = $1 AND ($2::bigint < 0 OR id < $2) ORDER BY id DESC LIMIT $3`, id, before, limit+1)
	if err != nil {
		return err
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		var it Rejection
		var rid int64
		if err := rows.Scan(&rid, &it.Stream, &it.Key, &it.Field, &it.Reason, &it.Sample, &it.RejectedAt); err != nil {
			return err
		}
		if len(page.Items) == limit {
			page.NextCursor = encodeCursor(last)
			break
		}
		it.RejectedAt = it.RejectedAt.UTC()
		page.Items = append(page.Items, it)
		last = rid
	}
	if err := rows.Err(); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, page)
	return nil
}

// A cursor is the id of the last item of a page, opaque to clients: "r" + base64url(decimal id).
func encodeCursor(id int64) string {
	return "r" + base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
}

func decodeCursor(s string) (int64, bool) {
	if len(s) < 2 || len(s) > 32 || s[0] != 'r' {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[1:])
	if err != nil {
		return 0, false
	}
	id, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != string(b) {
		return 0, false
	}
	return id, true
}
