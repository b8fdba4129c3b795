package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/fanout"
	"github.com/myscrollr/connect/shared/logging"
)

// Name is the function's name: its job in the tick's data, its CloudEvent source, its role.
const Name = "health-probe"

// PingType is the CloudEvent type of a PingSource tick.
const PingType = "dev.knative.sources.ping"

// Tick timing. The PingSource ticks every minute (infra/knative/50-pingsources.yaml).
const (
	// tickInterval is the PingSource's schedule; sweeps are stamped with their tick's minute.
	tickInterval = time.Minute
	// maxGap is the longest time between two checks that still counts as observed: a longer
	// gap (the probe did not run, ticks were lost) is left out of uptime altogether.
	maxGap = 3 * tickInterval
	// maxTickAge: a tick delivered later than this is stale (a newer tick has run or will run
	// its sweep) and is dropped rather than recorded as a check at a time long past.
	maxTickAge = 5 * time.Minute
	// maxTickSkew: a tick stamped further in the future is stamped with our clock instead.
	maxTickSkew = time.Minute
)

// lockKey is the PostgreSQL advisory lock held by a sweep ("health" in ASCII): one sweep at
// a time per database, whichever replica the tick reaches.
const lockKey int64 = 0x6865616c7468

// Service runs the sweeps.
type Service struct {
	pool   *pgxpool.Pool
	prober *Prober
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
}

// New returns a Service. now is the clock of tick times and uptime windows (nil: time.Now).
func New(pool *pgxpool.Pool, cfg Config, log *slog.Logger, now func() time.Time) (*Service, error) {
	if pool == nil {
		return nil, errors.New("health-probe: a database pool is required")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p, err := NewProber(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	return &Service{pool: pool, prober: p, cfg: cfg, log: log, now: now}, nil
}

// Close releases the prober's idle connections.
func (s *Service) Close() { s.prober.Close() }

// tick is the data of a PingSource tick.
type tick struct {
	Job string `json:"job"`
}

// HandleEvent is the runtime.EventHandler: a PingSource tick for this job runs a sweep;
// anything else can never be handled here and is events.Permanent.
func (s *Service) HandleEvent(ctx context.Context, e event.Event) error {
	if e.Type() != PingType {
		return events.Permanent(fmt.Errorf("health-probe: event type %q is not handled here", e.Type()))
	}
	var t tick
	if err := json.Unmarshal(e.Data(), &t); err != nil {
		return events.Permanent(fmt.Errorf("health-probe: data of %s: not a JSON object with \"job\"", e.Type()))
	}
	if t.Job != Name {
		return events.Permanent(fmt.Errorf("health-probe: data of %s: field \"job\": %q is not %q", e.Type(), clip.Ellipsis(t.Job, 64), Name))
	}
	log := logging.From(ctx)
	if log == slog.Default() {
		log = s.log
	}
	log = log.With(slog.String("event_id", e.ID()))
	now := s.now()
	at := e.Time()
	switch {
	case at.IsZero():
		at = now
	case at.After(now.Add(maxTickSkew)):
		log.Warn("tick stamped in the future: using our clock", slog.Time("tick_time", at))
		at = now
	case now.Sub(at) > maxTickAge:
		log.Info("stale tick dropped", slog.Time("tick_time", at))
		return nil
	}
	_, err := s.Sweep(logging.With(ctx, log), at)
	return err
}

// Summary says what a sweep did.
type Summary struct {
	CheckedAt   time.Time
	Skipped     bool // another sweep held the lock
	Probed      int
	Healthy     int
	Degraded    int
	Offline     int
	Transitions int
	Pruned      int64 // raw checks and spans removed
}

// target is a published integration due for a check, with its state.
type target struct {
	ID, Name, BaseURL string
	Host              string // the fairness key: the base URL's host name
	State             State
}

// Sweep checks every published integration not yet checked for the minute of at, and records
// the results, the new states, the uptime and one health.changed per transition in one
// transaction. Checks are stamped with at truncated to the minute, so a tick delivered twice
// records nothing twice (integration_health is unique per integration and checked_at, and an
// integration checked at or after that minute is not probed again). A sweep holds an advisory
// lock on its own connection; a sweep that finds it held returns at once (Summary.Skipped).
func (s *Service) Sweep(ctx context.Context, at time.Time) (Summary, error) {
	log := logging.From(ctx)
	if log == slog.Default() {
		log = s.log
	}
	sum := Summary{CheckedAt: at.UTC().Truncate(tickInterval)}
	at = sum.CheckedAt
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return sum, fmt.Errorf("health-probe: acquire a connection: %w", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil {
		conn.Release()
		return sum, fmt.Errorf("health-probe: advisory lock: %w", err)
	}
	if !locked {
		conn.Release()
		sum.Skipped = true
		log.Info("sweep skipped: the previous sweep is still running", slog.Time("checked_at", at))
		return sum, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
			// Ending the session releases the lock.
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}()

	started := time.Now()
	targets, err := loadTargets(ctx, conn, at)
	if err != nil {
		return sum, err
	}
	results := make([]Result, len(targets))
	idx := make([]int, len(targets))
	for i := range idx {
		idx[i] = i
	}
	skipped := fanout.Run(ctx, idx, func(i int) string { return targets[i].Host },
		fanout.Limits{Concurrency: s.cfg.Concurrency, PerKey: s.cfg.PerHost},
		func(ctx context.Context, i int) { results[i] = s.prober.Probe(ctx, targets[i].BaseURL) })
	if skipped > 0 || ctx.Err() != nil {
		return sum, fmt.Errorf("health-probe: sweep of %s cut short (%d not probed): %w", at.Format(time.RFC3339), skipped, context.Cause(ctx))
	}
	probed := time.Since(started)

	sum.Probed = len(targets)
	for _, r := range results {
		switch r.Status {
		case events.HealthHealthy:
			sum.Healthy++
		case events.HealthDegraded:
			sum.Degraded++
		default:
			sum.Offline++
		}
	}
	if sum.Transitions, err = record(ctx, conn, at, targets, results); err != nil {
		return sum, err
	}
	if sum.Pruned, err = prune(ctx, conn, at, s.cfg.CheckRetention); err != nil {
		// The checks are recorded; pruning resumes with the next sweep.
		log.Warn("prune failed", slog.Any("error", err))
	}
	log.Info("sweep done", slog.Time("checked_at", at), slog.Int("probed", sum.Probed),
		slog.Int("healthy", sum.Healthy), slog.Int("degraded", sum.Degraded), slog.Int("offline", sum.Offline),
		slog.Int("transitions", sum.Transitions), slog.Int64("pruned", sum.Pruned),
		slog.Duration("probe_time", probed), slog.Duration("total_time", time.Since(started)))
	return sum, nil
}

// hostKey is the fairness key of a base URL: its host name, lower case.
func hostKey(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}
