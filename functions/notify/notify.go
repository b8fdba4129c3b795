package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/eventschema"
	"github.com/myscrollr/connect/events/webhook"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/inbox"
	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/outbox"
	"github.com/myscrollr/connect/shared/ssrf"
)

// Name is the function's name: its consumer name in processed_events, its CloudEvent source,
// the job of its PingSource tick, its database role.
const Name = "notify"

// PingType is the CloudEvent type of a PingSource tick.
const PingType = "dev.knative.sources.ping"

// eventIDSpace is the namespace of the name-based lifecycle event ids (source + id + type of
// the platform event), so a redelivered platform event makes the same lifecycle event.
var eventIDSpace = uuid.MustParse("5f0b7a4e-2d1c-4e8b-9a6f-3c2d1e0f9b8a")

// Schedule is the wait after each failed attempt: attempt n+1 is due Schedule[n-1] (times a
// jitter factor in [1-Jitter, 1+Jitter)) after attempt n starts. len(Schedule)+1 attempts in
// all; see the package doc.
var Schedule = []time.Duration{
	30 * time.Second,
	80 * time.Second,
	210 * time.Second,
	9 * time.Minute,
	23 * time.Minute,
	time.Hour,
	150 * time.Minute,
}

// MaxAttempts is how many attempts a delivery gets before it fails and is dead-lettered.
var MaxAttempts = len(Schedule) + 1

// Jitter is the spread of each wait, ±20 %.
const Jitter = 0.2

// leaseMargin is added to the attempt timeout to make the lease: a worker holds a claimed
// delivery that long, then it is up for grabs again (the worker died).
const leaseMargin = 30 * time.Second

// Service consumes platform events into lifecycle events and delivers them.
type Service struct {
	pool    *pgxpool.Pool
	cfg     Config
	client  *ssrf.Client
	log     *slog.Logger
	now     func() time.Time
	random  func() float64 // [0, 1): the jitter
	keySet  []byte         // the published key set, JSON
	signers []webhook.PrivateKey

	// First attempts run after the event is answered (firstAttempt), at most cap(slots) at a
	// time; bg tracks them so Close waits for them. syncFirst makes them inline (tests that
	// count deliveries right after HandleEvent).
	slots     chan struct{}
	bg        sync.WaitGroup
	syncFirst bool
	stopBg    context.CancelFunc // cancels WakeAtStart's wake-up (Close)
}

// New returns a Service. now is the clock of every due time, lease and signature timestamp
// (nil: time.Now); random draws the jitter in [0, 1) (nil: math/rand/v2).
func New(pool *pgxpool.Pool, cfg Config, log *slog.Logger, now func() time.Time, random func() float64) (*Service, error) {
	if pool == nil {
		return nil, errors.New("notify: a database pool is required")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client, err := ssrf.NewClient(ssrf.Config{
		Allow:                 cfg.Allow,
		DialTimeout:           min(ssrf.DefaultDialTimeout, cfg.Timeout),
		TLSHandshakeTimeout:   min(ssrf.DefaultTLSHandshakeTimeout, cfg.Timeout),
		ResponseHeaderTimeout: cfg.Timeout,
		Timeout:               cfg.Timeout,
		MaxHeaderBytes:        16 << 10,
		MaxBodyBytes:          maxAnswerBytes,
		MaxRedirects:          -1, // a 3xx is a failed attempt (Standard Webhooks)
	})
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	ks, err := json.Marshal(webhook.NewKeySet(cfg.SigningKeys, cfg.RetiredKeys))
	if err != nil {
		return nil, fmt.Errorf("notify: key set: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	if random == nil {
		random = rand.Float64
	}
	return &Service{pool: pool, cfg: cfg, client: client, log: log, now: now, random: random,
		keySet: ks, signers: cfg.SigningKeys, slots: make(chan struct{}, max(1, cfg.Concurrency))}, nil
}

// Close stops the start-up wake-up, waits for the first attempts still running (each bounded
// by DELIVERY_TIMEOUT) and releases idle connections.
func (s *Service) Close() {
	if s.stopBg != nil {
		s.stopBg()
	}
	s.bg.Wait()
	s.client.CloseIdleConnections()
}

// WakeAtStart makes the due attempts once, in the background, when the function starts: a
// notify that crashed (or scaled to zero) between committing a delivery and attempting it
// resumes at once instead of at the next PingSource tick. Attempts another replica holds are
// left to their lease, as in any wake-up.
func (s *Service) WakeAtStart() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopBg = cancel
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if _, err := s.Wake(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("start-up wake-up failed; the next tick retries", slog.Any("error", err))
		}
	}()
}

// firstAttempt makes the first attempt of deliveries just committed. It runs after the event
// is answered, so the Broker's next event of the partition (ordered Triggers deliver one at a
// time) does not wait for an integration's answer; when every slot is busy it runs inline,
// which slows the Broker down instead of piling up goroutines. The attempt is only a head
// start: the rows are pending and due, so a crash before or during it leaves them to the next
// wake-up (its lease makes a half-made attempt safe to repeat).
func (s *Service) firstAttempt(ctx context.Context, due []string) {
	log := s.logger(ctx)
	run := func(ctx context.Context) {
		if _, err := s.deliver(ctx, due); err != nil {
			log.Warn("first attempt not made; the next wake-up makes it", slog.Any("error", err))
		}
	}
	if s.syncFirst {
		run(ctx)
		return
	}
	select {
	case s.slots <- struct{}{}:
		s.bg.Add(1)
		go func() {
			defer func() { <-s.slots; s.bg.Done() }()
			run(context.WithoutCancel(ctx))
		}()
	default:
		run(ctx)
	}
}

func (s *Service) logger(ctx context.Context) *slog.Logger {
	if l := logging.From(ctx); l != slog.Default() {
		return l
	}
	return s.log
}

// tick is the data of a PingSource tick.
type tick struct {
	Job string `json:"job"`
}

// HandleEvent is the runtime.EventHandler: install.completed and install.revoked become
// lifecycle events; a PingSource tick for this job wakes the due deliveries.
func (s *Service) HandleEvent(ctx context.Context, e event.Event) error {
	switch e.Type() {
	case events.TypeInstallCompleted, events.TypeInstallRevoked:
		return s.consume(ctx, e)
	case PingType:
		var t tick
		if err := json.Unmarshal(e.Data(), &t); err != nil {
			return events.Permanent(fmt.Errorf("notify: data of %s: not a JSON object with \"job\"", e.Type()))
		}
		if t.Job != Name {
			return events.Permanent(fmt.Errorf("notify: data of %s: field \"job\": %q is not %q", e.Type(), clip.Ellipsis(t.Job, 64), Name))
		}
		_, err := s.Wake(ctx)
		return err
	}
	return events.Permanent(fmt.Errorf("notify: event type %q is not handled here", e.Type()))
}

// Bounds on what an event may carry (processed_events key, install ids).
const (
	maxIDBytes     = 256
	maxSourceBytes = 1024
	maxInstallID   = 128
)

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

// lifecycle is one lifecycle event to record.
type lifecycle struct {
	typ       string
	installID string
	data      any
}

// decode checks a platform event and returns its integration id and the lifecycle events it
// makes. An event that could never be processed is events.Permanent (400, dead letter).
func decode(e event.Event) (string, []lifecycle, error) {
	for _, a := range []struct {
		name, value string
		max         int
	}{{"id", e.ID(), maxIDBytes}, {"source", e.Source(), maxSourceBytes}} {
		if reason := badText(a.value, a.max); reason != "" {
			return "", nil, events.Permanent(fmt.Errorf("notify: %s event: attribute %q: %s", e.Type(), a.name, reason))
		}
	}
	if !utf8.Valid(e.Data()) {
		return "", nil, events.Permanent(fmt.Errorf("notify: data of %s: not valid UTF-8", e.Type()))
	}
	if err := eventschema.Validate(e.Type(), e.Data()); err != nil {
		var se *eventschema.Error
		if errors.As(err, &se) {
			return "", nil, events.Permanent(fmt.Errorf("notify: %w", err))
		}
		return "", nil, fmt.Errorf("notify: validate %s: %w", e.Type(), err)
	}
	switch e.Type() {
	case events.TypeInstallCompleted:
		var d events.InstallCompleted
		if err := json.Unmarshal(e.Data(), &d); err != nil {
			return "", nil, events.Permanent(fmt.Errorf("notify: data of %s: %w", e.Type(), err))
		}
		if reason := badText(d.InstallID, maxInstallID); reason != "" {
			return "", nil, events.Permanent(fmt.Errorf("notify: data of %s: field \"install_id\": %s", e.Type(), reason))
		}
		return d.IntegrationID, []lifecycle{{events.TypeLifecycleInstall, d.InstallID, events.LifecycleInstall{
			InstallID: d.InstallID, Integration: d.Name, UserID: d.UserID, Scopes: d.Scopes, Sandbox: d.Sandbox,
			TokensExpireAt: d.TokensExpireAt, InstalledAt: d.InstalledAt}}}, nil
	default: // TypeInstallRevoked
		var d events.InstallRevoked
		if err := json.Unmarshal(e.Data(), &d); err != nil {
			return "", nil, events.Permanent(fmt.Errorf("notify: data of %s: %w", e.Type(), err))
		}
		if reason := badText(d.InstallID, maxInstallID); reason != "" {
			return "", nil, events.Permanent(fmt.Errorf("notify: data of %s: field \"install_id\": %s", e.Type(), reason))
		}
		out := []lifecycle{{events.TypeLifecycleUninstall, d.InstallID, events.LifecycleUninstall{
			InstallID: d.InstallID, Integration: d.Name, UserID: d.UserID, Reason: d.Reason, Sandbox: d.Sandbox,
			RevokedAt: d.RevokedAt}}}
		if d.Reason == events.RevokeUserDeleted {
			out = append(out, lifecycle{events.TypeLifecycleRedact, d.InstallID, events.LifecycleRedact{
				InstallID: d.InstallID, Integration: d.Name, UserID: d.UserID, Sandbox: d.Sandbox, RequestedAt: d.RevokedAt}})
		}
		return d.IntegrationID, out, nil
	}
}

// LifecycleID is the id of the lifecycle event of type typ made from the platform event
// (source, id): name-based, so a redelivery makes the same id.
func LifecycleID(source, id, typ string) string {
	return uuid.NewSHA1(eventIDSpace, []byte(source+"\n"+id+"\n"+typ)).String()
}

// target is an integration as delivery needs it.
type target struct {
	ID, Name, Type, BaseURL string
	Lifecycle               *string // manifest app.lifecycle
}

// httpDelivery reports whether the integration takes lifecycle events over HTTP: apps whose
// manifest says app.lifecycle "http" or says nothing (the manifest's default). Data sources
// and widgets declare no lifecycle endpoint: they get the lifecycle topic and the catch-up
// route only (see the package doc).
func (t target) httpDelivery() bool {
	return t.Type == manifest.TypeApp && (t.Lifecycle == nil || *t.Lifecycle == "" || *t.Lifecycle == manifest.LifecycleHTTP)
}

// consume turns one platform event into its lifecycle events, in one transaction with the
// claim of the event, then attempts their HTTP deliveries at once.
func (s *Service) consume(ctx context.Context, e event.Event) error {
	integrationID, lcs, err := decode(e)
	if err != nil {
		return err
	}
	log := s.logger(ctx).With(slog.String("event_id", e.ID()), slog.String("type", e.Type()))
	var due []string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		due = due[:0]
		claimed, err := inbox.Claim(ctx, tx, Name, e.Source(), e.ID())
		if err != nil || !claimed {
			return err
		}
		var t target
		err = tx.QueryRow(ctx, `SELECT id::text, name, type, base_url, manifest->'app'->>'lifecycle'
			FROM integrations WHERE id = $1`, integrationID).Scan(&t.ID, &t.Name, &t.Type, &t.BaseURL, &t.Lifecycle)
		if errors.Is(err, pgx.ErrNoRows) {
			log.Info("integration gone: no lifecycle event", slog.String("integration_id", integrationID))
			return nil
		}
		if err != nil {
			return fmt.Errorf("notify: integration %s: %w", integrationID, err)
		}
		var disabled bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM lifecycle_endpoints_disabled WHERE integration_id = $1)`,
			t.ID).Scan(&disabled); err != nil {
			return fmt.Errorf("notify: endpoint of %s: %w", t.Name, err)
		}
		now := s.now().UTC()
		for _, lc := range lcs {
			id := LifecycleID(e.Source(), e.ID(), lc.typ)
			ce, err := outbox.New(events.Source(Name), lc.typ, lc.data)
			if err != nil {
				return err
			}
			ce.SetID(id)
			ce.SetTime(now)
			ce.SetSubject(lc.installID)
			body, err := json.Marshal(ce)
			if err != nil {
				return fmt.Errorf("notify: encode %s: %w", lc.typ, err)
			}
			tag, err := tx.Exec(ctx, `INSERT INTO lifecycle_events (id, integration_id, type, install_id, body, created_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, id, t.ID, lc.typ, lc.installID, string(body), now)
			if err != nil {
				return fmt.Errorf("notify: record %s: %w", lc.typ, err)
			}
			if tag.RowsAffected() == 0 {
				continue // made before (the claim was pruned since): nothing twice
			}
			if _, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: lc.installID,
				Topic: events.LifecycleTopic(t.Name), CloudEvent: ce}); err != nil {
				return err
			}
			if !t.httpDelivery() {
				continue
			}
			if disabled {
				_, err = tx.Exec(ctx, `INSERT INTO lifecycle_deliveries (event_id, integration_id, status, created_at, updated_at)
					VALUES ($1, $2, 'disabled', $3, $3)`, id, t.ID, now)
			} else {
				_, err = tx.Exec(ctx, `INSERT INTO lifecycle_deliveries (event_id, integration_id, status, next_attempt_at, created_at, updated_at)
					VALUES ($1, $2, 'pending', $3, $3, $3)`, id, t.ID, now)
				due = append(due, id)
			}
			if err != nil {
				return fmt.Errorf("notify: delivery of %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(due) > 0 {
		// Committed: the attempt is a bonus for latency; the schedule owns it from here.
		s.firstAttempt(ctx, due)
	}
	return nil
}

// delay is the wait after attempt n (1-based) failed, with jitter.
func (s *Service) delay(n int) time.Duration {
	d := Schedule[min(max(n, 1), len(Schedule))-1]
	f := 1 - Jitter + 2*Jitter*s.random()
	return time.Duration(float64(d) * f).Round(time.Millisecond)
}
