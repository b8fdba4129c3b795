package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
)

// Paging of the verification queue.
const (
	DefaultQueueLimit = 50
	MaxQueueLimit     = 100
)

// QueueItem is one pending verification request, with what the reviewer needs.
type QueueItem struct {
	ID          string    `json:"id"`
	Integration string    `json:"integration"` // name
	DisplayName string    `json:"display_name"`
	DeveloperID string    `json:"developer_id"`
	Tier        string    `json:"tier"`
	Version     string    `json:"version"`
	Note        string    `json:"note"`
	RequestedAt time.Time `json:"requested_at"`
	Checks      []Check   `json:"checks"` // of the version under review
}

// Queue is the body of GET /v1/admin/verifications: pending requests, oldest first.
type Queue struct {
	Items      []QueueItem `json:"items"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func (s *Service) verificationQueue(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var fields []httpx.FieldError
	limit := DefaultQueueLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxQueueLimit {
			fields = append(fields, httpx.FieldError{Field: "limit", Reason: "must be an integer from 1 to 100"})
		} else {
			limit = n
		}
	}
	afterAt, afterID := time.Time{}, uuid.Nil.String()
	if v := q.Get("cursor"); v != "" {
		at, id, ok := decodeQueueCursor(v)
		if !ok {
			fields = append(fields, httpx.FieldError{Field: "cursor", Reason: "not a cursor of this route; use next_cursor as given"})
		}
		afterAt, afterID = at, id
	}
	if len(fields) > 0 {
		return httpx.BadRequest("invalid query", fields...)
	}
	ctx := r.Context()
	rows, err := s.pool.Query(ctx, `SELECT v.id::text, i.id::text, i.name, i.display_name, i.developer_id, i.verification_tier,
			v.version, v.note, v.requested_at
		FROM verification_requests v JOIN integrations i ON i.id = v.integration_id
		WHERE v.status = 'pending' AND (v.requested_at, v.id) > ($1, $2::uuid)
		ORDER BY v.requested_at, v.id LIMIT $3`, afterAt, afterID, limit+1)
	if err != nil {
		return err
	}
	type item struct {
		QueueItem
		integrationID string
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (item, error) {
		var it item
		err := r.Scan(&it.ID, &it.integrationID, &it.Integration, &it.DisplayName, &it.DeveloperID, &it.Tier,
			&it.Version, &it.Note, &it.RequestedAt)
		return it, err
	})
	if err != nil {
		return err
	}
	out := Queue{Items: []QueueItem{}}
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		out.NextCursor = encodeQueueCursor(last.RequestedAt, last.ID)
	}
	for _, it := range items {
		vs, err := versions(ctx, s.pool, it.integrationID)
		if err != nil {
			return err
		}
		it.Checks = []Check{}
		for _, v := range vs {
			if v.Version == it.Version {
				it.Checks = v.Checks
			}
		}
		it.RequestedAt = it.RequestedAt.UTC()
		out.Items = append(out.Items, it.QueueItem)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// A queue cursor is "q" + base64url("<unix micro>,<uuid>") of the last item.
func encodeQueueCursor(at time.Time, id string) string {
	return "q" + base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10)+","+id))
}

func decodeQueueCursor(s string) (time.Time, string, bool) {
	if len(s) < 2 || len(s) > 100 || s[0] != 'q' {
		return time.Time{}, "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[1:])
	if err != nil {
		return time.Time{}, "", false
	}
	ts, id, ok := strings.Cut(string(b), ",")
	n, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || strconv.FormatInt(n, 10) != ts {
		return time.Time{}, "", false
	}
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return time.Time{}, "", false
	}
	return time.UnixMicro(n).UTC(), id, true
}

// TierChanged is the body of a 200 from the tier route.
type TierChanged struct {
	Integration string `json:"integration"`
	FromTier    string `json:"from_tier"`
	ToTier      string `json:"to_tier"`
	Reason      string `json:"reason"`
	// Resolved is the verification request this decision resolved, if one was pending.
	Resolved *ResolvedRequest `json:"resolved"`
}

// ResolvedRequest is a verification request and how it was resolved.
type ResolvedRequest struct {
	ID     string `json:"id"`
	Status string `json:"status"` // approved or rejected
}

// setTier: an admin sets the tier with a reason. Featured needs verified (or featured) first;
// a published paid listing cannot drop to unverified (unpublish it first); setting the tier it
// already has is allowed only to resolve a pending request (a rejection keeps unverified).
// The change is recorded, a pending request resolved, and integration.tier.changed written.
func (s *Service) setTier(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	ctx := r.Context()
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE name = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return httpx.NotFound("no integration is called " + strconv.Quote(clip.String(name, 64)))
	}
	req, err := decodeTier(r)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	var out TierChanged
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var it row
		err := tx.QueryRow(ctx, `SELECT `+rowColumns+` FROM integrations WHERE name = $1 FOR UPDATE`, name).Scan(it.dest()...)
		if errors.Is(err, pgx.ErrNoRows) {
			return httpx.NotFound("no integration is called " + strconv.Quote(clip.String(name, 64)))
		}
		if err != nil {
			return err
		}
		var pendingID *string
		err = tx.QueryRow(ctx, `SELECT id::text FROM verification_requests WHERE integration_id = $1 AND status = 'pending' FOR UPDATE`,
			it.ID).Scan(&pendingID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if req.Tier == TierFeatured && it.Tier == TierUnverified {
			p := httpx.Conflict("featured requires verified: verify the integration first")
			p.Errors = []httpx.FieldError{{Field: "tier", Reason: "featured needs the verified tier; the tier is unverified"}}
			return p
		}
		if req.Tier == TierUnverified && it.IsPublished && it.PricingModel != "free" {
			p := httpx.Conflict("a published paid listing cannot be unverified; it must be unpublished first")
			p.Errors = []httpx.FieldError{{Field: "tier", Reason: "the listing is published and paid"}}
			return p
		}
		if req.Tier == it.Tier && pendingID == nil {
			return httpx.Conflict(fmt.Sprintf("the integration is already %s and no verification request is pending", it.Tier))
		}
		if req.Tier != it.Tier {
			if _, err := tx.Exec(ctx, `UPDATE integrations SET verification_tier = $2, updated_at = $3 WHERE id = $1`, it.ID, req.Tier, now); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO integration_tier_changes (integration_id, from_tier, to_tier, reason, changed_by, changed_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, it.ID, it.Tier, req.Tier, req.Reason, p.Subject, now); err != nil {
			return err
		}
		out = TierChanged{Integration: it.Name, FromTier: it.Tier, ToTier: req.Tier, Reason: req.Reason}
		if pendingID != nil {
			status := "rejected"
			if req.Tier != TierUnverified {
				status = "approved"
			}
			if _, err := tx.Exec(ctx, `UPDATE verification_requests SET status = $2, resolved_by = $3, resolved_at = $4, resolution = $5
				WHERE id = $1`, *pendingID, status, p.Subject, now, req.Reason); err != nil {
				return err
			}
			out.Resolved = &ResolvedRequest{ID: *pendingID, Status: status}
		}
		return emit(ctx, tx, it.ID, events.TypeIntegrationTierChanged, events.IntegrationTierChanged{
			IntegrationID: it.ID, Name: it.Name, FromTier: it.Tier, ToTier: req.Tier, Reason: req.Reason,
			ChangedBy: p.Subject, ChangedAt: now,
		}, now)
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}
