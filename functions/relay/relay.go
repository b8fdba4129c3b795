package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/shared/inbox"
)

const (
	// confirmEvery is how often the loop looks at the confirmed position (and the shortest
	// time between two status updates that only move it).
	confirmEvery = 100 * time.Millisecond
	backoffMin   = 100 * time.Millisecond
	cleanupBatch = 5000
	// standbyRetry is how often a standby tries to take the slot: the takeover gap after the
	// holder exits is at most this plus one connection.
	standbyRetry = time.Second
)

// errSlotActive is a session's error when another process streams from the slot (PostgreSQL
// error 55006, or an active_pid in pg_replication_slots): this relay is a standby.
var errSlotActive = errors.New("replication slot is active in another process")

// Deps are the relay's collaborators.
type Deps struct {
	Logger   *slog.Logger          // nil discards
	Registry prometheus.Registerer // nil: metrics are kept but not registered
	Now      func() time.Time      // nil: time.Now
	// KafkaOpts are extra franz-go client options, applied last (tests use a dialer).
	KafkaOpts []kgo.Opt

	// onAck, when set, is called for every acknowledged event with its commit time (benchmarks).
	onAck func(commit, acked time.Time)
}

// Relay streams outbox inserts from PostgreSQL logical replication to Kafka. See the package
// documentation for the guarantees.
type Relay struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	m       metrics
	kauth   []kgo.Opt // SASL and TLS (kafkaAuthOpts)
	kopts   []kgo.Opt
	kfail   connFailures // failed Kafka connection attempts, for the log
	onAck   func(commit, acked time.Time)
	replCfg *pgconn.Config
	sqlCfg  *pgx.ConnConfig

	streaming atomic.Bool
	tr        atomic.Pointer[tracker] // the current session's
	// standbyAt is when the latest attempt found the slot held by another process (Unix
	// nanoseconds of r.now()), 0 when the latest attempt did not.
	standbyAt atomic.Int64
}

// New checks cfg and builds a relay. Nothing is connected until Run.
func New(cfg Config, d Deps) (*Relay, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sqlCfg, err := pgx.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, errors.New("DATABASE_URL: not a valid PostgreSQL connection string")
	}
	sqlCfg.RuntimeParams["application_name"] = "connect-relay"
	replCfg := sqlCfg.Config.Copy()
	replCfg.RuntimeParams["replication"] = "database"
	// pgoutput sends values as text in the session's settings: make timestamps unambiguous.
	replCfg.RuntimeParams["TimeZone"] = "UTC"
	replCfg.RuntimeParams["DateStyle"] = "ISO"
	kauth, err := cfg.kafkaAuthOpts()
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, log: d.Logger, now: d.Now, kauth: kauth, kopts: d.KafkaOpts, onAck: d.onAck, replCfg: replCfg, sqlCfg: sqlCfg}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.m = newMetrics(r)
	if d.Registry != nil {
		if err := r.m.register(d.Registry); err != nil {
			return nil, fmt.Errorf("relay: metrics: %w", err)
		}
	}
	return r, nil
}

// Run relays until ctx is done, reconnecting after every failure. On shutdown it waits up to
// Config.DrainTimeout for Kafka to acknowledge what is in flight and confirms it. It returns
// nil when ctx ends; the error of a Kafka client that cannot be built otherwise.
func (r *Relay) Run(ctx context.Context) error {
	probe, err := kgo.NewClient(r.kafkaOpts()...) // checks the options; connects lazily
	if err != nil {
		return fmt.Errorf("relay: kafka client: %w", err)
	}
	probe.Close()
	mctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.maintain(mctx) })
	defer func() { stop(); wg.Wait() }()

	backoff := backoffMin
	for {
		started := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errSlotActive) {
			// Not a failure: another process (the old revision during a rollout) holds the slot.
			// Stay ready and try again soon, so the takeover follows its exit closely.
			if r.standbyAt.Swap(r.now().UnixNano()) == 0 {
				r.log.Info("replication slot held by another process; standing by", slog.String("slot", r.cfg.Slot),
					slog.String("reason", err.Error()), slog.Duration("retry", standbyRetry))
			}
			backoff = backoffMin
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(standbyRetry):
			}
			continue
		}
		r.standbyAt.Store(0)
		r.m.reconnects.WithLabelValues("postgres").Inc()
		if time.Since(started) > r.cfg.BackoffMax {
			backoff = backoffMin // it ran for a while: this is a new failure, not a loop
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		r.log.Warn("relay session ended; reconnecting", slog.Any("error", err), slog.Duration("backoff", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, r.cfg.BackoffMax)
	}
}

// Ready fails while the relay is stalled (for /readyz). A standby is not stalled: see the
// package documentation, "Rolling upgrades".
func (r *Relay) Ready(context.Context) error {
	if reason := r.stalledReason(); reason != "" {
		return errors.New("relay stalled: " + reason)
	}
	return nil
}

func (r *Relay) kafkaOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.KafkaBrokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotent writes, franz-go's default
		kgo.WithHooks(kafkaHooks{r}),
		kgo.ProducerLinger(time.Millisecond),
	}
	opts = append(opts, r.kauth...)
	return append(opts, r.kopts...)
}

// session is one replication connection and one Kafka client, from the slot's confirmed
// position until an error or ctx ends. It returns an error wrapping errSlotActive, having
// produced nothing, when another process holds the slot.
func (r *Relay) session(ctx context.Context) error {
	sql, err := pgx.ConnectConfig(ctx, r.sqlCfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	sqlOpen := true
	closeSQL := func() {
		if sqlOpen {
			sqlOpen = false
			sql.Close(context.WithoutCancel(ctx))
		}
	}
	defer closeSQL()
	// Kafka is checked before the slot is taken, and by a standby too: a relay that cannot
	// produce (wrong credentials, an untrusted certificate) is not ready, so a rollout that
	// brings one keeps the old revision streaming.
	slotErr := r.prepare(ctx, sql)
	if slotErr != nil && !errors.Is(slotErr, errSlotActive) {
		return slotErr
	}
	if err := r.pingKafka(ctx); err != nil {
		return err
	}
	if slotErr != nil {
		return slotErr // a standby
	}
	conn, err := pgconn.ConnectConfig(ctx, r.replCfg)
	if err != nil {
		return fmt.Errorf("replication connection: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx) // ends the walsender, which releases the slot
	}()
	err = pglogrepl.StartReplication(ctx, conn, r.cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + r.cfg.Publication + "'"},
	})
	if isCode(err, "55006") {
		return fmt.Errorf("%w: %w", errSlotActive, err)
	}
	if err != nil {
		return fmt.Errorf("start replication on slot %s: %w", r.cfg.Slot, err)
	}
	// The slot is ours now, so its confirmed position is where the server streams from (read
	// before START_REPLICATION it could be older: the previous holder may confirm more on
	// its way out).
	start, err := r.confirmedFlush(ctx, sql)
	if err != nil {
		return err
	}
	closeSQL()
	kc, err := kgo.NewClient(r.kafkaOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer kc.Close() // fails what is still buffered; the slot replays it next session

	tr := newTracker(start)
	r.tr.Store(tr)
	r.streaming.Store(true)
	defer r.streaming.Store(false)
	if r.standbyAt.Swap(0) != 0 {
		r.log.Info("took over the replication slot", slog.String("slot", r.cfg.Slot), slog.String("from", start.String()))
	} else {
		r.log.Info("relay streaming", slog.String("slot", r.cfg.Slot), slog.String("from", start.String()))
	}
	s := &stream{r: r, conn: conn, kc: kc, tr: tr, rels: map[uint32]*relation{}, dec: newDecoder(), received: start}
	return s.run(ctx)
}

// prepare creates the publication and the slot when missing and checks the slot: a pgoutput
// slot of this database, not held by another process (errSlotActive).
func (r *Relay) prepare(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, r.cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("look up publication: %w", err)
	}
	if !exists {
		// The name passed validate (a plain identifier), so it can be spliced in.
		_, err := conn.Exec(ctx, `CREATE PUBLICATION `+r.cfg.Publication+` FOR TABLE outbox WITH (publish = 'insert')`)
		if err != nil && !isCode(err, "42710") {
			return fmt.Errorf("RELAY_PUBLICATION %s: create: %w", r.cfg.Publication, err)
		}
		r.log.Info("created publication", slog.String("publication", r.cfg.Publication))
	}
	var plugin, database string
	var activePID *int32
	slotQuery := `SELECT coalesce(plugin, ''), coalesce(database, ''), active_pid FROM pg_replication_slots WHERE slot_name = $1`
	err := conn.QueryRow(ctx, slotQuery, r.cfg.Slot).Scan(&plugin, &database, &activePID)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = conn.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, r.cfg.Slot)
		if err != nil && !isCode(err, "42710") {
			return fmt.Errorf("RELAY_SLOT %s: create: %w", r.cfg.Slot, err)
		}
		r.log.Info("created replication slot", slog.String("slot", r.cfg.Slot))
		err = conn.QueryRow(ctx, slotQuery, r.cfg.Slot).Scan(&plugin, &database, &activePID)
	}
	if err != nil {
		return fmt.Errorf("RELAY_SLOT %s: look up: %w", r.cfg.Slot, err)
	}
	if plugin != "pgoutput" {
		return fmt.Errorf("RELAY_SLOT %s: slot uses plugin %q, the relay needs a pgoutput slot", r.cfg.Slot, plugin)
	}
	if database != conn.Config().Database {
		return fmt.Errorf("RELAY_SLOT %s: slot belongs to database %q, not %q", r.cfg.Slot, database, conn.Config().Database)
	}
	if activePID != nil {
		// Checked here to spare a replication connection per retry; START_REPLICATION's
		// 55006 covers the race.
		return fmt.Errorf("%w: slot %s is active for PID %d", errSlotActive, r.cfg.Slot, *activePID)
	}
	return nil
}

// confirmedFlush is the slot's confirmed position.
func (r *Relay) confirmedFlush(ctx context.Context, conn *pgx.Conn) (pglogrepl.LSN, error) {
	var confirmed string
	err := conn.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots WHERE slot_name = $1`,
		r.cfg.Slot).Scan(&confirmed)
	if err != nil {
		return 0, fmt.Errorf("RELAY_SLOT %s: look up: %w", r.cfg.Slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(confirmed)
	if err != nil {
		return 0, fmt.Errorf("RELAY_SLOT %s: confirmed_flush_lsn %q: %w", r.cfg.Slot, confirmed, err)
	}
	return lsn, nil
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// standby reports whether the latest attempt found the slot held by another process.
func (r *Relay) standby() bool { return r.standbyAt.Load() != 0 }

// stalledReason is why the relay is stalled, or "". A standby is not stalled as long as it
// keeps reaching the database: its latest attempt, which found the slot held, is recent.
func (r *Relay) stalledReason() string {
	if !r.streaming.Load() {
		at := r.standbyAt.Load()
		if at == 0 {
			return "no replication stream"
		}
		if d := r.now().Sub(time.Unix(0, at)); d > r.cfg.StallAfter {
			return fmt.Sprintf("standby: the slot was last checked %s ago", d.Round(time.Second))
		}
		return ""
	}
	tr := r.tr.Load()
	if tr == nil {
		return ""
	}
	st := tr.state()
	if st.err != nil {
		return "kafka produce failed: " + st.err.Error()
	}
	if st.inFlight > 0 {
		last := st.lastAck
		if st.waitingSince.After(last) {
			last = st.waitingSince
		}
		if d := r.now().Sub(last); d > r.cfg.StallAfter {
			return fmt.Sprintf("%d records without a Kafka acknowledgement for %s", st.inFlight, d.Round(time.Second))
		}
	}
	return ""
}

// lag is now minus the commit time of the oldest transaction not yet confirmed, 0 if none.
func (r *Relay) lag() float64 {
	tr := r.tr.Load()
	if tr == nil {
		return 0
	}
	st := tr.state()
	if st.oldestCommit.IsZero() {
		return 0
	}
	return max(0, r.now().Sub(st.oldestCommit).Seconds())
}

// maintain measures the retained WAL, deletes old outbox rows and prunes inbox claims older
// than InboxRetention (the relay is the one long-running function, so it runs the inbox's
// retention for every consumer) every MaintainInterval.
func (r *Relay) maintain(ctx context.Context) {
	cfg, err := pgxpool.ParseConfig(r.cfg.DatabaseURL)
	if err != nil {
		return // validate checked it
	}
	cfg.MaxConns = 1
	cfg.ConnConfig.RuntimeParams["application_name"] = "connect-relay-maintenance"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		r.log.Error("maintenance pool", slog.Any("error", err))
		return
	}
	defer pool.Close()
	t := time.NewTicker(r.cfg.MaintainInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.measureWAL(ctx, pool); err != nil && ctx.Err() == nil {
			r.log.Warn("measure retained WAL", slog.Any("error", err))
		}
		if err := r.cleanup(ctx, pool); err != nil && ctx.Err() == nil {
			r.log.Warn("outbox cleanup", slog.Any("error", err))
		}
		if r.cfg.InboxRetention > 0 {
			if n, err := inbox.Prune(ctx, pool, r.now().Add(-r.cfg.InboxRetention)); err != nil && ctx.Err() == nil {
				r.log.Warn("inbox prune", slog.Any("error", err))
			} else if n > 0 {
				r.log.Debug("inbox claims pruned", slog.Int64("rows", n))
			}
		}
	}
}

func (r *Relay) measureWAL(ctx context.Context, pool *pgxpool.Pool) error {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var bytes int64
	err := pool.QueryRow(qctx, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, r.cfg.Slot).Scan(&bytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	r.m.retained.Set(float64(bytes))
	return nil
}

// cleanup deletes outbox rows older than the retention and than the last confirmed commit.
func (r *Relay) cleanup(ctx context.Context, pool *pgxpool.Pool) error {
	tr := r.tr.Load()
	if r.cfg.Retention == 0 || tr == nil {
		return nil
	}
	cutoff := r.now().Add(-r.cfg.Retention)
	st := tr.state()
	if st.confCommit.IsZero() {
		return nil // nothing confirmed yet in this session: keep everything
	}
	if st.confCommit.Before(cutoff) {
		cutoff = st.confCommit
	}
	for ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		tag, err := pool.Exec(qctx, `DELETE FROM outbox WHERE id IN
			(SELECT id FROM outbox WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, cutoff, cleanupBatch)
		cancel()
		if err != nil {
			return err
		}
		if tag.RowsAffected() > 0 {
			r.log.Debug("outbox rows deleted", slog.Int64("rows", tag.RowsAffected()))
		}
		if tag.RowsAffected() < cleanupBatch {
			return nil
		}
	}
	return nil
}

// kafkaHooks counts and logs failed broker connection attempts, TLS and SASL included
// (franz-go retries them by itself).
type kafkaHooks struct{ r *Relay }

func (h kafkaHooks) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.r.m.reconnects.WithLabelValues("kafka").Inc()
		h.r.kfail.log(h.r.log, h.r.now(), meta, err)
	}
}
