package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/httpx"
)

// Paging of GET /v1/developer/integrations.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
)

// Integration is a developer's view of one of their integrations. It never holds the client
// secret.
type Integration struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	DisplayName    string     `json:"display_name"`
	Type           string     `json:"type"`
	DeliveryMode   *string    `json:"delivery_mode"`
	Category       string     `json:"category"`
	Tags           []string   `json:"tags"`
	Tier           string     `json:"tier"`
	ClientID       *string    `json:"client_id"`
	IsPublished    bool       `json:"is_published"`
	PublishedAt    *time.Time `json:"published_at"`
	CurrentVersion *string    `json:"current_version"` // the published version
	LatestVersion  *string    `json:"latest_version"`  // the newest registered (a draft when not current)
	// Deprecation is null unless the developer deprecated the integration.
	Deprecation *Deprecation `json:"deprecation"`
	// Verification is the pending review request, null when there is none.
	Verification *Verification `json:"verification"`
	Versions     []Version     `json:"versions"` // newest first
	Stats        Stats         `json:"stats"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// Deprecation is the notice shown to users of a deprecated integration.
type Deprecation struct {
	Message      string    `json:"message"`
	Sunset       *string   `json:"sunset"`      // YYYY-MM-DD
	Replacement  *string   `json:"replacement"` // an integration's name
	DeprecatedAt time.Time `json:"deprecated_at"`
}

// Verification is a review request.
type Verification struct {
	ID          string    `json:"id"`
	Version     string    `json:"version"`
	Note        string    `json:"note"`
	Status      string    `json:"status"` // pending, approved, rejected
	RequestedAt time.Time `json:"requested_at"`
}

// Version is one registered manifest with the results of its checks.
type Version struct {
	Version   string          `json:"version"`
	Manifest  json.RawMessage `json:"manifest"`
	CreatedAt time.Time       `json:"created_at"`
	Checks    []Check         `json:"checks"`
	// Publishable says whether every required check passed.
	Publishable bool `json:"publishable"`
}

// Check is the stored result of one automated check.
type Check struct {
	Name           string    `json:"name"`
	Required       bool      `json:"required"`
	Passed         bool      `json:"passed"`
	Reason         string    `json:"reason"`
	ResponseTimeMS *int64    `json:"response_time_ms"`
	CheckedAt      time.Time `json:"checked_at"`
}

// Stats are the developer's figures of an integration.
type Stats struct {
	ActiveInstalls int64      `json:"active_installs"`
	InstallsByDay  []DayCount `json:"installs_by_day"` // the last 30 days (UTC), oldest first, zero days included
	Uptime         Uptime     `json:"uptime"`
	HealthStatus   string     `json:"health_status"`

	// RevenueByMonth: the last 12 UTC months with payments, oldest first, per currency (payouts.go).
	RevenueByMonth      []MonthRevenue `json:"revenue_by_month"`
	ActiveSubscriptions int64          `json:"active_subscriptions"`
}

// DayCount is the number of installs made on a day that are still installed.
type DayCount struct {
	Date     string `json:"date"` // YYYY-MM-DD
	Installs int64  `json:"installs"`
}

// Uptime in percent over three windows, from the health probe; null before any probe.
type Uptime struct {
	H24 *float64 `json:"24h"`
	D7  *float64 `json:"7d"`
	D30 *float64 `json:"30d"`
}

// IntegrationList is the body of GET /v1/developer/integrations.
type IntegrationList struct {
	Items      []Integration `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// load reads the developer's integration called name with its versions, checks and stats; a
// 404 when it is not theirs.
func (s *Service) load(ctx context.Context, q querier, name, developer string) (*Integration, error) {
	var it Integration
	var dep Deprecation
	var depAt *time.Time
	var depMsg *string
	var sunset *time.Time
	err := q.QueryRow(ctx, `SELECT id::text, name, display_name, type, delivery_mode, category, tags,
			verification_tier, logto_app_id, is_published, published_at, current_version, latest_version,
			deprecated_at, deprecation_message, deprecation_sunset, deprecation_replacement,
			uptime_24h::float8, uptime_7d::float8, uptime_30d::float8, health_status, created_at, updated_at
		FROM integrations WHERE name = $1 AND developer_id = $2`, name, developer).Scan(
		&it.ID, &it.Name, &it.DisplayName, &it.Type, &it.DeliveryMode, &it.Category, &it.Tags,
		&it.Tier, &it.ClientID, &it.IsPublished, &it.PublishedAt, &it.CurrentVersion, &it.LatestVersion,
		&depAt, &depMsg, &sunset, &dep.Replacement,
		&it.Stats.Uptime.H24, &it.Stats.Uptime.D7, &it.Stats.Uptime.D30, &it.Stats.HealthStatus, &it.CreatedAt, &it.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notYours(name)
	}
	if err != nil {
		return nil, err
	}
	if depAt != nil && depMsg != nil {
		dep.DeprecatedAt, dep.Message = depAt.UTC(), *depMsg
		if sunset != nil {
			d := sunset.Format(time.DateOnly)
			dep.Sunset = &d
		}
		it.Deprecation = &dep
	}
	it.CreatedAt, it.UpdatedAt = it.CreatedAt.UTC(), it.UpdatedAt.UTC()
	if it.PublishedAt != nil {
		t := it.PublishedAt.UTC()
		it.PublishedAt = &t
	}
	var v Verification
	err = q.QueryRow(ctx, `SELECT id::text, version, note, status, requested_at FROM verification_requests
		WHERE integration_id = $1 AND status = 'pending'`, it.ID).Scan(&v.ID, &v.Version, &v.Note, &v.Status, &v.RequestedAt)
	switch {
	case err == nil:
		v.RequestedAt = v.RequestedAt.UTC()
		it.Verification = &v
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	}
	if it.Versions, err = versions(ctx, q, it.ID); err != nil {
		return nil, err
	}
	if err := q.QueryRow(ctx, `SELECT count(*) FROM user_integrations WHERE integration_id = $1`, it.ID).Scan(&it.Stats.ActiveInstalls); err != nil {
		return nil, err
	}
	today := s.now().UTC().Truncate(24 * time.Hour)
	rows, err := q.Query(ctx, `SELECT d::date::text, count(ui.id)
		FROM generate_series($2::timestamptz - interval '29 days', $2::timestamptz, interval '1 day') AS d
		LEFT JOIN user_integrations ui ON ui.integration_id = $1
			AND ui.installed_at >= d AND ui.installed_at < d + interval '1 day'
		GROUP BY d ORDER BY d`, it.ID, today)
	if err != nil {
		return nil, err
	}
	it.Stats.InstallsByDay, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DayCount, error) {
		var d DayCount
		return d, r.Scan(&d.Date, &d.Installs)
	})
	if err != nil {
		return nil, err
	}
	if err := s.revenue(ctx, q, it.ID, &it.Stats); err != nil {
		return nil, err
	}
	return &it, nil
}

func versions(ctx context.Context, q querier, integrationID string) ([]Version, error) {
	rows, err := q.Query(ctx, `SELECT version, manifest, created_at FROM integration_versions
		WHERE integration_id = $1`, integrationID)
	if err != nil {
		return nil, err
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Version, error) {
		var v Version
		err := r.Scan(&v.Version, &v.Manifest, &v.CreatedAt)
		v.CreatedAt = v.CreatedAt.UTC()
		v.Checks = []Check{}
		return v, err
	})
	if err != nil {
		return nil, err
	}
	// Newest first by semantic version (the order they were registered in, since versions
	// only increase).
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && semverLess(vs[j-1].Version, vs[j].Version); j-- {
			vs[j-1], vs[j] = vs[j], vs[j-1]
		}
	}
	idx := map[string]int{}
	for i := range vs {
		idx[vs[i].Version] = i
		vs[i].Publishable = true
	}
	rows, err = q.Query(ctx, `SELECT version, name, required, passed, reason, response_time_ms, checked_at
		FROM integration_checks WHERE integration_id = $1 ORDER BY version, name`, integrationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var ver string
		var c Check
		if err := rows.Scan(&ver, &c.Name, &c.Required, &c.Passed, &c.Reason, &c.ResponseTimeMS, &c.CheckedAt); err != nil {
			return nil, err
		}
		c.CheckedAt = c.CheckedAt.UTC()
		if i, ok := idx[ver]; ok {
			vs[i].Checks = append(vs[i].Checks, c)
			if c.Required && !c.Passed {
				vs[i].Publishable = false
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range vs {
		if len(vs[i].Checks) == 0 {
			vs[i].Publishable = false
		}
	}
	return vs, nil
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	it, err := s.load(r.Context(), s.pool, r.PathValue("name"), p.Subject)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, it)
	return nil
}

// list pages the caller's integrations by name.
func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	limit, after, err := listQuery(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	rows, err := s.pool.Query(ctx, `SELECT name FROM integrations WHERE developer_id = $1 AND name > $2
		ORDER BY name LIMIT $3`, p.Subject, after, limit+1)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	out := IntegrationList{Items: []Integration{}}
	if len(names) > limit {
		names = names[:limit]
		out.NextCursor = encodeNameCursor(names[limit-1])
	}
	for _, n := range names {
		it, err := s.load(ctx, s.pool, n, p.Subject)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, *it)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// listQuery reads limit (1-100) and cursor (next_cursor as given).
func listQuery(r *http.Request) (limit int, after string, err error) {
	q := r.URL.Query()
	var fields []httpx.FieldError
	limit = DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			fields = append(fields, httpx.FieldError{Field: "limit", Reason: "must be an integer from 1 to 100"})
		} else {
			limit = n
		}
	}
	if v := q.Get("cursor"); v != "" {
		n, ok := decodeNameCursor(v)
		if !ok {
			fields = append(fields, httpx.FieldError{Field: "cursor", Reason: "not a cursor of this route; use next_cursor as given"})
		}
		after = n
	}
	if len(fields) > 0 {
		return 0, "", httpx.BadRequest("invalid query", fields...)
	}
	return limit, after, nil
}

// A name cursor is "n" + base64url(the last name of the page).
func encodeNameCursor(name string) string {
	return "n" + base64.RawURLEncoding.EncodeToString([]byte(name))
}

func decodeNameCursor(s string) (string, bool) {
	if len(s) < 2 || len(s) > 100 || s[0] != 'n' {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[1:])
	if err != nil || len(b) == 0 || !utf8.Valid(b) || encodeNameCursor(string(b)) != s {
		return "", false
	}
	for _, c := range b {
		if c == 0 {
			return "", false
		}
	}
	return string(b), true
}
