package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/outbox"
)

// writeBatch commits n events in one transaction, spread over 100 aggregates.
func writeBatch(tb testing.TB, bd *bundle, start, n int) {
	err := pgx.BeginFunc(context.Background(), bd.pool, func(tx pgx.Tx) error {
		for i := start; i < start+n; i++ {
			ce, err := outbox.New("/bench", "com.myscrollr.connect.bench.event", map[string]int{"n": i})
			if err != nil {
				return err
			}
			agg := fmt.Sprintf("agg-%d", i%100)
			if _, err := outbox.Write(context.Background(), tx, outbox.Event{AggregateType: "bench", AggregateID: agg, CloudEvent: ce}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRelayThroughput relays a backlog of b.N committed events (one op = one event)
// from the slot to Kafka acknowledgement. Run with -benchtime=20000x. The backlog is written
// before the clock starts. events/s counts from the relay's start (start-up included, the
// historical figure); steady_events/s from the first acknowledgement to the last, which
// leaves the start-up (connections, slot, Kafka metadata, producer id) out; startup_ms is the
// time to the first acknowledgement. The CPU figures are per event: this process (relay and
// the in-process Kafka cluster) and the PostgreSQL server (walsender decoding).
func BenchmarkRelayThroughput(b *testing.B) {
	bd := newBundle(b)
	cfg := bd.config()
	pre, err := New(cfg, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pre.setupSlot(context.Background()); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i += 100 {
		writeBatch(b, bd, i, min(100, b.N-i))
	}
	var (
		acked atomic.Int64
		first atomic.Int64 // UnixNano of the first acknowledgement
		done  = make(chan struct{})
	)
	b.ResetTimer()
	cpu := readCPU()
	start := time.Now()
	startRelay(b, cfg, Deps{onAck: func(_, at time.Time) {
		first.CompareAndSwap(0, at.UnixNano())
		if acked.Add(1) == int64(b.N) {
			close(done)
		}
	}})
	<-done
	end := time.Now()
	b.StopTimer()
	cpu.report(b, b.N)
	firstAt := time.Unix(0, first.Load())
	b.ReportMetric(float64(b.N)/end.Sub(start).Seconds(), "events/s")
	if steady := end.Sub(firstAt); b.N > 1 && steady > 0 {
		b.ReportMetric(float64(b.N-1)/steady.Seconds(), "steady_events/s")
	}
	b.ReportMetric(float64(firstAt.Sub(start).Microseconds())/1000, "startup_ms")
}

// BenchmarkRelayLatency writes b.N events paced at 2,000 events/s (a 10-event transaction
// every 5ms) and reports the commit-to-Kafka-acknowledgement latency. Run with
// -benchtime=10000x.
func BenchmarkRelayLatency(b *testing.B) {
	const perTx, every = 10, 5 * time.Millisecond
	bd := newBundle(b)
	var (
		mu   sync.Mutex
		lats = make([]time.Duration, 0, b.N)
		done = make(chan struct{})
	)
	startRelay(b, bd.config(), Deps{onAck: func(commit, acked time.Time) {
		mu.Lock()
		defer mu.Unlock()
		lats = append(lats, acked.Sub(commit))
		if len(lats) == b.N {
			close(done)
		}
	}})
	b.ResetTimer()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; i < b.N; i += perTx {
		<-tick.C
		writeBatch(b, bd, i, min(perTx, b.N-i))
	}
	<-done
	b.StopTimer()
	slices.Sort(lats)
	q := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	b.ReportMetric(q(1), "max_ms")
}
