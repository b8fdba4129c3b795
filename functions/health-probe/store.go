package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/outbox"
)

// eventIDSpace is the namespace of the name-based UUIDs of health.changed events, derived from
// the integration and the check's time: one transition, one id, however often it is written.
var eventIDSpace = uuid.MustParse("5f0c8f0e-2a51-4c61-9d0a-3e8f6b1d7a24")

// Pruning: rows are deleted in batches so no statement holds many locks or a long transaction;
// a backlog (a retention shortened, a long outage of the probe) drains over a few sweeps.
const (
	pruneBatch      = 10000
	pruneMaxBatches = 10
	// spanRetention is the longest uptime window: a span ended before it counts for nothing.
	spanRetention = 30 * 24 * time.Hour
)

// loadTargets lists the published integrations not yet checked at or after at, with their
// state (a missing state row is unknown with no runs). They come slowest first: those whose
// last check failed (often a timeout) or that were never checked, then by their last response
// time, longest first. The sweep starts them in this order, so the probes that may run into
// the timeout run alongside all the quick ones instead of after them (longest job first), and
// a sweep takes about PROBE_TIMEOUT rather than PROBE_TIMEOUT plus the time of everything
// started before the slow ones.
func loadTargets(ctx context.Context, conn *pgxpool.Conn, at time.Time) ([]target, error) {
	rows, err := conn.Query(ctx, `SELECT i.id::text, i.name, i.base_url,
			coalesce(s.status, 'unknown'), coalesce(s.consecutive_failures, 0), coalesce(s.consecutive_successes, 0)
		FROM integrations i LEFT JOIN integration_health_state s ON s.integration_id = i.id
		WHERE i.is_published AND (s.last_checked_at IS NULL OR s.last_checked_at < $1)
		ORDER BY coalesce(s.consecutive_failures, 1) > 0 DESC, s.last_response_time_ms DESC NULLS FIRST, i.id`, at)
	if err != nil {
		return nil, fmt.Errorf("health-probe: load integrations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (target, error) {
		var t target
		err := r.Scan(&t.ID, &t.Name, &t.BaseURL, &t.State.Status, &t.State.Failures, &t.State.Successes)
		t.Host = hostKey(t.BaseURL)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("health-probe: load integrations: %w", err)
	}
	return out, nil
}

// record writes a sweep's results in one transaction of five statements plus one batch of
// outbox rows: the raw checks, the states, the uptime spans, the listings (status, uptime,
// checked time) and one health.changed per transition. It returns the number of transitions.
func record(ctx context.Context, conn *pgxpool.Conn, at time.Time, targets []target, results []Result) (int, error) {
	if len(targets) == 0 {
		return 0, nil
	}
	n := len(targets)
	var (
		ids       = make([]string, n)
		checks    = make([]string, n)
		ms        = make([]int32, n) // -1: no answer
		codes     = make([]int32, n) // 0: no answer
		reasons   = make([]string, n)
		ups       = make([]bool, n)
		statuses  = make([]string, n)
		failures  = make([]int32, n)
		successes = make([]int32, n)
		changed   = make([]bool, n)
		states    = make([]State, n)
	)
	transitions := 0
	for i, t := range targets {
		r := results[i]
		st := Next(t.State, r.Status)
		states[i] = st
		ids[i], checks[i], reasons[i] = t.ID, r.Status, clip.Ellipsis(r.Reason, 480)
		ms[i], codes[i] = -1, int32(r.HTTPStatus)
		if r.HTTPStatus != 0 {
			ms[i] = int32(min(r.Elapsed.Milliseconds(), 1<<31-1))
		}
		ups[i] = r.Status != events.HealthOffline
		statuses[i], failures[i], successes[i] = st.Status, int32(min(st.Failures, 1<<31-1)), int32(min(st.Successes, 1<<31-1))
		changed[i] = st.Status != t.State.Status
		if changed[i] {
			transitions++
		}
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("health-probe: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	if _, err := tx.Exec(ctx, `INSERT INTO integration_health (integration_id, status, response_time_ms, checked_at, http_status, reason)
		SELECT id, status, nullif(ms, -1), $1, nullif(code, 0), nullif(reason, '')
		FROM unnest($2::uuid[], $3::text[], $4::int[], $5::int[], $6::text[]) AS r(id, status, ms, code, reason)
		WHERE EXISTS (SELECT 1 FROM integrations i WHERE i.id = r.id) -- deleted since the load: skip
		ON CONFLICT (integration_id, checked_at) DO NOTHING`,
		at, ids, checks, ms, codes, reasons); err != nil {
		return 0, fmt.Errorf("health-probe: record checks: %w", err)
	}

	if _, err := tx.Exec(ctx, `INSERT INTO integration_health_state AS s
			(integration_id, status, consecutive_failures, consecutive_successes, last_checked_at, last_changed_at,
			 last_response_time_ms, last_reason)
		SELECT id, status, f, su, $1, CASE WHEN changed THEN $1::timestamptz END, nullif(ms, -1), nullif(reason, '')
		FROM unnest($2::uuid[], $3::text[], $4::int[], $5::int[], $6::bool[], $7::int[], $8::text[])
			AS r(id, status, f, su, changed, ms, reason)
		WHERE EXISTS (SELECT 1 FROM integrations i WHERE i.id = r.id)
		ON CONFLICT (integration_id) DO UPDATE SET
			status = excluded.status,
			consecutive_failures = excluded.consecutive_failures,
			consecutive_successes = excluded.consecutive_successes,
			last_checked_at = excluded.last_checked_at,
			last_changed_at = coalesce(excluded.last_changed_at, s.last_changed_at),
			last_response_time_ms = excluded.last_response_time_ms,
			last_reason = excluded.last_reason
		WHERE s.last_checked_at IS NULL OR s.last_checked_at < excluded.last_checked_at`,
		at, ids, statuses, failures, successes, changed, ms, reasons); err != nil {
		return 0, fmt.Errorf("health-probe: record states: %w", err)
	}

	// Spans: the time from a check to the next one counts with the first check's outcome. A
	// check extends its integration's latest span to itself (when that span ended within
	// maxGap); a check with another outcome than that span's, or after a longer gap, starts a
	// new span at itself. Gaps over maxGap belong to no span: unobserved time.
	if _, err := tx.Exec(ctx, `WITH r AS (
			SELECT * FROM unnest($2::uuid[], $3::bool[]) AS r(id, up)
			WHERE EXISTS (SELECT 1 FROM integrations i WHERE i.id = r.id)
		), last AS (
			SELECT r.id, r.up, l.started_at, l.ended_at, l.up AS last_up
			FROM r LEFT JOIN LATERAL (
				SELECT started_at, ended_at, up FROM integration_uptime_spans s
				WHERE s.integration_id = r.id ORDER BY started_at DESC LIMIT 1) l ON true
		), extended AS (
			UPDATE integration_uptime_spans s SET ended_at = $1
			FROM last
			WHERE s.integration_id = last.id AND s.started_at = last.started_at
				AND last.ended_at < $1 AND last.ended_at >= $1 - $4::interval
			RETURNING s.integration_id
		)
		INSERT INTO integration_uptime_spans (integration_id, started_at, ended_at, up)
		SELECT last.id, $1, $1, last.up FROM last
		WHERE last.started_at IS NULL
			OR (last.ended_at < $1 AND (last.last_up <> last.up
				OR NOT EXISTS (SELECT 1 FROM extended e WHERE e.integration_id = last.id)))
		ON CONFLICT DO NOTHING`,
		at, ids, ups, maxGap); err != nil {
		return 0, fmt.Errorf("health-probe: record uptime spans: %w", err)
	}

	rows, err := tx.Query(ctx, `UPDATE integrations i SET
			health_status = r.status, health_checked_at = $1,
			uptime_24h = u.u24, uptime_7d = u.u7, uptime_30d = u.u30
		FROM unnest($2::uuid[], $3::text[]) AS r(id, status)
		LEFT JOIN LATERAL (`+uptimeSQL+`) u ON true
		WHERE i.id = r.id
		RETURNING i.id::text, i.name, i.uptime_30d::float8`, at, ids, statuses)
	if err != nil {
		return 0, fmt.Errorf("health-probe: update listings: %w", err)
	}
	type listing struct {
		name     string
		uptime30 *float64
	}
	listings := make(map[string]listing, n)
	for rows.Next() {
		var id string
		var l listing
		if err := rows.Scan(&id, &l.name, &l.uptime30); err != nil {
			rows.Close()
			return 0, fmt.Errorf("health-probe: update listings: %w", err)
		}
		listings[id] = l
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("health-probe: update listings: %w", err)
	}

	if transitions > 0 {
		b := &batchExecer{}
		flush := func() error {
			if b.batch.Len() == 0 {
				return nil
			}
			err := tx.SendBatch(ctx, &b.batch).Close()
			b.batch = pgx.Batch{}
			if err != nil {
				return fmt.Errorf("health-probe: write health.changed events: %w", err)
			}
			return nil
		}
		for i, t := range targets {
			if !changed[i] {
				continue
			}
			if b.batch.Len() == outboxBatch {
				if err := flush(); err != nil {
					return 0, err
				}
			}
			l, ok := listings[t.ID]
			if !ok { // deleted meanwhile
				continue
			}
			data := events.HealthChanged{
				IntegrationID: t.ID, Name: l.name, Status: states[i].Status, PreviousStatus: t.State.Status,
				CheckedAt: at,
			}
			if results[i].HTTPStatus != 0 {
				data.ResponseTimeMS = results[i].Elapsed.Milliseconds()
			}
			switch {
			case l.uptime30 != nil:
				data.Uptime30d = *l.uptime30
			case results[i].Status != events.HealthOffline:
				data.Uptime30d = 100 // no time measured yet: the one check is the evidence
			}
			ce, err := outbox.New(events.Source(Name), events.TypeHealthChanged, data)
			if err != nil {
				return 0, err
			}
			ce.SetID(uuid.NewSHA1(eventIDSpace, []byte(t.ID+"\n"+at.Format(time.RFC3339Nano))).String())
			ce.SetTime(at)
			ce.SetSubject(t.ID)
			if _, err := outbox.Write(ctx, b, outbox.Event{AggregateType: "integration", AggregateID: t.ID, CloudEvent: ce}); err != nil {
				return 0, fmt.Errorf("health-probe: health.changed of %s: %w", t.Name, err)
			}
		}
		if err := flush(); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("health-probe: commit: %w", err)
	}
	return transitions, nil
}

// uptimeSQL computes an integration's uptime (r.id) over the 24 h, 7 d and 30 d before $1
// from its spans, in percent rounded to 0.01: the up time of the spans clipped to the window,
// over all the time the spans cover in it. Time no span covers (gaps, before the first check)
// is in neither. NULL when the spans cover no time of the window. Windows are in hours, not
// days, so they are exact whatever the session's time zone.
const uptimeSQL = `SELECT
		round(100 * coalesce(sum(o24) FILTER (WHERE up), 0) / nullif(sum(o24), 0), 2) AS u24,
		round(100 * coalesce(sum(o7) FILTER (WHERE up), 0) / nullif(sum(o7), 0), 2) AS u7,
		round(100 * coalesce(sum(o30) FILTER (WHERE up), 0) / nullif(sum(o30), 0), 2) AS u30
	FROM (SELECT up,
			greatest(extract(epoch FROM least(ended_at, $1) - greatest(started_at, $1 - interval '24 hours')), 0) AS o24,
			greatest(extract(epoch FROM least(ended_at, $1) - greatest(started_at, $1 - interval '168 hours')), 0) AS o7,
			greatest(extract(epoch FROM least(ended_at, $1) - greatest(started_at, $1 - interval '720 hours')), 0) AS o30
		FROM integration_uptime_spans s
		WHERE s.integration_id = r.id AND s.ended_at > $1 - interval '720 hours') AS w`

// outboxBatch is how many health.changed rows go in one round trip: few round trips, and a
// first sweep over many integrations (every one a transition) does not hold all its events
// in memory at once.
const outboxBatch = 1000

// batchExecer queues outbox.Write's inserts in a pgx.Batch, sent every outboxBatch events.
type batchExecer struct{ batch pgx.Batch }

func (b *batchExecer) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	b.batch.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// prune deletes raw checks older than retention and spans that ended before the longest
// uptime window, in batches, and returns how many rows it deleted.
func prune(ctx context.Context, conn *pgxpool.Conn, at time.Time, retention time.Duration) (int64, error) {
	var total int64
	for _, q := range []struct {
		what, sql string
		before    time.Time
	}{
		{"checks", `DELETE FROM integration_health WHERE id IN (
			SELECT id FROM integration_health WHERE checked_at < $1 ORDER BY checked_at LIMIT $2)`, at.Add(-retention)},
		{"spans", `DELETE FROM integration_uptime_spans WHERE (integration_id, started_at) IN (
			SELECT integration_id, started_at FROM integration_uptime_spans WHERE ended_at < $1 ORDER BY ended_at LIMIT $2)`,
			at.Add(-spanRetention)},
	} {
		for range pruneMaxBatches {
			tag, err := conn.Exec(ctx, q.sql, q.before, pruneBatch)
			if err != nil {
				return total, fmt.Errorf("health-probe: prune %s: %w", q.what, err)
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < pruneBatch {
				break
			}
		}
	}
	return total, nil
}
