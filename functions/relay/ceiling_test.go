package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/shared/pgtest"
)

// cpuMeter measures CPU time spent by this process and by the PostgreSQL server (the
// postmaster's children: backends, walsenders) between two points.
type cpuMeter struct {
	self, server time.Duration
}

func readCPU() cpuMeter {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	m := cpuMeter{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	c := pgtest.Cluster()
	if c == nil || c.PID() == 0 {
		return m
	}
	m.server = serverCPU(c.PID())
	return m
}

// serverCPU sums user and system time of pid's live children (clock ticks of 10ms).
func serverCPU(pid int) time.Duration {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+2:]) // state ppid ... utime(12) stime(13)
		if len(f) < 13 {
			continue
		}
		if f[1] != strconv.Itoa(pid) && e.Name() != strconv.Itoa(pid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

func (m cpuMeter) report(b *testing.B, n int) {
	now := readCPU()
	b.ReportMetric(float64((now.self-m.self).Microseconds())/float64(n), "proc_cpu_us/event")
	if now.server > 0 {
		b.ReportMetric(float64((now.server-m.server).Microseconds())/float64(n), "pg_cpu_us/event")
	}
}

// BenchmarkSlotDecodeCeiling streams a committed backlog of b.N events from the slot and only
// parses the pgoutput messages: what PostgreSQL's walsender and the replication connection
// can deliver, with no Kafka at all.
func BenchmarkSlotDecodeCeiling(b *testing.B) {
	bd := newBundle(b)
	cfg := bd.config()
	pre, err := New(cfg, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	start, err := pre.setupSlot(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i += 100 {
		writeBatch(b, bd, i, min(100, b.N-i))
	}
	ctx := context.Background()
	conn, err := pgconn.ConnectConfig(ctx, pre.replCfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	b.ResetTimer()
	cpu := readCPU()
	t0 := time.Now()
	err = pglogrepl.StartReplication(ctx, conn, cfg.Slot, start, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + cfg.Publication + "'"},
	})
	if err != nil {
		b.Fatal(err)
	}
	inserts := 0
	for inserts < b.N {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			b.Fatal(err)
		}
		m, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := m.(*pglogrepl.InsertMessage); ok {
			inserts++
		}
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	cpu.report(b, b.N)
}

// BenchmarkKafkaCeiling produces b.N pre-built relay records (as the relay builds them, 100
// aggregates) to the in-process cluster with the relay's producer settings and waits for
// every acknowledgement: what kfake and the franz-go producer can take on this machine.
func BenchmarkKafkaCeiling(b *testing.B) {
	bd := newBundle(b)
	r, err := New(bd.config(), Deps{})
	if err != nil {
		b.Fatal(err)
	}
	dec := newDecoder()
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		rw := validRow()
		rw["aggregateid"] = str(fmt.Sprintf("agg-%d", i%100))
		rw["payload"] = str(fmt.Sprintf(`{"n": %d}`, i))
		rec, dead, err := dec.record(rowOf(rw))
		if err != nil || dead {
			b.Fatal(err)
		}
		recs[i] = rec
	}
	kc, err := kgo.NewClient(r.kafkaOpts()...)
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	// Metadata and the producer id are fetched before the clock starts.
	if err := kc.ProduceSync(context.Background(), &kgo.Record{Topic: "connect.events", Value: []byte("warm")}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := readCPU()
	t0 := time.Now()
	done := make(chan struct{})
	var left atomic.Int64
	left.Store(int64(b.N))
	for _, rec := range recs {
		kc.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			if left.Add(-1) == 0 {
				close(done)
			}
		})
	}
	<-done
	elapsed := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	cpu.report(b, b.N)
}

// BenchmarkRecordBuild measures turning one decoded row into its Kafka record: a row as
// shared/outbox writes it without extensions, and one with seven extensions of every kind.
func BenchmarkRecordBuild(b *testing.B) {
	plain := validRow()
	plain["extensions"] = str("{}")
	for name, cols := range map[string]map[string]*string{"plain": plain, "extensions": validRow()} {
		b.Run(name, func(b *testing.B) {
			dec := newDecoder()
			rw := rowOf(cols)
			b.ReportAllocs()
			for b.Loop() {
				if _, dead, err := dec.record(rw); err != nil || dead {
					b.Fatal(err)
				}
			}
		})
	}
}
