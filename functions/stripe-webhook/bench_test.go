package main

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWebhook posts distinct signed checkout.session.completed events (each a new claim,
// payment row and outbox event) from 8 concurrent senders, and a duplicate of each (dedupe),
// and reports p50/p99 latency and events/s. go test -run - -bench Webhook -benchtime 5000x
func BenchmarkWebhook(b *testing.B) {
	bb := setupWebhook(b, nil)
	const senders = 8
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	var fails atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				body := eventOn(fmt.Sprintf("evt_b%d", i/2), "checkout.session.completed", testNow.Unix(), "acct_dev1",
					checkoutObj(fmt.Sprintf("cs_b%d", i/2), 499)) // i/2: every event is delivered twice
				sig := sign(body, secret, time.Now())
				t0 := time.Now()
				code, _ := bb.post(b, client, body, sig)
				lat[s] = append(lat[s], time.Since(t0))
				if code != http.StatusOK {
					fails.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if fails.Load() > 0 {
		b.Fatalf("%d deliveries not answered 200", fails.Load())
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
}
