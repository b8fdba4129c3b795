package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/httpx"
)

// Review bounds and paging.
const (
	MaxReviewText      = 2000 // characters of review text
	maxReviewBody      = 16 << 10
	defaultReviewLimit = 20
	maxReviewLimit     = 100
)

const reviewsCacheControl = "public, max-age=10"

// Review is one user's review of an integration. The reviewer's user id is not shown.
type Review struct {
	ID        string    `json:"id"`
	Rating    int       `json:"rating"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ReviewsPage is the body of GET /v1/integrations/{name}/reviews: newest first.
type ReviewsPage struct {
	Integration string   `json:"integration"`
	Rating      Rating   `json:"rating"`
	Items       []Review `json:"items"`
	NextCursor  string   `json:"next_cursor,omitempty"`
}

// ReviewInput is the body of PUT /v1/integrations/{name}/reviews/mine.
type ReviewInput struct {
	Rating *int   `json:"rating"` // required, 1 to 5
	Text   string `json:"text"`   // optional, at most MaxReviewText characters
}

// MyReview is the answer to PUT .../reviews/mine: the review as stored and the integration's
// rating aggregate after it.
type MyReview struct {
	Review            Review `json:"review"`
	IntegrationRating Rating `json:"integration_rating"`
}

func (s *Store) reviewRoutes(handle func(string, http.Handler), v *auth.Verifier) {
	handle("GET /v1/integrations/{name}/reviews", httpx.HandlerFunc(s.listReviews))
	write := func(h httpx.HandlerFunc) http.Handler {
		if v == nil {
			return httpx.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				return httpx.Unavailable("reviews cannot be written: the catalog has no identity provider configured (LOGTO_ENDPOINT)", nil)
			})
		}
		// Any user token of the API resource: no scope is needed to review what one has
		// installed (checked per request against user_integrations).
		return v.Require()(h)
	}
	handle("PUT /v1/integrations/{name}/reviews/mine", write(s.putReview))
	handle("DELETE /v1/integrations/{name}/reviews/mine", write(s.deleteReview))
}

// reviewer is the user the request's token names; an application's own token (client
// credentials: its sub is its client id) cannot review.
func reviewer(r *http.Request) (string, error) {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		return "", httpx.Unauthorized("a bearer token is required")
	}
	if p.Subject == "" || p.Subject == p.ClientID {
		return "", httpx.Forbidden("a user's token is required to review")
	}
	return p.Subject, nil
}

func (s *Store) listReviews(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return httpx.BadRequest("malformed query string", httpx.FieldError{Field: "query", Reason: err.Error()})
	}
	var bad []httpx.FieldError
	limit := defaultReviewLimit
	var afterAt time.Time
	var afterID string
	for k, vals := range values {
		switch {
		case k != "limit" && k != "cursor":
			bad = append(bad, httpx.FieldError{Field: fieldName(k), Reason: "unknown query parameter; the allowed ones are cursor, limit"})
		case len(vals) > 1:
			bad = append(bad, httpx.FieldError{Field: k, Reason: "given more than once"})
		case k == "limit":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 || n > maxReviewLimit {
				bad = append(bad, httpx.FieldError{Field: "limit", Reason: fmt.Sprintf("must be an integer from 1 to %d", maxReviewLimit)})
			}
			limit = n
		case k == "cursor":
			var ok bool
			if afterAt, afterID, ok = decodeReviewCursor(vals[0]); !ok {
				bad = append(bad, httpx.FieldError{Field: "cursor", Reason: "not a cursor of this route; use next_cursor as given"})
			}
		}
		if len(bad) >= maxUnknownListed {
			break
		}
	}
	if len(bad) > 0 {
		return httpx.BadRequest("invalid query parameters", bad...)
	}
	ctx := r.Context()
	page := ReviewsPage{Integration: name, Items: make([]Review, 0, limit)}
	var id string
	err = s.pool.QueryRow(ctx, `SELECT i.id::text, i.rating_avg::float8, i.rating_count FROM integrations i
		WHERE i.is_published AND i.name = $1`, name).Scan(&id, &page.Rating.Average, &page.Rating.Count)
	if errors.Is(err, pgx.ErrNoRows) {
		return httpx.NotFound(fmt.Sprintf("no published integration is named %q", name))
	}
	if err != nil {
		return fmt.Errorf("catalog: reviews of %s: %w", name, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT r.id::text, r.rating, r.review_text, r.created_at, r.updated_at
		FROM integration_reviews r WHERE r.integration_id = $1
		AND ($2::uuid IS NULL OR (r.created_at, r.id) < ($3::timestamptz, $2::uuid))
		ORDER BY r.created_at DESC, r.id DESC LIMIT $4`, id, nilIfEmpty(afterID), afterAt, limit+1)
	if err != nil {
		return fmt.Errorf("catalog: reviews of %s: %w", name, err)
	}
	for rows.Next() {
		var rv Review
		if err := rows.Scan(&rv.ID, &rv.Rating, &rv.Text, &rv.CreatedAt, &rv.UpdatedAt); err != nil {
			rows.Close()
			return fmt.Errorf("catalog: reviews of %s: %w", name, err)
		}
		page.Items = append(page.Items, rv)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: reviews of %s: %w", name, err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = encodeReviewCursor(last.CreatedAt, last.ID)
	}
	return writeCached(w, r, reviewsCacheControl, &page)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// A review cursor is "<created_at RFC 3339>|<id>" in unpadded base64url.
func encodeReviewCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeReviewCursor(s string) (time.Time, string, bool) {
	if len(s) > 200 {
		return time.Time{}, "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", false
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return time.Time{}, "", false
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || at.Year() < 1 || at.Year() > 9999 {
		return time.Time{}, "", false
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return time.Time{}, "", false
	}
	return at, u.String(), true
}

// putReview creates or replaces the caller's review.
func (s *Store) putReview(w http.ResponseWriter, r *http.Request) error {
	user, err := reviewer(r)
	if err != nil {
		return err
	}
	name, err := pathName(r)
	if err != nil {
		return err
	}
	var in ReviewInput
	if err := httpx.DecodeJSON(r, &in, maxReviewBody); err != nil {
		return err
	}
	var bad []httpx.FieldError
	if in.Rating == nil || *in.Rating < 1 || *in.Rating > 5 {
		bad = append(bad, httpx.FieldError{Field: "rating", Reason: "required, an integer from 1 to 5"})
	}
	switch {
	case utf8.RuneCountInString(in.Text) > MaxReviewText:
		bad = append(bad, httpx.FieldError{Field: "text", Reason: fmt.Sprintf("at most %d characters", MaxReviewText)})
	case strings.IndexByte(in.Text, 0) >= 0:
		bad = append(bad, httpx.FieldError{Field: "text", Reason: "must not contain NUL characters"})
	}
	if len(bad) > 0 {
		return httpx.BadRequest("invalid review", bad...)
	}
	var out MyReview
	var inserted bool
	err = s.reviewTx(r.Context(), name, user, func(tx pgx.Tx, id string) error {
		return tx.QueryRow(r.Context(), `INSERT INTO integration_reviews AS r (user_id, integration_id, rating, review_text)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, integration_id) DO UPDATE SET rating = EXCLUDED.rating,
				review_text = EXCLUDED.review_text, updated_at = now()
			RETURNING r.id::text, r.rating, r.review_text, r.created_at, r.updated_at, r.xmax = 0`,
			user, id, *in.Rating, in.Text).Scan(&out.Review.ID, &out.Review.Rating, &out.Review.Text,
			&out.Review.CreatedAt, &out.Review.UpdatedAt, &inserted)
	}, &out.IntegrationRating)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if inserted {
		status = http.StatusCreated
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, status, &out)
	return nil
}

// deleteReview deletes the caller's review: 204, or 404 when there is none.
func (s *Store) deleteReview(w http.ResponseWriter, r *http.Request) error {
	user, err := reviewer(r)
	if err != nil {
		return err
	}
	name, err := pathName(r)
	if err != nil {
		return err
	}
	var agg Rating
	err = s.reviewTx(r.Context(), name, user, func(tx pgx.Tx, id string) error {
		tag, err := tx.Exec(r.Context(), `DELETE FROM integration_reviews WHERE user_id = $1 AND integration_id = $2`, user, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return httpx.NotFound("you have not reviewed " + strconv.Quote(name))
		}
		return nil
	}, &agg)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reviewTx runs change on the published integration name for user, in one transaction that
// first locks the integration's row and then recomputes its rating aggregate from its reviews
// into agg. The lock serializes every review write of one integration, so two at once cannot
// lose an update, and the aggregate is exact when the transaction commits. FOR NO KEY UPDATE
// does not block inserts that reference the row (installs, reviews of other integrations).
// Only a user who has the integration installed may change a review: 403 otherwise.
func (s *Store) reviewTx(ctx context.Context, name, user string, change func(tx pgx.Tx, id string) error, agg *Rating) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id string
		var installed bool
		err := tx.QueryRow(ctx, `SELECT i.id::text, EXISTS (SELECT 1 FROM user_integrations u
				WHERE u.user_id = $2 AND u.integration_id = i.id)
			FROM integrations i WHERE i.is_published AND i.name = $1 FOR NO KEY UPDATE OF i`, name, user).Scan(&id, &installed)
		if errors.Is(err, pgx.ErrNoRows) {
			return httpx.NotFound(fmt.Sprintf("no published integration is named %q", name))
		}
		if err != nil {
			return fmt.Errorf("catalog: review %s: %w", name, err)
		}
		if !installed {
			return httpx.Forbidden("only a user who has installed " + strconv.Quote(name) + " may review it")
		}
		if err := change(tx, id); err != nil {
			var p *httpx.Problem
			if errors.As(err, &p) {
				return err
			}
			return fmt.Errorf("catalog: review %s: %w", name, err)
		}
		err = tx.QueryRow(ctx, `UPDATE integrations i SET rating_avg = coalesce(a.avg, 0), rating_count = a.n
			FROM (SELECT round(avg(r.rating), 2) AS avg, count(*) AS n FROM integration_reviews r WHERE r.integration_id = $1) a
			WHERE i.id = $1 RETURNING i.rating_avg::float8, i.rating_count`, id).Scan(&agg.Average, &agg.Count)
		if err != nil {
			return fmt.Errorf("catalog: rating of %s: %w", name, err)
		}
		return nil
	})
}
