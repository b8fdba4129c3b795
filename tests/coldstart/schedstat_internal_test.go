package coldstart

import (
	"os"
	"testing"
	"time"
)

func TestParseSchedstat(t *testing.T) {
	on, wait, err := parseSchedstat("5570163 33405637 3\n")
	if err != nil || on != 5570163*time.Nanosecond || wait != 33405637*time.Nanosecond {
		t.Fatalf("got %v %v %v", on, wait, err)
	}
	for _, bad := range []string{"", "12", "x 1 2", "1 y 2"} {
		if _, _, err := parseSchedstat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// schedTimes of this very process: it has run, so its CPU time is positive, and it grows as
// the process works.
func TestSchedTimesOfSelf(t *testing.T) {
	before, _, err := schedTimes(os.Getpid())
	if err != nil {
		t.Skipf("no schedstat on this kernel: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		x := 0
		for i := range 1_000_000 {
			x += i
		}
		_ = x
		after, _, err := schedTimes(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time did not grow from %v", before)
		}
	}
}

func TestSummariseNearestRank(t *testing.T) {
	s := Stats{}
	for i := 1; i <= 10; i++ {
		s.Samples = append(s.Samples, Sample{Ready: time.Duration(11-i) * time.Millisecond, CPU: time.Duration(i) * time.Millisecond, RSSKiB: int64(i)})
	}
	summarise(&s)
	if s.Runs != 10 || s.ReadyMedian != 5*time.Millisecond || s.ReadyP90 != 9*time.Millisecond ||
		s.CPUMedian != 5*time.Millisecond || s.CPUP90 != 9*time.Millisecond || s.RSSMedianKiB != 5 || s.RSSP90KiB != 9 {
		t.Fatalf("summary %+v", s)
	}
}

// The paired ratio divides within rounds: a load change between rounds (here every round
// slower than the last, target always twice the baseline) does not move it.
func TestPairedRatio(t *testing.T) {
	var a, b []Sample
	for i := 1; i <= 9; i++ {
		b = append(b, Sample{Ready: time.Duration(i*i) * time.Millisecond})
		a = append(a, Sample{Ready: 2 * time.Duration(i*i) * time.Millisecond})
	}
	if got := pairedRatio(a, b); got != 2 {
		t.Fatalf("paired ratio %v, want 2", got)
	}
	if got := pairedRatio(nil, b); got != 0 {
		t.Fatalf("no samples: %v, want 0", got)
	}
}
