package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/shared/outbox"
)

// seqEvent is the data of the crash test's events.
type seqEvent struct {
	Agg string `json:"agg"`
	Seq int    `json:"seq"`
}

// child is the relay running as a separate process: this test binary re-executed with
// childEnv set, which runs main().
type child struct {
	t    *testing.T
	env  []string
	log  *os.File
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT, where /readyz and /metrics are served
}

// newChild prepares a relay process for cfg; env (KEY=value) overrides the defaults.
func newChild(t *testing.T, cfg Config, env ...string) *child {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logf, err := os.Create(filepath.Join(t.TempDir(), "relay.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	defaults := []string{
		childEnv + "=1",
		"DATABASE_URL=" + cfg.DatabaseURL,
		"KAFKA_BROKERS=" + strings.Join(cfg.KafkaBrokers, ","),
		"RELAY_SLOT=" + cfg.Slot,
		"RELAY_PUBLICATION=" + cfg.Publication,
		"RELAY_STATUS_INTERVAL=1s",
		"RELAY_BACKOFF_MAX=1s",
		"PORT=" + strconv.Itoa(port),
		"LISTEN_HOST=127.0.0.1",
		"LOG_LEVEL=warn",
		"DRAIN_TIMEOUT=0s",
		// Under -race a process sleeps 1s at exit by default; its exit time should be the
		// relay's.
		"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	}
	// exec.Cmd uses the last value of a duplicated key: env wins.
	return &child{t: t, log: logf, base: "http://127.0.0.1:" + strconv.Itoa(port),
		env: slices.Concat(os.Environ(), defaults, env)}
}

func (c *child) start() {
	c.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = c.log, c.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmd = cmd
}

func (c *child) kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
	c.cmd = nil
}

// term sends SIGTERM, as Kubernetes does, and waits for the process to exit; it fails the
// test unless the exit is clean.
func (c *child) term() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	err := c.cmd.Wait()
	c.cmd = nil
	if err != nil {
		c.t.Fatalf("relay process after SIGTERM: %v", err)
	}
}

// writers commit outbox events of seqEvent data from several goroutines, each in
// transactions of 1 to 5 events over its own aggregates, and remember what committed.
type writers struct {
	mu        sync.Mutex
	committed map[string]seqEvent
	written   atomic.Int64
	wg        sync.WaitGroup
	errs      chan error
	stop      chan struct{}
	stopOnce  sync.Once
}

// startWriters starts n writers over aggregates aggregates each; each stops after perWriter
// events, or when stop is called if perWriter is 0.
func startWriters(t *testing.T, b *bundle, n, perWriter, aggregates int) *writers {
	w := &writers{committed: map[string]seqEvent{}, errs: make(chan error, n), stop: make(chan struct{})}
	ctx := context.Background()
	for i := range n {
		w.wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			seq := make([]int, aggregates)
			for done := 0; perWriter == 0 || done < perWriter; {
				select {
				case <-w.stop:
					return
				default:
				}
				k := 1 + rng.IntN(5)
				if perWriter > 0 {
					k = min(k, perWriter-done)
				}
				batch := make(map[string]seqEvent, k)
				next := append([]int(nil), seq...)
				err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
					for range k {
						a := rng.IntN(aggregates)
						next[a]++
						ev := seqEvent{Agg: fmt.Sprintf("agg-%d-%d", i, a), Seq: next[a]}
						ce, err := outbox.New("/test/crash", "com.myscrollr.connect.test.seq", ev)
						if err != nil {
							return err
						}
						id, err := outbox.Write(ctx, tx, outbox.Event{AggregateType: "test", AggregateID: ev.Agg, CloudEvent: ce})
						if err != nil {
							return err
						}
						batch[id] = ev
					}
					return nil
				})
				if err != nil {
					w.errs <- err
					return
				}
				seq = next
				done += k
				w.written.Add(int64(k))
				w.mu.Lock()
				for id, ev := range batch {
					w.committed[id] = ev
				}
				w.mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { w.stopOnce.Do(func() { close(w.stop) }); w.wg.Wait() })
	return w
}

// finish stops the writers (if stop is true), waits for them, fails the test on a writer's
// error and returns every committed event by id.
func (w *writers) finish(t *testing.T, stop bool) map[string]seqEvent {
	t.Helper()
	if stop {
		w.stopOnce.Do(func() { close(w.stop) })
	}
	w.wg.Wait()
	select {
	case err := <-w.errs:
		t.Fatalf("writer: %v", err)
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.committed)
}

func idsOf(committed map[string]seqEvent) []string {
	return slices.Collect(maps.Keys(committed))
}

// checkDelivery checks recs against committed: every committed event is there (0 lost),
// nothing else is, each aggregate's events first appear in commit order, and a duplicate
// carries the same id and the same bytes. It returns the number of duplicates and of
// aggregates.
func checkDelivery(t *testing.T, committed map[string]seqEvent, recs []*kgo.Record) (dups, aggregates int) {
	t.Helper()
	first := map[string][]byte{} // id -> value first seen
	last := map[string]int{}     // aggregate -> last first-seen seq
	for _, rec := range recs {
		e, err := kafkace.Decode(rec)
		if err != nil {
			t.Fatalf("record at %s/%d@%d: %v", rec.Topic, rec.Partition, rec.Offset, err)
		}
		want, ok := committed[e.ID()]
		if !ok {
			t.Fatalf("event %s in Kafka was never committed", e.ID())
		}
		if v, seen := first[e.ID()]; seen {
			dups++
			if !bytes.Equal(v, rec.Value) {
				t.Fatalf("duplicate of %s differs: %s vs %s", e.ID(), v, rec.Value)
			}
			continue
		}
		first[e.ID()] = rec.Value
		var ev seqEvent
		if err := json.Unmarshal(e.Data(), &ev); err != nil || ev != want || string(rec.Key) != want.Agg {
			t.Fatalf("event %s: data %s key %q, want %+v", e.ID(), e.Data(), rec.Key, want)
		}
		if ev.Seq <= last[ev.Agg] {
			t.Fatalf("aggregate %s: seq %d after %d (first-seen order broken)", ev.Agg, ev.Seq, last[ev.Agg])
		}
		last[ev.Agg] = ev.Seq
	}
	if len(first) != len(committed) {
		t.Fatalf("%d distinct events in Kafka, %d committed", len(first), len(committed))
	}
	return dups, len(last)
}

// TestRelayCrashLosesNothing SIGKILLs the relay process repeatedly while writers fill the
// outbox and checks that every committed event reaches Kafka, in per-aggregate order, with
// replays carrying the same CloudEvent id.
func TestRelayCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long crash test; run without -short")
	}
	const (
		writerCount = 4
		perWriter   = 2500
		aggregates  = 25 // per writer
		kills       = 6
	)
	b := newBundle(t)
	ctx := context.Background()
	cfg := b.config()
	// The slot must exist before the first write, as in production (the relay deploys first).
	setupRelay, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setupRelay.setupSlot(ctx); err != nil {
		t.Fatal(err)
	}
	got := collect(t, b.brokers, "connect.events")
	proc := newChild(t, cfg)
	proc.start()
	t.Cleanup(proc.kill)

	w := startWriters(t, b, writerCount, perWriter, aggregates)
	total := writerCount * perWriter
	for k := 1; k <= kills; k++ {
		// Kill at fixed points of the writers' progress, once the restarted relay has relayed
		// something, so every kill lands mid-stream while events are being written.
		target, before := int64(k*total/(kills+1)), got.count()
		waitFor(t, fmt.Sprintf("kill point %d", k), func() bool {
			return w.written.Load() >= target && got.count() >= before+100
		})
		proc.kill()
		t.Logf("kill %d: %d records in Kafka, %d of %d events committed", k, got.count(), w.written.Load(), total)
		proc.start()
	}
	committed := w.finish(t, false)
	waitFor(t, "every committed event in Kafka", func() bool { return got.has(idsOf(committed)...) })
	proc.kill()

	recs := got.records()
	dups, aggs := checkDelivery(t, committed, recs)
	t.Logf("crash test: %d committed, 0 lost, %d records, %d duplicates (%.2f%%), %d kills, %d aggregates in order",
		len(committed), len(recs), dups, 100*float64(dups)/float64(len(committed)), kills, aggs)
}
