package relayload_test

import (
	"context"
	"testing"

	"github.com/myscrollr/connect/tests/relayload"
)

// TestSmoke runs the relay binary under a small load in both modes and checks that every
// event arrived exactly once. It builds the relay and starts PostgreSQL, so -short skips it.
// Timings are reported, not asserted.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the relay and starts PostgreSQL")
	}
	for _, o := range []relayload.Options{
		{Events: 1000},
		{Events: 200, Rate: 2000},
	} {
		rep, err := relayload.Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Received != o.Events || rep.Missing != 0 || rep.Duplicates != 0 {
			t.Errorf("%s: received %d, missing %d, duplicates %d of %d events", rep.Mode, rep.Received, rep.Missing, rep.Duplicates, o.Events)
		}
		t.Logf("%s: %.0f events/s, p99 %.1fms", rep.Mode, rep.PerSecond, rep.P99MS)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []relayload.Options{{Events: 0}, {Events: 10, Rate: -1}, {Events: 10, Batch: -1}, {Events: 10, Writers: 100}} {
		if _, err := relayload.Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
