package dispatch

import (
	"fmt"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// BenchmarkDispatch measures Kafka -> HTTP throughput of one Trigger (unordered, up to
// DefaultMaxInFlight in flight) against a trivial 200 server: b.N events are written to a
// 3-partition connect.events first, then the dispatcher delivers them all.
func BenchmarkDispatch(b *testing.B) {
	bd := setup(b, testManifests, 3, "connect.events", "connect.events.dlq")
	install := bd.serve("install", func(cloudevents.Event, int) (int, string) { return 200, "" })
	bd.serve("notify", nil)
	events := make([]cloudevents.Event, b.N)
	for i := range events {
		events[i] = newEvent(typePaid, fmt.Sprint("bench-", i))
	}
	for i := 0; i < len(events); i += 1000 {
		bd.produce("connect.events", events[i:min(i+1000, len(events))]...)
	}
	b.ResetTimer()
	start := time.Now()
	stop := bd.start(bd.config())
	for range b.N {
		install.next()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
