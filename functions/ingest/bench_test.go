package main

import (
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's CPU time (user + system): the Go side of a push (and the test's
// client and identity server, which are small beside it), without PostgreSQL's.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds records/s and the Go CPU time per record, since start and cpu0.
func report(b *testing.B, start time.Time, cpu0 time.Duration) {
	recs := float64(b.N * 500)
	b.ReportMetric(recs/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/recs, "go-cpu-µs/record")
}

// Throughput figures (records/s) and how they were measured are in doc.go ("Throughput").

// batches500 builds n request bodies of 500 new records each (distinct event ids and keys).
func batches500(b *testing.B, n int) [][]byte {
	bodies := make([][]byte, n)
	for j := range n {
		list := make([]map[string]any, 500)
		for i := range list {
			k := strconv.Itoa(j*500 + i)
			list[i] = ev("e"+k, "prices", `{"coin":"c`+k+`","cents":`+strconv.Itoa(i)+`}`)
		}
		bodies[j] = batch(b, list...)
	}
	return bodies
}

// BenchmarkIngestBatch500: HTTP batches of 500 records end to end (auth, decode, validate
// against the stream schema, normalize with Identity, replay keys, upsert, announce through
// the outbox), one request at a time, reported as records/s.
func BenchmarkIngestBatch500(b *testing.B) {
	bd := setupIngest(b, Config{})
	bd.pushSource(b, "coins", "push-coins", pricesManifest)
	tok := bd.token(b, "push-coins", time.Hour, "data:write")
	bodies := batches500(b, b.N)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	for n := range b.N {
		code, _, out := bd.push(b, tok, batchCT, bodies[n])
		if code != 200 {
			b.Fatalf("%d %s", code, out)
		}
	}
	report(b, start, cpu0)
}

// BenchmarkIngestBatch500Concurrent is BenchmarkIngestBatch500 with several requests in
// flight (4 goroutines per GOMAXPROCS): what one replica serves when clients
// push concurrently, the Go and PostgreSQL work of different requests overlapping.
func BenchmarkIngestBatch500Concurrent(b *testing.B) {
	bd := setupIngest(b, Config{})
	bd.pushSource(b, "coins", "push-coins", pricesManifest)
	tok := bd.token(b, "push-coins", time.Hour, "data:write")
	bodies := batches500(b, b.N)
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			code, _, out := bd.push(b, tok, batchCT, bodies[next.Add(1)-1])
			if code != 200 {
				b.Errorf("%d %s", code, out)
				return
			}
		}
	})
	report(b, start, cpu0)
}
