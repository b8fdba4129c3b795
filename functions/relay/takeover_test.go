package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// probe is one look at a relay's /readyz and /metrics, for watching from another goroutine
// (it returns errors instead of failing the test).
func probe(base string) (ready int, metrics map[string]float64, err error) {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return 0, nil, err
	}
	resp.Body.Close()
	ready = resp.StatusCode
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	metrics = map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "connect_relay_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return 0, nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		metrics[line[:i]] = v
	}
	return ready, metrics, sc.Err()
}

// readyWith reports whether the relay at base answers /readyz 200 and its metrics satisfy
// cond (nil: any).
func readyWith(base string, cond func(m map[string]float64) bool) bool {
	code, m, err := probe(base)
	return err == nil && code == http.StatusOK && (cond == nil || cond(m))
}

// watchReady samples the relay at base until stop is called and returns the first sample in
// which it was not ready or reported a stall ("" if none).
func watchReady(base string) (stop func() string) {
	done := make(chan struct{})
	var (
		wg    sync.WaitGroup
		fault string
		n     int
	)
	wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			n++
			code, m, err := probe(base)
			switch {
			case err != nil:
				fault = fmt.Sprintf("sample %d: %v", n, err)
			case code != http.StatusOK:
				fault = fmt.Sprintf("sample %d: /readyz %d", n, code)
			case m["connect_relay_stalled"] != 0:
				fault = fmt.Sprintf("sample %d: connect_relay_stalled %v", n, m["connect_relay_stalled"])
			}
			if fault != "" {
				return
			}
		}
	})
	return func() string {
		close(done)
		wg.Wait()
		if fault == "" && n == 0 {
			return "no sample taken"
		}
		return fault
	}
}

// TestRelayRollingUpgrade runs a rolling upgrade as Knative does it, with two relay
// processes: v1 streams while writers commit; v2 starts while v1 holds the slot and must be
// ready as a standby; v1 is SIGTERMed (Knative does so once v2 is ready); v2 takes over and
// streams, ready and never stalled throughout, while the writers go on. Every committed
// event must reach Kafka, in per-aggregate order, duplicates only as identical records.
func TestRelayRollingUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("long process test; run without -short")
	}
	b := newBundle(t)
	ctx := context.Background()
	cfg := b.config()
	pre, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pre.setupSlot(ctx); err != nil {
		t.Fatal(err)
	}
	got := collect(t, b.brokers, "connect.events")

	v1 := newChild(t, cfg)
	v1.start()
	t.Cleanup(v1.kill)
	waitFor(t, "v1 ready", func() bool { return readyWith(v1.base, nil) })
	w := startWriters(t, b, 3, 0, 20)
	waitFor(t, "v1 relaying", func() bool { return got.count() >= 200 })

	v2 := newChild(t, cfg, "LOG_LEVEL=info", "RELAY_STALL_AFTER=5s")
	v2.start()
	t.Cleanup(v2.kill)
	waitFor(t, "v2 ready while v1 holds the slot", func() bool { return readyWith(v2.base, nil) })
	watch := watchReady(v2.base)
	_, m, err := probe(v2.base)
	if err != nil {
		t.Fatal(err)
	}
	if m["connect_relay_standby"] != 1 || m["connect_relay_stalled"] != 0 || m["connect_relay_events_total"] != 0 {
		t.Fatalf("v2 ready while v1 streams: standby %v stalled %v events %v, want 1 0 0",
			m["connect_relay_standby"], m["connect_relay_stalled"], m["connect_relay_events_total"])
	}
	// v1 still streams and v2 stays a standby over several of its retries.
	before := got.count()
	waitFor(t, "v1 relaying while v2 stands by", func() bool { return got.count() >= before+300 })
	_, m, err = probe(v2.base)
	if err != nil {
		t.Fatal(err)
	}
	if m["connect_relay_standby"] != 1 || m["connect_relay_events_total"] != 0 {
		t.Fatalf("v2 while v1 streams: standby %v events %v, want 1 and 0", m["connect_relay_standby"], m["connect_relay_events_total"])
	}
	if _, m1, err := probe(v1.base); err != nil || m1["connect_relay_standby"] != 0 {
		t.Fatalf("v1: standby %v (%v), want 0", m1["connect_relay_standby"], err)
	}

	termAt := time.Now()
	v1.term()
	exitAt := time.Now()
	waitFor(t, "v2 streaming", func() bool {
		return readyWith(v2.base, func(m map[string]float64) bool {
			return m["connect_relay_standby"] == 0 && m["connect_relay_events_total"] > 0
		})
	})
	// The writers keep committing after the takeover, and v2 relays what they write.
	written := w.written.Load()
	waitFor(t, "v2 relaying new writes", func() bool {
		return w.written.Load() >= written+300 && readyWith(v2.base, func(m map[string]float64) bool {
			return m["connect_relay_events_total"] >= 300
		})
	})
	committed := w.finish(t, true)
	waitFor(t, "every committed event in Kafka", func() bool { return got.has(idsOf(committed)...) })
	waitFor(t, "v2 caught up", func() bool {
		return readyWith(v2.base, func(m map[string]float64) bool { return m["connect_relay_lag_seconds"] == 0 })
	})
	if fault := watch(); fault != "" {
		t.Fatalf("v2 was not ready or stalled after it first became ready: %s", fault)
	}
	_, m, err = probe(v2.base)
	if err != nil {
		t.Fatal(err)
	}
	// Standing by is not a failure: no failed session was counted.
	if n := m[`connect_relay_reconnects_total{target="postgres"}`]; n != 0 {
		t.Fatalf("v2 counted %v failed PostgreSQL sessions, want 0", n)
	}
	v2.term()

	recs := got.records()
	dups, aggs := checkDelivery(t, committed, recs)
	// Each relay session has a producer id of its own: v1's are those of the records
	// produced before the SIGTERM, the others are v2's.
	v1IDs := map[int64]bool{}
	for _, rec := range recs {
		if rec.Timestamp.Before(termAt) {
			v1IDs[rec.ProducerID] = true
		}
	}
	var lastV1, firstV2 time.Time
	for _, rec := range recs {
		if v1IDs[rec.ProducerID] {
			if rec.Timestamp.After(lastV1) {
				lastV1 = rec.Timestamp
			}
		} else if firstV2.IsZero() || rec.Timestamp.Before(firstV2) {
			firstV2 = rec.Timestamp
		}
	}
	if firstV2.IsZero() || !firstV2.After(termAt.Add(-time.Millisecond)) {
		t.Fatalf("v2's first record at %s, v1 SIGTERMed at %s", firstV2, termAt)
	}
	logText, err := os.ReadFile(v2.log.Name())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logText), "standing by"); n != 1 {
		t.Fatalf("v2 logged %d standby messages, want 1:\n%s", n, logText)
	}
	if n := strings.Count(string(logText), "took over the replication slot"); n != 1 {
		t.Fatalf("v2 logged %d takeovers, want 1:\n%s", n, logText)
	}
	t.Logf("rolling upgrade: %d committed, 0 lost, %d records, %d duplicates, %d aggregates in order; "+
		"v1 SIGTERM to exit %s; takeover gap (v1 exit to v2's first produce) %s; "+
		"no produce between v1's last and v2's first for %s",
		len(committed), len(recs), dups, aggs, exitAt.Sub(termAt).Round(time.Millisecond),
		firstV2.Sub(exitAt).Round(time.Millisecond), firstV2.Sub(lastV1).Round(time.Millisecond))
}

// A standby is ready while its latest look at the slot is recent; when it cannot reach the
// database for StallAfter it is stalled like any relay without a stream.
func TestRelayStandbyReadiness(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.DatabaseURL = "postgres://relay@127.0.0.1:1/connect"
	cfg.KafkaBrokers = []string{"127.0.0.1:9"}
	r, err := New(cfg, Deps{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "no replication stream") {
		t.Fatalf("fresh relay: Ready = %v, want no replication stream", err)
	}
	r.standbyAt.Store(now.UnixNano())
	now = now.Add(cfg.StallAfter)
	if err := r.Ready(context.Background()); err != nil {
		t.Fatalf("standby checked %s ago: Ready = %v", cfg.StallAfter, err)
	}
	if v := testutil.ToFloat64(r.m.standby); v != 1 {
		t.Fatalf("standby gauge = %v", v)
	}
	if v := testutil.ToFloat64(r.m.stalled); v != 0 {
		t.Fatalf("stalled gauge = %v", v)
	}
	now = now.Add(time.Second)
	if err := r.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "standby") {
		t.Fatalf("standby not checked for %s: Ready = %v", cfg.StallAfter+time.Second, err)
	}
	r.standbyAt.Store(0)
	if v := testutil.ToFloat64(r.m.standby); v != 0 {
		t.Fatalf("standby gauge = %v after the standby ended", v)
	}
}

// In one process: a second relay on a held slot is a ready standby, counts no failure, and
// takes over when the first one stops, resuming where it confirmed.
func TestRelayStandbyTakesOver(t *testing.T) {
	b := newBundle(t)
	got := collect(t, b.brokers, "connect.events")
	r1, err := New(b.config(), Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx1, stop1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() { done1 <- r1.Run(ctx1) }()
	stopped := false
	t.Cleanup(func() {
		if stop1(); !stopped {
			<-done1
		}
	})
	waitFor(t, "first relay ready", func() bool { return r1.Ready(ctx1) == nil })
	ids := writeN(t, b, "a", 20)
	waitFor(t, "first events", func() bool { return got.has(ids...) })

	r2, _ := startRelay(t, b.config(), Deps{}) // returns once ready
	if !r2.standby() || r2.streaming.Load() {
		t.Fatalf("second relay: standby %v streaming %v, want a standby", r2.standby(), r2.streaming.Load())
	}
	more := writeN(t, b, "a", 20)
	waitFor(t, "events while the second relay stands by", func() bool { return got.has(more...) })
	if v := testutil.ToFloat64(r2.m.events); v != 0 {
		t.Fatalf("standby relayed %v events", v)
	}
	stop1()
	stopped = true
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	last := writeN(t, b, "a", 20)
	waitFor(t, "events after the takeover", func() bool { return got.has(last...) })
	if r2.standby() || !r2.streaming.Load() || r2.Ready(context.Background()) != nil {
		t.Fatalf("after the takeover: standby %v streaming %v", r2.standby(), r2.streaming.Load())
	}
	if v := testutil.ToFloat64(r2.m.reconnects.WithLabelValues("postgres")); v != 0 {
		t.Fatalf("standby counted %v failed sessions", v)
	}
	// The first relay confirmed what Kafka acknowledged when it stopped: nothing replayed.
	if n := got.count(); n != 60 {
		t.Fatalf("%d records for 60 events: the takeover replayed %d", n, n-60)
	}
}
