package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/logging"
)

// serversEnv, when set to a number, makes the test binary serve that many integrations'
// /health instead of running tests: the benchmark's child process (serveChild).
const serversEnv = "HEALTH_PROBE_BENCH_SERVERS"

// Shares of the benchmark's integrations that answer slowly and never: 5% each (the issue's
// Measure), the rest at once.
const (
	slowEvery  = 20 // index % 20 == 0: answers after slowAnswer
	neverEvery = 20 // index % 20 == 1: never answers
	slowAnswer = 10 * time.Second
)

// benchAddr is the loopback address of the benchmark's i-th integration: 127.1.a.b, each its
// own host for the per-host limit (all of 127/8 is loopback on Linux).
func benchAddr(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

// serveChild runs in the child process: it listens on n loopback addresses, prints each
// address and then "ready", and serves until its standard input closes (the parent ended).
func serveChild() int {
	n, err := strconv.Atoi(os.Getenv(serversEnv))
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "bad", serversEnv)
		return 2
	}
	kinds := map[string]int{} // local address -> index
	var listeners []net.Listener
	for i := range n {
		l, err := net.Listen("tcp", benchAddr(i)+":0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			return 1
		}
		kinds[l.Addr().String()] = i
		listeners = append(listeners, l)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		i := kinds[addr.String()]
		switch {
		case i%slowEvery == 0:
			select {
			case <-time.After(slowAnswer):
			case <-r.Context().Done():
				return
			}
		case i%neverEvery == 1:
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}), ErrorLog: nil}
	out := bufio.NewWriter(os.Stdout)
	for _, l := range listeners {
		go srv.Serve(l)
		fmt.Fprintln(out, l.Addr().String())
	}
	fmt.Fprintln(out, "ready")
	out.Flush()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startServers re-executes the test binary as the servers' process and returns the addresses.
func startServers(b *testing.B, n int) []string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serversEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the child exits when its input ends
		_ = cmd.Wait()
	})
	addrs := make([]string, 0, n)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		addrs = append(addrs, sc.Text())
	}
	if len(addrs) != n {
		b.Fatalf("servers: %d addresses, want %d (%v)", len(addrs), n, sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return addrs
}

// BenchmarkSweep10k is the Measure: one sweep over 10,000 published integrations
// served by a child process (5% answering in 10 s, 5% never), with the default settings
// (PROBE_TIMEOUT 10s, PROBE_CONCURRENCY 1536, PROBE_PER_HOST 4). It reports the wall time per
// steady-state sweep (ns/op) and of the first, cold sweep (cold-sweep-s), the probe's peak Go
// heap and peak RSS over both (MiB), and the last sweep's outcome counts. It is slow and opens
// 10,000 sockets, so it runs only when -bench names it (-v logs each sweep):
//
//	go test -run '^$' -bench Sweep10k -benchtime 1x ./functions/health-probe/
func BenchmarkSweep10k(b *testing.B) {
	if testing.Short() || !strings.Contains(flag.Lookup("test.bench").Value.String(), "Sweep10k") {
		b.Skip("run with -bench Sweep10k (slow; not under -short)")
	}
	const n = 10000
	bd := setupProbe(b, func(c *Config) {
		c.Allow = loopback8()
		c.Timeout, c.DegradedAfter = DefaultTimeout, DefaultDegradedAfter
		c.Concurrency, c.PerHost = DefaultConcurrency, DefaultPerHost
	})
	addrs := startServers(b, n)
	names, urls := make([]string, n), make([]string, n)
	for i, a := range addrs {
		names[i], urls[i] = fmt.Sprintf("bench-%05d", i), "http://"+a
	}
	bd.exec(b, `INSERT INTO integrations (developer_id, name, display_name, type, base_url, is_published, published_at)
		SELECT 'dev_1', name, name, 'widget', url, true, now() FROM unnest($1::text[], $2::text[]) AS t(name, url)`, names, urls)

	// Peak memory: the RSS high-water mark, reset before the sweeps (Linux clear_refs 5), and
	// the Go heap sampled every 10 ms.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	runtime.GC()
	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peakHeap.Load() {
				peakHeap.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	// The first sweep finds every integration unknown, writes 9,000 transitions and knows
	// nothing of who is slow: it is timed apart (cold-sweep-s); the timed sweeps are the
	// steady state, a minute apart.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx := logging.With(context.Background(), log)
	cold := time.Now()
	if _, err := bd.svc.Sweep(ctx, t0.Add(-time.Minute)); err != nil {
		b.Fatal(err)
	}
	coldTime := time.Since(cold)
	var last Summary
	b.ResetTimer()
	for i := range b.N {
		at := t0.Add(time.Duration(i) * time.Minute)
		s, err := bd.svc.Sweep(ctx, at)
		if err != nil {
			b.Fatal(err)
		}
		last = s
	}
	b.StopTimer()
	close(stop)
	<-sampled
	if last.Probed != n || last.Offline < n/10 || last.Healthy+last.Degraded+last.Offline != n {
		b.Fatalf("sweep: %+v", last)
	}
	b.ReportMetric(coldTime.Seconds(), "cold-sweep-s")
	b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MiB")
	if rss, ok := peakRSS(); ok {
		b.ReportMetric(rss, "peak-RSS-MiB")
	}
	b.ReportMetric(float64(last.Healthy), "healthy")
	b.ReportMetric(float64(last.Degraded), "degraded")
	b.ReportMetric(float64(last.Offline), "offline")
	if n := bd.count(b, `SELECT count(*) FROM outbox WHERE type = $1`, events.TypeHealthChanged); n < last.Transitions {
		b.Fatalf("%d health.changed rows, fewer than the %d transitions", n, last.Transitions)
	}
}

// peakRSS reads this process's resident-set high-water mark (VmHWM) in MiB.
func peakRSS() (float64, bool) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}
