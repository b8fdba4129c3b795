// Package coldstart measures how fast a function binary becomes ready and how much memory it
// holds idle, against a minimal net/http server as the baseline. Each run execs the binary
// with PORT set to a free 127.0.0.1 port, polls the readiness path until it answers 200 (the
// time from exec to that 200 is the cold start), waits for the process to idle, reads VmRSS
// from /proc/<pid>/status, and stops it with SIGTERM.
//
// The cmd/coldstart command prints a table and writes JSON; BenchmarkColdStart reports the same
// figures through go test -bench.
package coldstart

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Target is one binary to measure.
type Target struct {
	Name      string   // label in the report
	Package   string   // Go package to build, e.g. "github.com/myscrollr/connect/functions/catalog"
	ReadyPath string   // polled until 200: "/readyz" for functions, "/" for the baseline
	Env       []string // extra KEY=VALUE environment
}

// Options tune a measurement. The zero value works.
type Options struct {
	Runs    int           // execs per target; default 10
	Idle    time.Duration // wait after ready before reading RSS; default 1s
	Timeout time.Duration // longest wait for readiness; default 15s
}

func (o Options) withDefaults() Options {
	if o.Runs <= 0 {
		o.Runs = 10
	}
	if o.Idle <= 0 {
		o.Idle = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	return o
}

// Sample is one run.
type Sample struct {
	Ready  time.Duration `json:"ready_ns"`
	RSSKiB int64         `json:"rss_kib"`
}

// Stats summarise the runs of one target.
type Stats struct {
	Name         string        `json:"name"`
	Package      string        `json:"package"`
	BinaryBytes  int64         `json:"binary_bytes"`
	Runs         int           `json:"runs"`
	ReadyMedian  time.Duration `json:"ready_median_ns"`
	ReadyP90     time.Duration `json:"ready_p90_ns"`
	RSSMedianKiB int64         `json:"rss_median_kib"`
	RSSP90KiB    int64         `json:"rss_p90_kib"`
	Samples      []Sample      `json:"samples"`
}

// Report is the result of Measure: the measured target, the baseline and their ratios.
type Report struct {
	Target     Stats   `json:"target"`
	Baseline   Stats   `json:"baseline"`
	ReadyRatio float64 `json:"ready_median_ratio"` // target / baseline
	RSSRatio   float64 `json:"rss_median_ratio"`
	SizeRatio  float64 `json:"binary_size_ratio"`
}

// Build compiles pkg into dir with go build, run in workspaceDir (the go.work root), and
// returns the binary's path.
func Build(ctx context.Context, workspaceDir, pkg, dir string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = workspaceDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("coldstart: go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// Measure builds target and baseline into a temporary directory and runs each o.Runs times,
// alternating between them so that machine noise affects both alike.
func Measure(ctx context.Context, workspaceDir string, target, baseline Target, o Options) (Report, error) {
	o = o.withDefaults()
	dir, err := os.MkdirTemp("", "coldstart-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(dir)
	stats := make([]Stats, 2)
	bins := make([]string, 2)
	for i, t := range []Target{target, baseline} {
		sub := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			return Report{}, err
		}
		if bins[i], err = Build(ctx, workspaceDir, t.Package, sub); err != nil {
			return Report{}, err
		}
		fi, err := os.Stat(bins[i])
		if err != nil {
			return Report{}, err
		}
		stats[i] = Stats{Name: t.Name, Package: t.Package, BinaryBytes: fi.Size()}
	}
	for run := 0; run < o.Runs; run++ {
		for i, t := range []Target{target, baseline} {
			s, err := Run(ctx, bins[i], t, o)
			if err != nil {
				return Report{}, fmt.Errorf("coldstart: %s run %d: %w", t.Name, run+1, err)
			}
			stats[i].Samples = append(stats[i].Samples, s)
		}
	}
	for i := range stats {
		summarise(&stats[i])
	}
	r := Report{Target: stats[0], Baseline: stats[1]}
	r.ReadyRatio = ratio(float64(r.Target.ReadyMedian), float64(r.Baseline.ReadyMedian))
	r.RSSRatio = ratio(float64(r.Target.RSSMedianKiB), float64(r.Baseline.RSSMedianKiB))
	r.SizeRatio = ratio(float64(r.Target.BinaryBytes), float64(r.Baseline.BinaryBytes))
	return r, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func summarise(s *Stats) {
	s.Runs = len(s.Samples)
	ready := make([]time.Duration, len(s.Samples))
	rss := make([]int64, len(s.Samples))
	for i, x := range s.Samples {
		ready[i], rss[i] = x.Ready, x.RSSKiB
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i] < ready[j] })
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	s.ReadyMedian, s.ReadyP90 = ready[rank(len(ready), 50)], ready[rank(len(ready), 90)]
	s.RSSMedianKiB, s.RSSP90KiB = rss[rank(len(rss), 50)], rss[rank(len(rss), 90)]
}

// rank is the nearest-rank percentile index.
func rank(n, p int) int {
	i := (p*n+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return i
}

// Run execs bin once: it returns the time from exec to the first 200 on t.ReadyPath and the
// resident set size after o.Idle, then stops the process with SIGTERM.
func Run(ctx context.Context, bin string, t Target, o Options) (Sample, error) {
	o = o.withDefaults()
	port, err := freePort()
	if err != nil {
		return Sample{}, err
	}
	var output bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "LISTEN_HOST=127.0.0.1", "DRAIN_TIMEOUT=0s")
	cmd.Env = append(cmd.Env, t.Env...)
	out := &limitedBuffer{b: &output, max: 64 << 10} // one writer: exec copies both streams in one goroutine
	cmd.Stdout, cmd.Stderr = out, out
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, t.ReadyPath)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Sample{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
					return nil // the baseline has no signal handler: killed by SIGTERM is a clean stop
				}
			}
			return err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("did not exit within 10s of SIGTERM")
		}
	}

	var ready time.Duration
	deadline := start.Add(o.Timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = time.Since(start)
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return Sample{}, fmt.Errorf("exited before ready (%v):\n%s", err, output.String())
		case <-ctx.Done():
			_ = stop()
			return Sample{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stop()
			return Sample{}, fmt.Errorf("not ready within %s:\n%s", o.Timeout, output.String())
		}
	}
	select {
	case <-time.After(o.Idle):
	case <-ctx.Done():
	}
	rss, rssErr := vmRSS(cmd.Process.Pid)
	if err := stop(); err != nil {
		return Sample{}, fmt.Errorf("stop: %w\n%s", err, output.String())
	}
	if rssErr != nil {
		return Sample{}, rssErr
	}
	return Sample{Ready: ready, RSSKiB: rss}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// vmRSS reads the resident set size in KiB from /proc/<pid>/status.
func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("coldstart: no VmRSS in /proc status")
}

// limitedBuffer keeps at most max bytes of a child's output (for error messages).
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

// Table renders r as a plain-text table.
func (r Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %5s %12s %12s %12s %12s %12s\n", "binary", "runs", "ready p50", "ready p90", "rss p50", "rss p90", "size")
	for _, s := range []Stats{r.Target, r.Baseline} {
		fmt.Fprintf(&b, "%-10s %5d %12s %12s %9d KiB %9d KiB %8.1f MiB\n", s.Name, s.Runs,
			s.ReadyMedian.Round(10*time.Microsecond), s.ReadyP90.Round(10*time.Microsecond),
			s.RSSMedianKiB, s.RSSP90KiB, float64(s.BinaryBytes)/(1<<20))
	}
	fmt.Fprintf(&b, "ratio %s/%s: ready x%.2f, rss x%.2f, size x%.2f\n", r.Target.Name, r.Baseline.Name, r.ReadyRatio, r.RSSRatio, r.SizeRatio)
	return b.String()
}
