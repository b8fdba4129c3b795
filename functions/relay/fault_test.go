package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
)

// kafkaOutage is how long Kafka is unreachable in TestRelaySurvivesFaults.
const kafkaOutage = 30 * time.Second

// proxy is a loopback TCP proxy in front of the fake Kafka broker. The broker advertises the
// proxy's address, so every client connection goes through it and cut makes Kafka
// unreachable (connections dropped, new ones refused) until restore.
type proxy struct {
	addr   string // what clients dial
	target string // the broker's real address

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t *testing.T) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

// listen is the broker's kfake.ListenFn: a real listener that advertises the proxy.
func (p *proxy) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.target = ln.Addr().String()
	p.mu.Unlock()
	return advertised{ln, p}, nil
}

type advertised struct {
	net.Listener
	p *proxy
}

func (a advertised) Addr() net.Addr {
	addr, _ := net.ResolveTCPAddr("tcp", a.p.addr)
	return addr
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			p.wg.Go(func() { pipe(up, c) })
			p.wg.Go(func() { pipe(c, up) })
		}
	})
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// scrape reads one sample of the relay's /metrics ("" for a labelled series means the name
// followed by its labels, e.g. `connect_relay_reconnects_total{target="kafka"}`).
func scrape(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, rest)
			}
			return v
		}
	}
	t.Fatalf("metric %s not exposed", series)
	return 0
}

func readyStatus(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRelaySurvivesFaults restarts PostgreSQL under the relay, then cuts Kafka off for
// kafkaOutage, and checks the relay carries on by itself, loses nothing and shows the stall
// in its metrics and readiness. It takes about kafkaOutage plus a few seconds.
func TestRelaySurvivesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test; run without -short")
	}
	p := newProxy(t)
	b := newBundle(t, kfake.ListenFn(p.listen))
	if b.brokers[0] != p.addr {
		t.Fatalf("broker advertises %s, want the proxy %s", b.brokers[0], p.addr)
	}
	got := collect(t, b.brokers, "connect.events")

	r, reg := startRelay(t, b.config(), Deps{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- runtime.Serve(sctx, ln, runtime.Function{Name: "relay", Ready: r.Ready},
			runtime.Deps{Logger: testLogger(t), Registry: reg})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	all := writeN(t, b, "before", 100)
	waitFor(t, "first batch", func() bool { return got.has(all...) })

	if c := pgtest.Cluster(); c != nil {
		before := testutil.ToFloat64(r.m.reconnects.WithLabelValues("postgres"))
		if err := c.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "relay reconnected to PostgreSQL", func() bool {
			return testutil.ToFloat64(r.m.reconnects.WithLabelValues("postgres")) > before && r.Ready(context.Background()) == nil
		})
		b.pool.Reset() // its connections died with the server
		ids := writeN(t, b, "after-pg-restart", 100)
		all = append(all, ids...)
		waitFor(t, "events after the PostgreSQL restart", func() bool { return got.has(ids...) })
		t.Logf("PostgreSQL restart: postgres reconnects %v -> %v", before, scrape(t, base, `connect_relay_reconnects_total{target="postgres"}`))
	} else {
		t.Log("TEST_DATABASE_URL is set: no cluster of our own to restart; PostgreSQL fault skipped")
	}

	kafkaBefore := scrape(t, base, `connect_relay_reconnects_total{target="kafka"}`)
	cutAt := time.Now()
	p.cut()
	ids := writeN(t, b, "during-kafka-outage", 100)
	all = append(all, ids...)
	waitFor(t, "stalled=1 on /metrics", func() bool { return scrape(t, base, "connect_relay_stalled") == 1 })
	if code := readyStatus(t, base); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz during the outage = %d, want 503", code)
	}
	lag1 := scrape(t, base, "connect_relay_lag_seconds")
	waitFor(t, "failed Kafka connection attempts counted", func() bool {
		return scrape(t, base, `connect_relay_reconnects_total{target="kafka"}`) > kafkaBefore
	})
	time.Sleep(time.Until(cutAt.Add(kafkaOutage))) // hold the outage; not a timing assertion
	lag2 := scrape(t, base, "connect_relay_lag_seconds")
	if lag2 <= lag1 {
		t.Fatalf("lag did not grow during the outage: %v then %v", lag1, lag2)
	}
	t.Logf("Kafka outage %s: stalled=1, lag %.1fs -> %.1fs, kafka reconnect attempts %v -> %v",
		kafkaOutage, lag1, lag2, kafkaBefore, scrape(t, base, `connect_relay_reconnects_total{target="kafka"}`))
	p.restore(t)

	waitFor(t, "events written during the outage", func() bool { return got.has(ids...) })
	waitFor(t, "stall cleared", func() bool {
		return scrape(t, base, "connect_relay_stalled") == 0 && readyStatus(t, base) == http.StatusOK
	})
	if !got.has(all...) {
		t.Fatal("events lost")
	}
	waitFor(t, "caught up", func() bool { return scrape(t, base, "connect_relay_lag_seconds") == 0 })
}
