package installload_test

import (
	"context"
	"testing"
	"time"

	"github.com/myscrollr/connect/tests/installload"
)

// TestInstallsSurviveKills makes 1,000 installs through the consent page while notify and the
// relay are SIGKILLed in turn every second: every install must reach the integration, signed,
// at least once. It builds and starts the whole marketplace, so -short skips it. Timings are
// reported, not asserted.
func TestInstallsSurviveKills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the whole marketplace")
	}
	rep, err := installload.Run(context.Background(), installload.Options{
		Installs: 1000, Concurrency: 16, Kill: true, KillEvery: time.Second, Timeout: 8 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Missing != 0 || rep.Delivered != 1000 || rep.Refused != 0 {
		t.Errorf("delivered %d, missing %d, refused %d of 1000 installs", rep.Delivered, rep.Missing, rep.Refused)
	}
	if rep.Kills < 2 {
		t.Errorf("only %d kills happened while installs ran: the test did not test crashes", rep.Kills)
	}
	t.Logf("%d kills; %.0f installs/s; commit -> delivery p99 %.0f ms, max %.0f ms; %d redelivered",
		rep.Kills, rep.PerSecond, rep.CommitP99, rep.CommitMax, rep.Redelivered)
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []installload.Options{{Installs: 0}, {Installs: 10, Rate: -1}, {Installs: 10, Concurrency: 5000},
		{Installs: 10, KillEvery: time.Millisecond}} {
		if _, err := installload.Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
