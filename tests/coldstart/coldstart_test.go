package coldstart_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/tests/coldstart"
)

const (
	testfnPkg = "github.com/myscrollr/connect/tests/coldstart/testfn"
	helloPkg  = "github.com/myscrollr/connect/tests/coldstart/hello"
)

func workspace(tb testing.TB) string {
	tb.Helper()
	b, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil || strings.TrimSpace(string(b)) == "" {
		tb.Skip("no go.work: the cold-start tool builds inside the workspace")
	}
	return filepath.Dir(strings.TrimSpace(string(b)))
}

// TestMeasure runs the tool end to end on the runtime's smallest function and the baseline.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and execs binaries")
	}
	ws := workspace(t)
	rep, err := coldstart.Measure(context.Background(), ws,
		coldstart.Target{Name: "testfn", Package: testfnPkg, ReadyPath: "/readyz"},
		coldstart.Target{Name: "hello", Package: helloPkg, ReadyPath: "/"},
		coldstart.Options{Runs: 2, Idle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []coldstart.Stats{rep.Target, rep.Baseline} {
		if s.Runs != 2 || s.ReadyMedian <= 0 || s.RSSMedianKiB <= 0 || s.BinaryBytes <= 0 || s.ReadyP90 < s.ReadyMedian {
			t.Fatalf("implausible stats %+v", s)
		}
	}
	if rep.ReadyRatio <= 0 || rep.RSSRatio <= 0 || !strings.Contains(rep.Table(), "testfn") {
		t.Fatalf("report %+v", rep)
	}
	t.Log("\n" + rep.Table())
}

func TestRunReportsEarlyExit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and execs binaries")
	}
	ws := workspace(t)
	dir := t.TempDir()
	bin, err := coldstart.Build(context.Background(), ws, testfnPkg, dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = coldstart.Run(context.Background(), bin, coldstart.Target{Name: "bad", ReadyPath: "/readyz", Env: []string{"LOG_LEVEL=shouty"}}, coldstart.Options{})
	if err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("want an early-exit error carrying the function's log, got %v", err)
	}
}

// BenchmarkColdStart reports exec-to-ready time (ns/op) and idle RSS of the runtime's smallest
// function and of the net/http baseline. Run with -benchtime=20x for stable figures.
func BenchmarkColdStart(b *testing.B) {
	ws := workspace(b)
	dir := b.TempDir()
	for _, t := range []coldstart.Target{
		{Name: "testfn", Package: testfnPkg, ReadyPath: "/readyz"},
		{Name: "hello", Package: helloPkg, ReadyPath: "/"},
	} {
		sub := filepath.Join(dir, t.Name)
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		bin, err := coldstart.Build(context.Background(), ws, t.Package, sub)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(t.Name, func(b *testing.B) {
			var rss int64
			var ready time.Duration
			for i := 0; i < b.N; i++ {
				s, err := coldstart.Run(context.Background(), bin, t, coldstart.Options{Idle: 200 * time.Millisecond})
				if err != nil {
					b.Fatal(err)
				}
				rss += s.RSSKiB
				ready += s.Ready
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(ready.Microseconds())/float64(b.N)/1000, "ms-to-ready")
			b.ReportMetric(float64(rss)/float64(b.N), "KiB-rss")
		})
	}
}
