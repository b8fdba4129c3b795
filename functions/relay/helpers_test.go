package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main() // the crash test runs this binary as the relay process
		return
	}
	code := pgtest.Main(m)
	if code == 0 {
		// Every relay, Kafka client and cluster a test started must be gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// childEnv makes the test binary run the relay's main instead of the tests.
const childEnv = "RELAY_TEST_CHILD"

// testTopics are the topics the fake Kafka cluster starts with.
var testTopics = []string{"connect.events", "connect.events.dlq", "integrations.demo.lifecycle"}

// bundle is what a relay test works with: a fresh database, a slot name of its own and an
// in-process Kafka cluster on 127.0.0.1.
type bundle struct {
	url     string
	pool    *pgxpool.Pool
	slot    string
	kafka   *kfake.Cluster
	brokers []string
}

func newBundle(t testing.TB, kopts ...kfake.Opt) *bundle {
	t.Helper()
	b := &bundle{url: pgtest.URL(t)}
	var rnd [4]byte
	rand.Read(rnd[:])
	b.slot = "relay_test_" + hex.EncodeToString(rnd[:])
	// Registered before the relay's cleanup, so it runs after the relay stopped; slots must
	// go before the database can be dropped.
	t.Cleanup(func() { dropSlot(t, b.url, b.slot) })
	pool, err := db.Open(context.Background(), b.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b.pool = pool
	opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, testTopics...)}, kopts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b.kafka = c
	b.brokers = c.ListenAddrs()
	return b
}

// config is a relay configuration for b with short intervals.
func (b *bundle) config() Config {
	c := DefaultConfig()
	c.DatabaseURL = b.url
	c.KafkaBrokers = b.brokers
	c.Slot = b.slot
	c.Publication = "connect_outbox"
	c.StatusInterval = time.Second
	c.StallAfter = 2 * time.Second
	c.BackoffMax = time.Second
	c.MaintainInterval = 200 * time.Millisecond
	c.DrainTimeout = 5 * time.Second
	return c
}

func dropSlot(t testing.TB, url, slot string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
			conn.Close(ctx)
		}
		if err == nil {
			return
		}
		// 55006: the slot is still active (a walsender has not noticed its client went away).
		if !isCode(err, "55006") && !isCode(err, "57P03") || ctx.Err() != nil {
			t.Errorf("drop slot %s: %v", slot, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testLogger writes to the test log only with -v (through t.Log would race after the end).
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startRelay runs a relay for cfg until the test ends.
func startRelay(t testing.TB, cfg Config, d Deps) (*Relay, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if d.Registry == nil {
		d.Registry = reg
	}
	if d.Logger == nil {
		d.Logger = testLogger(t)
	}
	r, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "relay ready", func() bool { return r.Ready(ctx) == nil })
	return r, reg
}

// waitFor polls cond until it holds; it fails the test after a generous minute (a hang, not
// a speed check).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// collector consumes topics from the start in the background and keeps every record.
type collector struct {
	mu   sync.Mutex
	recs []*kgo.Record
	ids  map[string]int // CloudEvent id -> times seen
	stop func()
}

func collect(t testing.TB, brokers []string, topics ...string) *collector {
	t.Helper()
	return collectWith(t, nil, brokers, topics...)
}

// collectWith is collect with extra client options (credentials, TLS).
func collectWith(t testing.TB, opts []kgo.Opt, brokers []string, topics ...string) *collector {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{ids: map[string]int{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				c.mu.Lock()
				c.recs = append(c.recs, r)
				for _, h := range r.Headers {
					if h.Key == "ce_id" {
						c.ids[string(h.Value)]++
					}
				}
				c.mu.Unlock()
			})
		}
	})
	c.stop = func() { cancel(); wg.Wait(); cl.Close() }
	t.Cleanup(c.stop)
	return c
}

func (c *collector) has(ids ...string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.ids[id] == 0 {
			return false
		}
	}
	return true
}

func (c *collector) records() []*kgo.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*kgo.Record(nil), c.recs...)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

var errRollback = errors.New("roll back on purpose")

// setupSlot creates the publication and the slot of r's configuration, as a relay's first
// session does, and returns the slot's confirmed position.
func (r *Relay) setupSlot(ctx context.Context) (pglogrepl.LSN, error) {
	conn, err := pgx.ConnectConfig(ctx, r.sqlCfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	if err := r.prepare(ctx, conn); err != nil {
		return 0, err
	}
	return r.confirmedFlush(ctx, conn)
}
