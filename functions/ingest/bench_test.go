package main

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkIngestBatch500: HTTP batches of 500 records end to end (auth, decode, validate
// against the stream schema, normalize with Identity, replay keys, upsert, announce through
// the outbox), reported as records/s.
func BenchmarkIngestBatch500(b *testing.B) {
	bd := setupIngest(b, Config{})
	bd.pushSource(b, "coins", "push-coins", pricesManifest)
	tok := bd.token(b, "push-coins", time.Hour, "data:write")
	bodies := make([][]byte, b.N)
	for n := range b.N {
		list := make([]map[string]any, 500)
		for i := range list {
			k := strconv.Itoa(n*500 + i)
			list[i] = ev("e"+k, "prices", `{"coin":"c`+k+`","cents":`+strconv.Itoa(i)+`}`)
		}
		bodies[n] = batch(b, list...)
	}
	b.ResetTimer()
	start := time.Now()
	for n := range b.N {
		code, _, out := bd.push(b, tok, batchCT, bodies[n])
		if code != 200 {
			b.Fatalf("%d %s", code, out)
		}
	}
	b.ReportMetric(float64(b.N*500)/time.Since(start).Seconds(), "records/s")
}
