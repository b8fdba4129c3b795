package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/fanout"
	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/shared/ssrf"
)

// PingType is the CloudEvent type of a PingSource tick; its data is {"job":"poll"}.
const PingType = "dev.knative.sources.ping"

// Service polls the pull sources and serves their rejections.
type Service struct {
	cfg    Config
	pool   *pgxpool.Pool
	client *ssrf.Client
	norm   records.Normalizer
	store  records.Store
	now    func() time.Time
	log    *slog.Logger
}

// New returns a Service. now is the clock of the stored times (nil: time.Now); norm is the
// normalizer seam (nil: records.Identity).
func New(cfg Config, pool *pgxpool.Pool, log *slog.Logger, now func() time.Time, norm records.Normalizer) (*Service, error) {
	if pool == nil {
		return nil, errors.New("poll: a database pool is required")
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	if norm == nil {
		norm = records.Identity{}
	}
	client, err := ssrf.NewClient(ssrf.Config{
		Allow:                 cfg.Allow,
		Timeout:               cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxBodyBytes:          cfg.MaxBodyBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	return &Service{
		cfg: cfg, pool: pool, client: client, norm: norm, now: now, log: log,
		store: records.Store{Function: "poll", Now: now, KeepRejections: cfg.RejectionKeep},
	}, nil
}

// HandleEvent is the runtime.EventHandler: a PingSource tick with job "poll" runs one tick;
// anything else is events.Permanent.
func (s *Service) HandleEvent(ctx context.Context, e event.Event) error {
	if e.Type() != PingType {
		return events.Permanent(fmt.Errorf("poll: event type %q is not handled here", e.Type()))
	}
	var d struct {
		Job string `json:"job"`
	}
	if err := json.Unmarshal(e.Data(), &d); err != nil || d.Job != "poll" {
		return events.Permanent(fmt.Errorf("poll: tick data must be {\"job\":\"poll\"}"))
	}
	_, err := s.Tick(ctx)
	return err
}

// TickResult says what one tick did.
type TickResult struct {
	Claimed int // sources leased
	Polled  int // sources polled successfully (304 included)
	Failed  int // sources whose poll failed (backing off)
	Skipped int // sources not started within the budget, released
}

// source is a claimed poll_sources row with what polling it needs.
type source struct {
	ID, Name, BaseURL                  string
	Schema                             []byte
	SchemaETag, SchemaLastModified     *string
	DataETag, DataLastModified         *string
	RefreshSeconds, ConsecutiveFailure int
}

// Tick polls the due pull sources once: it registers new published pull sources, prunes old
// rejections, leases up to Batch due sources and polls them with bounded concurrency and per
// host fairness, within the tick budget. Errors of single sources are recorded on them, not
// returned; an error means the database failed (the tick is retried by the dispatcher).
func (s *Service) Tick(ctx context.Context) (TickResult, error) {
	var res TickResult
	started := time.Now()
	now := s.now().UTC()
	if _, err := s.pool.Exec(ctx, `INSERT INTO poll_sources (integration_id, next_poll_at)
		SELECT id, $1 FROM integrations WHERE is_published AND type = 'data_source' AND delivery_mode = 'pull'
		ON CONFLICT (integration_id) DO NOTHING`, now); err != nil {
		return res, fmt.Errorf("poll: register sources: %w", err)
	}
	if _, err := records.PruneRejections(ctx, s.pool, now.Add(-s.cfg.RejectionRetention)); err != nil {
		return res, fmt.Errorf("poll: %w", err)
	}
	// The lease outlasts the tick; its random microseconds make it this tick's token, so a
	// source whose lease ran out and was taken by another tick is never written by this one.
	lease := now.Add(s.cfg.TickBudget + s.cfg.perSource()).Add(time.Duration(rand.IntN(1_000_000)) * time.Microsecond).Truncate(time.Microsecond)
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT ps.integration_id FROM poll_sources ps JOIN integrations i ON i.id = ps.integration_id
			WHERE i.is_published AND i.type = 'data_source' AND i.delivery_mode = 'pull'
			  AND ps.next_poll_at <= $1 AND (ps.leased_until IS NULL OR ps.leased_until < $1)
			ORDER BY ps.next_poll_at LIMIT $2
			FOR UPDATE OF ps SKIP LOCKED)
		UPDATE poll_sources ps SET leased_until = $3
		FROM due, integrations i
		WHERE ps.integration_id = due.integration_id AND i.id = ps.integration_id
		RETURNING ps.integration_id::text, i.name, i.base_url, ps.schema, ps.schema_etag, ps.schema_last_modified,
			ps.data_etag, ps.data_last_modified, ps.refresh_interval_seconds, ps.consecutive_failures`,
		now, s.cfg.Batch, lease)
	if err != nil {
		return res, fmt.Errorf("poll: claim: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[source])
	if err != nil {
		return res, fmt.Errorf("poll: claim: %w", err)
	}
	res.Claimed = len(claimed)
	if len(claimed) == 0 {
		return res, nil
	}

	// No source starts after the budget less the longest a source may take; a started one
	// runs to its own bound even if the tick's request is cancelled, so its lease is settled.
	startCtx, cancel := context.WithDeadline(ctx, started.Add(s.cfg.TickBudget-s.cfg.perSource()))
	defer cancel()
	begun := make([]atomic.Bool, len(claimed))
	var polled, failed atomic.Int64
	idx := make([]int, len(claimed))
	for i := range idx {
		idx[i] = i
	}
	fanout.Run(startCtx, idx, func(i int) string { return host(claimed[i].BaseURL) },
		fanout.Limits{Concurrency: s.cfg.Concurrency, PerKey: s.cfg.PerHost},
		func(ctx context.Context, i int) {
			begun[i].Store(true)
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.perSource())
			defer cancel()
			if s.pollOne(ctx, claimed[i], lease) {
				polled.Add(1)
			} else {
				failed.Add(1)
			}
		})
	var release []string
	for i := range claimed {
		if !begun[i].Load() {
			release = append(release, claimed[i].ID)
		}
	}
	res.Polled, res.Failed, res.Skipped = int(polled.Load()), int(failed.Load()), len(release)
	if len(release) > 0 {
		if _, err := s.pool.Exec(context.WithoutCancel(ctx), `UPDATE poll_sources SET leased_until = NULL
			WHERE integration_id = ANY($1::uuid[]) AND leased_until = $2`, release, lease); err != nil {
			return res, fmt.Errorf("poll: release: %w", err)
		}
	}
	s.logger(ctx).Info("poll tick", slog.Int("claimed", res.Claimed), slog.Int("polled", res.Polled),
		slog.Int("failed", res.Failed), slog.Int("skipped", res.Skipped), slog.Duration("took", time.Since(started)))
	return res, nil
}

func (s *Service) logger(ctx context.Context) *slog.Logger {
	if l := logging.From(ctx); l != slog.Default() {
		return l
	}
	return s.log
}

// host is the fairness key of a source: its URL's host name.
func host(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	return strings.ToLower(u.Hostname())
}

// pollError is a source's failure, as its developer reads it in last_error.
type pollError struct{ msg string }

func (e *pollError) Error() string { return e.msg }

func failf(format string, args ...any) error { return &pollError{msg: fmt.Sprintf(format, args...)} }

// pollOne polls one leased source and settles its lease; it reports success.
func (s *Service) pollOne(ctx context.Context, src source, lease time.Time) bool {
	err := s.poll(ctx, src, lease)
	if err == nil {
		return true
	}
	log := s.logger(ctx).With(slog.String("integration", src.Name))
	var pe *pollError
	msg := err.Error()
	if !errors.As(err, &pe) {
		log.Warn("poll failed", slog.Any("err", err))
		msg = "internal error while storing the records; retried later"
	} else {
		log.Info("source failed", slog.String("reason", msg))
	}
	now := s.now().UTC()
	next := now.Add(s.backoff(src.ConsecutiveFailure + 1))
	if _, err := s.pool.Exec(ctx, `UPDATE poll_sources SET consecutive_failures = consecutive_failures + 1,
			last_error = $2, last_polled_at = $3, next_poll_at = $4, leased_until = NULL
		WHERE integration_id = $1 AND leased_until = $5`,
		src.ID, records.Clean(msg, 1000), now, next, lease); err != nil {
		log.Warn("record poll failure", slog.Any("err", err))
	}
	return false
}

// backoff is the wait after the n-th consecutive failure: MinInterval doubled per failure,
// capped at MaxBackoff, with jitter over its upper half so failing sources spread out.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.MinInterval
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// fetched is a 200 or 304 answer.
type fetched struct {
	notModified        bool
	body               []byte
	etag, lastModified *string
}

// get fetches base+path through the SSRF-safe client, conditionally when validators are given.
func (s *Service) get(ctx context.Context, base, path string, etag, lastModified *string, limit int64) (fetched, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	u := strings.TrimSuffix(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fetched{}, failf("GET %s: invalid URL", path)
	}
	req.Header.Set("Accept", "application/json")
	conditional := false
	if etag != nil {
		req.Header.Set("If-None-Match", *etag)
		conditional = true
	}
	if lastModified != nil {
		req.Header.Set("If-Modified-Since", *lastModified)
		conditional = true
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fetched{}, failf("GET %s: %s", path, ssrf.Describe(err, s.cfg.Timeout))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fetched{notModified: true}, nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fetched{}, failf("GET %s: HTTP %d, want 200", path, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fetched{}, failf("GET %s: reading the body: %s", path, ssrf.Describe(err, s.cfg.Timeout))
	}
	if int64(len(body)) > limit {
		return fetched{}, failf("GET %s: body larger than %d bytes", path, limit)
	}
	f := fetched{body: body}
	if v := resp.Header.Get("ETag"); v != "" && len(v) <= 256 {
		f.etag = &v
	}
	if v := resp.Header.Get("Last-Modified"); v != "" && len(v) <= 64 {
		f.lastModified = &v
	}
	return f, nil
}

const maxSchemaBody = records.MaxPullSchemaBytes

// poll fetches the schema and the data of src and stores them. A *pollError is the source's
// fault (recorded as its last_error); any other error is ours.
func (s *Service) poll(ctx context.Context, src source, lease time.Time) error {
	sf, err := s.get(ctx, src.BaseURL, "/schema", src.SchemaETag, src.SchemaLastModified, min(s.cfg.MaxBodyBytes, maxSchemaBody))
	if err != nil {
		return err
	}
	schemaBody, schemaETag, schemaLM := src.Schema, src.SchemaETag, src.SchemaLastModified
	dataETag, dataLM := src.DataETag, src.DataLastModified
	schemaFetched := !sf.notModified
	if sf.notModified && src.Schema == nil {
		return failf("GET /schema: 304 Not Modified, but no schema is stored")
	}
	if schemaFetched {
		if string(sf.body) != string(src.Schema) {
			// A new schema may admit records refused before: fetch the data in full.
			dataETag, dataLM = nil, nil
		}
		schemaBody, schemaETag, schemaLM = sf.body, sf.etag, sf.lastModified
	}
	sch, err := records.ParsePullSchema(schemaBody)
	if err != nil {
		var de *records.DocumentError
		if errors.As(err, &de) {
			return failf("GET /schema: %s", de.Error())
		}
		return err
	}
	df, err := s.get(ctx, src.BaseURL, "/data", dataETag, dataLM, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	batch := records.Batch{Source: records.Source{IntegrationID: src.ID, Name: src.Name, DeliveryMode: events.DeliveryPull}}
	if !df.notModified {
		items, err := records.ParsePullData(df.body, int(s.cfg.MaxBodyBytes))
		if err != nil {
			var de *records.DocumentError
			if errors.As(err, &de) {
				return failf("GET /data: %s", de.Error())
			}
			return err
		}
		batch.Records, batch.Rejections, err = records.CheckPull(ctx, batch.Source, sch, items, s.norm)
		if err != nil {
			return failf("normalizer: %s", records.Clean(err.Error(), 500))
		}
		dataETag, dataLM = df.etag, df.lastModified
	}

	now := s.now().UTC()
	interval := max(sch.RefreshInterval, s.cfg.MinInterval)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE poll_sources SET schema = $2::jsonb, schema_etag = $3, schema_last_modified = $4,
				schema_fetched_at = CASE WHEN $5 THEN $6 ELSE schema_fetched_at END,
				data_etag = $7, data_last_modified = $8, refresh_interval_seconds = $9, next_poll_at = $10,
				consecutive_failures = 0, last_polled_at = $6, last_success_at = $6, last_error = NULL, leased_until = NULL
			WHERE integration_id = $1 AND leased_until = $11`,
			src.ID, string(schemaBody), schemaETag, schemaLM, schemaFetched, now,
			dataETag, dataLM, int(sch.RefreshInterval/time.Second), now.Add(interval), lease)
		if err != nil {
			return fmt.Errorf("poll: update source: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errLeaseLost
		}
		if len(batch.Records) == 0 && len(batch.Rejections) == 0 {
			return nil
		}
		res, err := s.store.Write(ctx, tx, batch)
		if err != nil {
			return err
		}
		s.logger(ctx).Debug("records stored", slog.String("integration", src.Name), slog.Int("stored", res.Stored),
			slog.Int("changed", res.Changed), slog.Int("events", res.Events), slog.Int("rejected", res.Rejected))
		return nil
	})
	if errors.Is(err, errLeaseLost) {
		s.logger(ctx).Warn("lease lost; another tick owns the source now", slog.String("integration", src.Name))
		return nil
	}
	return err
}

var errLeaseLost = errors.New("poll: lease lost")
