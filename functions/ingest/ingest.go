package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/wasmhost"
)

// The convention of a pushed record (schemas/openapi/connect.yaml, docs/decisions/0010).
const (
	// PushType is the type of every pushed record.
	PushType = "com.myscrollr.connect.record.pushed"
	// UserExtension names the optional extension carrying the Logto user id a record is about.
	UserExtension = "user"
	// IntegrationExtension is set by the KafkaSource of an integration's push topic
	// (ceOverrides, one KafkaSource per push topic) to the integration's name: on /events it
	// says whose topic an event came from. The KafkaSource overrides whatever the producer put
	// there, so it cannot be forged by a producer.
	IntegrationExtension = "pushintegration"
)

// Outcomes of one event.
const (
	Stored    = "stored"
	Duplicate = "duplicate"
	Refused   = "refused"
)

// Result is the outcome of one event of a push.
type Result struct {
	ID       string            `json:"id"`
	Status   string            `json:"status"` // stored, duplicate or refused
	Problems []records.Problem `json:"problems,omitempty"`
}

// Results is the body of a POST /v1/ingest answer: one result per event, in order.
type Results struct {
	Stored     int      `json:"stored"`
	Duplicates int      `json:"duplicates"`
	Refused    int      `json:"refused"`
	Results    []Result `json:"results"`
}

// Service accepts pushed records.
type Service struct {
	cfg     Config
	pool    *pgxpool.Pool
	sources *sources
	limit   *limiter
	traps   traps // transform failures on the Kafka path (traps.go)
	norm    records.Normalizer
	store   records.Store
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Service. norm is the normalizer seam (nil: records.Identity); now stamps
// records and replay keys (nil: time.Now).
func New(cfg Config, pool *pgxpool.Pool, norm records.Normalizer, log *slog.Logger, now func() time.Time) (*Service, error) {
	var errs []error
	cfg.check(func(format string, args ...any) { errs = append(errs, fmt.Errorf("ingest: "+format, args...)) })
	if pool == nil {
		errs = append(errs, errors.New("ingest: a database pool is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if norm == nil {
		norm = records.Identity{}
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Service{
		cfg: cfg, pool: pool, sources: newSources(pool, cfg.SourceTTL, now), limit: newLimiter(cfg.Rate, cfg.Burst, now),
		norm: norm, store: records.Store{Function: "ingest", Now: now}, log: log, now: now,
	}, nil
}

// Routes serves POST /v1/ingest behind v: a token with data:write whose client_id is a push
// source's integration client (m2m_app_id). The integration is named by the token, not by the request, so
// auth.RequireClient (which checks a client_id against an integration the request names) has
// nothing to compare with: the route requires the scope and then finds the push source by the
// token's client_id; a client that is no push source's is refused 403, as RequireClient
// refuses another integration's client.
func (s *Service) Routes(v *auth.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/ingest", v.Require(auth.ScopeDataWrite)(httpx.HandlerFunc(s.ingest)))
	return mux
}

// ingest: POST /v1/ingest.
func (s *Service) ingest(w http.ResponseWriter, r *http.Request) error {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		return httpx.Unauthorized("a bearer token is required")
	}
	src, err := s.sources.ByClient(r.Context(), p.ClientID)
	if errors.Is(err, errNoSource) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="data:write"`)
		return httpx.Forbidden("the token's client is not the integration client of a push data source")
	}
	if err != nil {
		return httpx.Unavailable("cannot resolve the push source", err)
	}
	// An empty bucket is refused before the body is read.
	if wait := s.limit.take(src.IntegrationID, 0); wait > 0 {
		return s.tooMany(w, wait)
	}
	body, prob := httpx.ReadBody(w, r, s.cfg.MaxBodyBytes)
	if prob != nil {
		return prob
	}
	items, err := decodeRequest(r.Header, body, s.cfg.MaxBatch)
	if err != nil {
		return err
	}
	if wait := s.limit.take(src.IntegrationID, len(items)); wait > 0 {
		return s.tooMany(w, wait)
	}
	res, err := s.accept(r.Context(), src, items)
	if be := (*wasmhost.BatchError)(nil); errors.As(err, &be) {
		// The integration's own transform failed the batch (trap, time or memory limit).
		return &httpx.Problem{Title: http.StatusText(http.StatusUnprocessableEntity), Status: http.StatusUnprocessableEntity,
			Detail: "the integration's transform failed the batch; nothing was stored", Errors: []httpx.FieldError{{Field: "transform", Reason: be.Reason}}}
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Refused > 0 {
		status = http.StatusMultiStatus
	}
	httpx.WriteJSON(w, status, res)
	return nil
}

func (s *Service) tooMany(w http.ResponseWriter, wait time.Duration) error {
	secs := retryAfter(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	p := &httpx.Problem{Title: http.StatusText(http.StatusTooManyRequests), Status: http.StatusTooManyRequests,
		Detail: fmt.Sprintf("this integration's push rate (%g events/s, burst %d) is exhausted; retry after %d s", s.cfg.Rate, s.cfg.Burst, secs)}
	return p
}

// checked is an event that passed validation, with its replay key and its record.
type checked struct {
	idx    int
	source string
	id     string
	rec    records.Record
}

// accept validates, normalizes and stores the events of one push from src: the good events
// are stored even when others are refused; an event whose (source, id) was stored before is
// a duplicate and stored no second time. Refused events are recorded as rejections. The error
// is not about an event (the database or the normalizer failed): nothing was stored.
func (s *Service) accept(ctx context.Context, src *source, items []item) (Results, error) {
	res := Results{Results: make([]Result, len(items))}
	var good []checked
	var rejs []records.Rejection
	seen := make(map[[2]string]bool, len(items))
	for i, it := range items {
		res.Results[i] = Result{ID: it.ID}
		if it.Event == nil {
			res.Results[i].Status, res.Results[i].Problems = Refused, it.Problems
			rejs = append(rejs, records.Rejection{Problems: it.Problems})
			continue
		}
		e := it.Event
		key := [2]string{e.Source(), e.ID()}
		if seen[key] {
			res.Results[i].Status = Duplicate
			continue
		}
		rec, problems, err := s.check(ctx, src, e)
		if err != nil {
			return Results{}, err
		}
		if len(problems) > 0 {
			res.Results[i].Status, res.Results[i].Problems = Refused, problems
			rejs = append(rejs, records.Rejection{Stream: e.Subject(), Key: rec.Key, Problems: problems, Sample: string(e.Data())})
			continue
		}
		seen[key] = true
		good = append(good, checked{idx: i, source: e.Source(), id: e.ID(), rec: rec})
	}
	if _, identity := s.norm.(records.Identity); !identity && len(good) > 0 {
		// One call for the request's records (a WASM transform runs a batch per call).
		recs := make([]records.Record, len(good))
		for i, c := range good {
			recs[i] = c.rec
		}
		problems, err := records.NormalizeRecords(ctx, src.Source, recs, records.AsBatch(s.norm))
		if err != nil {
			return Results{}, err
		}
		kept := good[:0]
		for i, c := range good {
			if ps := problems[i]; len(ps) > 0 {
				for j := range ps {
					ps[j].Field = "/data" + ps[j].Field
				}
				res.Results[c.idx].Status, res.Results[c.idx].Problems = Refused, ps
				rejs = append(rejs, records.Rejection{Stream: c.rec.Stream, Key: c.rec.Key, Problems: ps, Sample: string(recs[i].Data)})
				continue
			}
			c.rec.Data = recs[i].Data
			kept = append(kept, c)
		}
		good = kept
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := s.claim(ctx, tx, src, good)
		if err != nil {
			return err
		}
		var recs []records.Record
		for _, c := range good {
			if fresh[[2]string{c.source, c.id}] {
				recs = append(recs, c.rec)
				res.Results[c.idx].Status = Stored
			} else {
				res.Results[c.idx].Status = Duplicate
			}
		}
		_, err = s.store.Write(ctx, tx, records.Batch{Source: src.Source, Records: recs, Rejections: rejs})
		return err
	})
	if err != nil {
		return Results{}, err
	}
	for _, r := range res.Results {
		switch r.Status {
		case Stored:
			res.Stored++
		case Duplicate:
			res.Duplicates++
		default:
			res.Refused++
		}
	}
	return res, nil
}

// claim records the replay keys of good and returns those that were new.
func (s *Service) claim(ctx context.Context, tx pgx.Tx, src *source, good []checked) (map[[2]string]bool, error) {
	fresh := make(map[[2]string]bool, len(good))
	if len(good) == 0 {
		return fresh, nil
	}
	srcs, ids := make([]string, len(good)), make([]string, len(good))
	for i, c := range good {
		srcs[i], ids[i] = c.source, c.id
	}
	rows, err := tx.Query(ctx, `INSERT INTO ingest_events (integration_id, source, id, received_at)
		SELECT $1, t.source, t.id, $4 FROM unnest($2::text[], $3::text[]) AS t(source, id)
		ON CONFLICT DO NOTHING RETURNING source, id`, src.IntegrationID, srcs, ids, s.now().UTC())
	if err != nil {
		return nil, fmt.Errorf("ingest: replay keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return nil, fmt.Errorf("ingest: replay keys: %w", err)
		}
		fresh[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ingest: replay keys: %w", err)
	}
	return fresh, nil
}

// check validates one event against the push convention and its stream, and normalizes its
// record. Problems point into the event ("/type", "/subject", "/data/price").
func (s *Service) check(ctx context.Context, src *source, e *event.Event) (records.Record, []records.Problem, error) {
	refuse := func(field, reason string) (records.Record, []records.Problem, error) {
		return records.Record{}, []records.Problem{{Field: field, Reason: reason}}, nil
	}
	if e.Type() != PushType {
		return refuse("/type", "must be "+PushType)
	}
	if len(e.Source()) > 512 {
		return refuse("/source", "at most 512 characters")
	}
	if len(e.ID()) > 256 {
		return refuse("/id", "at most 256 characters")
	}
	stream := e.Subject()
	if stream == "" {
		return refuse("/subject", "required: the stream the record belongs to")
	}
	st := src.Streams[stream]
	if st == nil {
		if why, ok := src.Broken[stream]; ok {
			return refuse("/subject", why)
		}
		return refuse("/subject", fmt.Sprintf("stream %q is not declared by manifest version %s", records.Clean(stream, 64), src.Version))
	}
	if ct := e.DataContentType(); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return refuse("/datacontenttype", "must be application/json")
		}
	}
	var user string
	if v, ok := e.Extensions()[UserExtension]; ok {
		u, ok := v.(string)
		if !ok || u == "" || len(u) > 128 {
			return refuse("/"+UserExtension, "must be a Logto user id (1 to 128 characters)")
		}
		user = u
	}
	raw := e.Data()
	if len(raw) == 0 {
		return refuse("/data", "required: the record, a JSON object")
	}
	if len(raw) > records.MaxRecordBytes {
		return refuse("/data", fmt.Sprintf("larger than %d bytes", records.MaxRecordBytes))
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return refuse("/data", "not valid JSON")
	}
	// Validation and key only: accept normalizes the request's good records in one batch.
	rec, problems, err := records.Check(ctx, src.Source, st, v, raw, records.Identity{})
	if err != nil {
		return records.Record{}, nil, err
	}
	for i := range problems {
		problems[i].Field = "/data" + problems[i].Field
	}
	if len(problems) > 0 {
		return records.Record{}, problems, nil
	}
	rec.User, rec.ObservedAt, rec.SchemaVersion = user, e.Time(), src.Version
	return rec, nil, nil
}

// HandleEvent is the KafkaSource path: a CloudEvent produced to integrations.{name}.data,
// delivered with the IntegrationExtension the integration's KafkaSource sets. It goes through
// the same checks and store as a push over HTTP. A refused event is permanent (dead letter);
// a stored or duplicate one is done; one the integration's transform fails is retried once,
// then permanent (traps.go).
func (s *Service) HandleEvent(ctx context.Context, e event.Event) error {
	name, _ := e.Extensions()[IntegrationExtension].(string)
	if e.Type() == PingType && name == "" {
		// A PingSource tick (prune.go). What a KafkaSource delivers always carries the
		// extension, so a producer cannot make its record a tick.
		return s.handleTick(ctx, e)
	}
	if name == "" {
		return events.Permanent(fmt.Errorf("ingest: event %q has no %s extension: the KafkaSource of a push topic sets it (ceOverrides)", e.ID(), IntegrationExtension))
	}
	src, err := s.sources.ByName(ctx, name)
	if errors.Is(err, errNoSource) {
		return events.Permanent(fmt.Errorf("ingest: %q is not a push source", records.Clean(name, 64)))
	}
	if err != nil {
		return err
	}
	res, err := s.accept(ctx, src, []item{{ID: e.ID(), Event: &e}})
	if be := (*wasmhost.BatchError)(nil); errors.As(err, &be) && s.traps.again(src.IntegrationID, e.Source(), e.ID(), e.Data()) {
		// The transform failed this input a second time: dead letter, not retried (traps.go).
		return events.Permanent(fmt.Errorf("ingest: event %q of %s: the integration's transform failed it twice: %w", e.ID(), src.Name, err))
	}
	if err != nil {
		return err
	}
	if r := res.Results[0]; r.Status == Refused {
		parts := make([]string, len(r.Problems))
		for i, p := range r.Problems {
			parts[i] = p.String()
		}
		return events.Permanent(fmt.Errorf("ingest: event %q of %s refused: %s", e.ID(), src.Name, strings.Join(parts, "; ")))
	}
	return nil
}
