package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// BenchmarkSignedDelivery measures one lifecycle event from the platform event to the
// integration's 2xx: the transaction (claim, lifecycle event, outbox, delivery row), the
// claim of the attempt, two ed25519 signatures (a rotation), the POST to a loopback
// integration that verifies them, and the recorded outcome.
func BenchmarkSignedDelivery(b *testing.B) {
	bn := setupNotify(b, seedKey(b, "k1", 1), seedKey(b, "k2", 2))
	in, id := bn.integration(b, "coach", "dev-1", "app", appHTTP)
	evs := make([]event.Event, b.N)
	for i := range evs {
		evs[i] = installCompleted(b, id, "coach", "alice")
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := bn.svc.consume(ctx, evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	got := in.received()
	if len(got) != b.N || got[len(got)-1].VerifyErr != nil || in.status.Load() != http.StatusNoContent {
		b.Fatalf("%d deliveries for %d events", len(got), b.N)
	}
}
