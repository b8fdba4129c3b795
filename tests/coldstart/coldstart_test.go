package coldstart_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/tests/coldstart"
)

const (
	testfnPkg  = "github.com/myscrollr/connect/tests/coldstart/testfn"
	helloPkg   = "github.com/myscrollr/connect/tests/coldstart/hello"
	hellopgPkg = "github.com/myscrollr/connect/tests/coldstart/hellopg"
	dbcheckPkg = "github.com/myscrollr/connect/tests/coldstart/ladder/dbcheck"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

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
		checkStats(t, s, 2)
	}
	if rep.ReadyRatio <= 0 || rep.RSSRatio <= 0 || !strings.Contains(rep.Table(), "testfn") {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Ratios) != 1 || rep.Ratios[0].Baseline != "hello" || rep.Ratios[0].ReadyRatio != rep.ReadyRatio {
		t.Fatalf("ratios %+v, want one against hello equal to ReadyRatio %v", rep.Ratios, rep.ReadyRatio)
	}
	t.Log("\n" + rep.Table())
}

// TestMeasureAllDatabase measures a database binary against both baselines, hellopg with a
// real database, and another binary alongside; every row and ratio is in the report.
func TestMeasureAllDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and execs binaries")
	}
	ws := workspace(t)
	env := []string{"DATABASE_URL=" + pgtest.URL(t)}
	rep, err := coldstart.MeasureAll(context.Background(), ws, coldstart.Plan{
		Target: coldstart.Target{Name: "dbcheck", Package: dbcheckPkg, ReadyPath: "/readyz", Env: env},
		Baselines: []coldstart.Target{
			{Name: "hello", Package: helloPkg, ReadyPath: "/"},
			{Name: "hellopg", Package: hellopgPkg, ReadyPath: "/", Env: env},
		},
		Others: []coldstart.Target{{Name: "testfn", Package: testfnPkg, ReadyPath: "/readyz"}},
	}, coldstart.Options{Runs: 2, Idle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Target.Name != "dbcheck" || rep.Baseline.Name != "hello" || len(rep.Baselines) != 1 || rep.Baselines[0].Name != "hellopg" ||
		len(rep.Others) != 1 || rep.Others[0].Name != "testfn" {
		t.Fatalf("report rows: target %s, baseline %s, baselines %+v, others %+v", rep.Target.Name, rep.Baseline.Name, rep.Baselines, rep.Others)
	}
	for _, s := range []coldstart.Stats{rep.Target, rep.Baseline, rep.Baselines[0], rep.Others[0]} {
		checkStats(t, s, 2)
	}
	if len(rep.Ratios) != 2 || rep.Ratios[1].Baseline != "hellopg" {
		t.Fatalf("ratios %+v, want hello and hellopg", rep.Ratios)
	}
	want := float64(rep.Target.ReadyMedian) / float64(rep.Baselines[0].ReadyMedian)
	if got := rep.Ratios[1].ReadyRatio; got != want {
		t.Fatalf("ready ratio against hellopg %v, want %v", got, want)
	}
	table := rep.Table()
	for _, w := range []string{"dbcheck", "hellopg", "testfn", "ratio dbcheck/hellopg", "cpu p50"} {
		if !strings.Contains(table, w) {
			t.Fatalf("table lacks %q:\n%s", w, table)
		}
	}
	t.Log("\n" + table)
}

// hellopg refuses to become ready without a database: its readiness includes the connection.
func TestHellopgNeedsTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and execs binaries")
	}
	ws := workspace(t)
	bin, err := coldstart.Build(context.Background(), ws, hellopgPkg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = coldstart.Run(context.Background(), bin, coldstart.Target{Name: "hellopg", ReadyPath: "/",
		Env: []string{"DATABASE_URL=postgres://nobody@127.0.0.1:1/x?connect_timeout=1"}}, coldstart.Options{})
	if err == nil || !strings.Contains(err.Error(), "exited before ready") || !strings.Contains(err.Error(), "hellopg:") {
		t.Fatalf("want an early exit with hellopg's error, got %v", err)
	}
}

func checkStats(t *testing.T, s coldstart.Stats, runs int) {
	t.Helper()
	if s.Runs != runs || len(s.Samples) != runs || s.ReadyMedian <= 0 || s.RSSMedianKiB <= 0 || s.BinaryBytes <= 0 ||
		s.ReadyP90 < s.ReadyMedian || s.CPUMedian <= 0 || s.CPUP90 < s.CPUMedian {
		t.Fatalf("implausible stats %+v", s)
	}
	for _, x := range s.Samples {
		// CPU time is of the process alone; it cannot exceed the wall time by more than the
		// second core allows.
		if x.CPU <= 0 || x.CPU > 2*x.Ready+10*time.Millisecond {
			t.Fatalf("%s: implausible CPU %v for ready %v", s.Name, x.CPU, x.Ready)
		}
	}
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
