// Package coldstart measures how fast a function binary becomes ready and how much memory it
// holds idle, against baselines: a minimal net/http server (hello), and, for functions that
// use the database, a minimal server that holds one pgx connection and has run one query
// before it listens (hellopg), so the connection's cost is in that baseline too. Each run
// execs the binary with PORT set to a free 127.0.0.1 port, polls the readiness path until it
// answers 200 (the time from exec to that 200 is the cold start), reads the CPU time the
// process has used so far, waits for the process to idle, reads VmRSS from
// /proc/<pid>/status, and stops it with SIGTERM.
//
// CPU time to ready is the sum over the process's threads of the time spent on a CPU
// (/proc/<pid>/task/*/schedstat) when readiness is seen. On a loaded machine the wall-clock
// figure mostly measures waiting for a CPU; the CPU figure measures the work the binary does
// and moves much less with the load, so it is the one to compare changes with when other jobs
// share the machine. Runqueue wait (time runnable but not running) is reported beside it.
//
// Targets and baselines are run interleaved, in an order rotated every round, so that machine
// noise and position effects (e.g. running just after another binary exited) affect all alike.
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
	"slices"
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
	// BuildFlags are extra go build flags for every binary, e.g. the production build's
	// -trimpath -ldflags=-s -w, or -tags lambda.norpc.
	BuildFlags []string
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
	Ready    time.Duration `json:"ready_ns"`
	CPU      time.Duration `json:"cpu_ns"`       // on-CPU time of all threads when ready was seen
	RunqWait time.Duration `json:"runq_wait_ns"` // time runnable but waiting for a CPU, same moment
	RSSKiB   int64         `json:"rss_kib"`
}

// Stats summarise the runs of one target.
type Stats struct {
	Name         string        `json:"name"`
	Package      string        `json:"package"`
	BinaryBytes  int64         `json:"binary_bytes"`
	Runs         int           `json:"runs"`
	ReadyMedian  time.Duration `json:"ready_median_ns"`
	ReadyP90     time.Duration `json:"ready_p90_ns"`
	CPUMedian    time.Duration `json:"cpu_median_ns"`
	CPUP90       time.Duration `json:"cpu_p90_ns"`
	RunqMedian   time.Duration `json:"runq_wait_median_ns"`
	RSSMedianKiB int64         `json:"rss_median_kib"`
	RSSP90KiB    int64         `json:"rss_p90_kib"`
	Samples      []Sample      `json:"samples"`
}

// Report is the result of Measure: the measured target, the baselines, other binaries measured
// in the same runs, and the target's ratios to each baseline.
//
// Baseline and the three ratio fields are the first baseline (hello) and the target's ratios to
// it, as before; Baselines and Others hold the rest, and Ratios the target against every
// baseline, the first included.
type Report struct {
	Target     Stats   `json:"target"`
	Baseline   Stats   `json:"baseline"`
	ReadyRatio float64 `json:"ready_median_ratio"` // target / baseline
	RSSRatio   float64 `json:"rss_median_ratio"`
	SizeRatio  float64 `json:"binary_size_ratio"`

	Baselines []Stats      `json:"baselines,omitempty"` // further baselines, e.g. hellopg
	Others    []Stats      `json:"others,omitempty"`    // further binaries (e.g. a breakdown ladder)
	Ratios    []Comparison `json:"ratios"`              // target against every baseline
}

// Comparison is the target's figures divided by one baseline's.
type Comparison struct {
	Baseline      string  `json:"baseline"`
	ReadyRatio    float64 `json:"ready_median_ratio"`
	ReadyP90Ratio float64 `json:"ready_p90_ratio"`
	// ReadyPairedRatio is the median over rounds of target/baseline within the round: the two
	// ran seconds apart, so a change of machine load between rounds cancels out.
	ReadyPairedRatio float64 `json:"ready_paired_median_ratio"`
	CPURatio         float64 `json:"cpu_median_ratio"`
	RSSRatio         float64 `json:"rss_median_ratio"`
	SizeRatio        float64 `json:"binary_size_ratio"`
}

func compare(t, b Stats) Comparison {
	return Comparison{
		Baseline:         b.Name,
		ReadyRatio:       ratio(float64(t.ReadyMedian), float64(b.ReadyMedian)),
		ReadyP90Ratio:    ratio(float64(t.ReadyP90), float64(b.ReadyP90)),
		ReadyPairedRatio: pairedRatio(t.Samples, b.Samples),
		CPURatio:         ratio(float64(t.CPUMedian), float64(b.CPUMedian)),
		RSSRatio:         ratio(float64(t.RSSMedianKiB), float64(b.RSSMedianKiB)),
		SizeRatio:        ratio(float64(t.BinaryBytes), float64(b.BinaryBytes)),
	}
}

// Plan is what MeasureAll runs: the target, at least one baseline (the first is Report.Baseline)
// and any other binaries to measure in the same interleaved runs.
type Plan struct {
	Target    Target
	Baselines []Target
	Others    []Target
}

// Build compiles pkg into dir with go build and any extra flags, run in workspaceDir (the
// go.work root), and returns the binary's path.
func Build(ctx context.Context, workspaceDir, pkg, dir string, flags ...string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = workspaceDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("coldstart: go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// Measure builds target and baseline into a temporary directory and runs each o.Runs times,
// alternating between them so that machine noise affects both alike.
func Measure(ctx context.Context, workspaceDir string, target, baseline Target, o Options) (Report, error) {
	return MeasureAll(ctx, workspaceDir, Plan{Target: target, Baselines: []Target{baseline}}, o)
}

// MeasureAll builds every binary of p into a temporary directory and runs each o.Runs times.
// Every round runs each binary once, starting one further along the list each round.
func MeasureAll(ctx context.Context, workspaceDir string, p Plan, o Options) (Report, error) {
	o = o.withDefaults()
	if len(p.Baselines) == 0 {
		return Report{}, errors.New("coldstart: no baseline")
	}
	targets := append(append([]Target{p.Target}, p.Baselines...), p.Others...)
	dir, err := os.MkdirTemp("", "coldstart-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(dir)
	stats := make([]Stats, len(targets))
	bins := make([]string, len(targets))
	for i, t := range targets {
		sub := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			return Report{}, err
		}
		if bins[i], err = Build(ctx, workspaceDir, t.Package, sub, o.BuildFlags...); err != nil {
			return Report{}, err
		}
		fi, err := os.Stat(bins[i])
		if err != nil {
			return Report{}, err
		}
		stats[i] = Stats{Name: t.Name, Package: t.Package, BinaryBytes: fi.Size()}
	}
	for run := 0; run < o.Runs; run++ {
		for k := range targets {
			i := (run + k) % len(targets)
			s, err := Run(ctx, bins[i], targets[i], o)
			if err != nil {
				return Report{}, fmt.Errorf("coldstart: %s run %d: %w", targets[i].Name, run+1, err)
			}
			stats[i].Samples = append(stats[i].Samples, s)
		}
	}
	for i := range stats {
		summarise(&stats[i])
	}
	nb := len(p.Baselines)
	r := Report{Target: stats[0], Baseline: stats[1], Baselines: stats[2 : 1+nb], Others: stats[1+nb:]}
	for _, b := range stats[1 : 1+nb] {
		r.Ratios = append(r.Ratios, compare(r.Target, b))
	}
	r.ReadyRatio, r.RSSRatio, r.SizeRatio = r.Ratios[0].ReadyRatio, r.Ratios[0].RSSRatio, r.Ratios[0].SizeRatio
	if len(r.Baselines) == 0 {
		r.Baselines = nil
	}
	if len(r.Others) == 0 {
		r.Others = nil
	}
	return r, nil
}

// pairedRatio is the median of a[i].Ready/b[i].Ready over the rounds both have.
func pairedRatio(a, b []Sample) float64 {
	n := min(len(a), len(b))
	if n == 0 {
		return 0
	}
	r := make([]float64, 0, n)
	for i := range n {
		r = append(r, ratio(float64(a[i].Ready), float64(b[i].Ready)))
	}
	slices.Sort(r)
	return r[rank(n, 50)]
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func summarise(s *Stats) {
	s.Runs = len(s.Samples)
	if s.Runs == 0 {
		return
	}
	ready := make([]time.Duration, len(s.Samples))
	cpu := make([]time.Duration, len(s.Samples))
	runq := make([]time.Duration, len(s.Samples))
	rss := make([]int64, len(s.Samples))
	for i, x := range s.Samples {
		ready[i], cpu[i], runq[i], rss[i] = x.Ready, x.CPU, x.RunqWait, x.RSSKiB
	}
	for _, v := range [][]time.Duration{ready, cpu, runq} {
		slices.Sort(v)
	}
	slices.Sort(rss)
	p50, p90 := rank(len(ready), 50), rank(len(ready), 90)
	s.ReadyMedian, s.ReadyP90 = ready[p50], ready[p90]
	s.CPUMedian, s.CPUP90 = cpu[p50], cpu[p90]
	s.RunqMedian = runq[p50]
	s.RSSMedianKiB, s.RSSP90KiB = rss[p50], rss[p90]
}

// rank is the nearest-rank percentile index.
func rank(n, p int) int {
	i := (p*n+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return i
}

// Run execs bin once: it returns the time from exec to the first 200 on t.ReadyPath, the CPU
// time used until then and the resident set size after o.Idle, then stops the process with
// SIGTERM.
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
	var cpu, runq time.Duration
	var cpuErr error
	deadline := start.Add(o.Timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = time.Since(start)
				cpu, runq, cpuErr = schedTimes(cmd.Process.Pid)
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
	if cpuErr != nil {
		return Sample{}, cpuErr
	}
	return Sample{Ready: ready, CPU: cpu, RunqWait: runq, RSSKiB: rss}, nil
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

// schedTimes sums, over the threads of pid, the time spent on a CPU and the time spent waiting
// for one (the first two fields of /proc/<pid>/task/<tid>/schedstat, in nanoseconds). Threads
// that have already exited are not counted; the Go runtime keeps its threads.
func schedTimes(pid int) (cpu, runq time.Duration, err error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited meanwhile
			}
			return 0, 0, err
		}
		on, wait, err := parseSchedstat(string(b))
		if err != nil {
			return 0, 0, fmt.Errorf("coldstart: %s/%s/schedstat: %w", dir, t.Name(), err)
		}
		cpu += on
		runq += wait
	}
	return cpu, runq, nil
}

// parseSchedstat reads "<on-cpu ns> <runqueue wait ns> <timeslices>".
func parseSchedstat(s string) (on, wait time.Duration, err error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("want at least 2 fields, got %q", s)
	}
	a, err1 := strconv.ParseInt(f[0], 10, 64)
	b, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return time.Duration(a), time.Duration(b), nil
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

// Table renders r as a plain-text table: one row per binary (target, others, baselines), then
// the target's ratios to each baseline.
func (r Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %5s %11s %11s %10s %10s %10s %10s %10s %9s\n", "binary", "runs",
		"ready p50", "ready p90", "cpu p50", "cpu p90", "runq p50", "rss p50", "rss p90", "size")
	rows := append(append([]Stats{r.Target}, r.Others...), r.Baseline)
	rows = append(rows, r.Baselines...)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
	for _, s := range rows {
		fmt.Fprintf(&b, "%-12s %5d %11s %11s %10s %10s %10s %6d KiB %6d KiB %5.1f MiB\n", s.Name, s.Runs,
			ms(s.ReadyMedian), ms(s.ReadyP90), ms(s.CPUMedian), ms(s.CPUP90), ms(s.RunqMedian),
			s.RSSMedianKiB, s.RSSP90KiB, float64(s.BinaryBytes)/(1<<20))
	}
	for _, c := range r.Ratios {
		fmt.Fprintf(&b, "ratio %s/%s: ready p50 x%.2f, ready p90 x%.2f, ready paired p50 x%.2f, cpu x%.2f, rss x%.2f, size x%.2f\n",
			r.Target.Name, c.Baseline, c.ReadyRatio, c.ReadyP90Ratio, c.ReadyPairedRatio, c.CPURatio, c.RSSRatio, c.SizeRatio)
	}
	return b.String()
}
