package main

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
)

// TestUptimeFromChecks drives the recording path (loadTargets and record, as a sweep does,
// without the network) minute by minute through a scripted six-hour timeline with an outage of
// the probe itself, and compares each listing's uptime with the ground truth: the scripted
// world, counted minute by minute over the time the probe observed.
func TestUptimeFromChecks(t *testing.T) {
	b := setupProbe(t, nil)
	const minutes = 360
	// The probe does not run in [100, 110) (a gap longer than maxGap: unobserved) nor in
	// [200, 202) (shorter than maxGap: observed, counted with the check before it).
	probeRuns := func(m int) bool { return (m < 100 || m >= 110) && (m < 200 || m >= 202) }
	worlds := map[string]func(m int) bool{ // is the integration up during minute m
		"always-up":   func(int) bool { return true },
		"always-down": func(int) bool { return false },
		"two-outages": func(m int) bool { return (m < 50 || m >= 80) && (m < 150 || m >= 152) },
		"over-gap":    func(m int) bool { return m < 95 || m >= 120 },
		"flapping":    func(m int) bool { return (m/7)%2 == 0 }, // steady across [199, 202]
	}
	ids := map[string]string{}
	worldOf := map[string]func(int) bool{}
	for name, w := range worlds {
		id := b.integration(t, name, "https://"+name+".example")
		ids[name], worldOf[id] = id, w
	}
	ctx := context.Background()
	conn, err := b.fn.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	last := 0
	for m := range minutes {
		if !probeRuns(m) {
			continue
		}
		at := t0.Add(time.Duration(m) * time.Minute)
		targets, err := loadTargets(ctx, conn, at)
		if err != nil {
			t.Fatal(err)
		}
		results := make([]Result, len(targets))
		for i, tg := range targets {
			results[i] = Result{Status: events.HealthOffline, Reason: "scripted"}
			if worldOf[tg.ID](m) {
				results[i] = Result{Status: events.HealthHealthy, HTTPStatus: 200, Elapsed: 10 * time.Millisecond}
			}
		}
		if _, err := record(ctx, conn, at, targets, results); err != nil {
			t.Fatal(err)
		}
		last = m
	}
	// Ground truth: minutes [0, last) minus the unobserved gap [99, 110) (from the last check
	// before the outage to the first after it).
	for name, w := range worlds {
		var up, observed int
		for m := range last {
			if m >= 99 && m < 110 {
				continue
			}
			observed++
			if w(m) {
				up++
			}
		}
		truth := 100 * float64(up) / float64(observed)
		l := b.listing(t, ids[name])
		for window, got := range map[string]*float64{"24h": l.U24, "7d": l.U7, "30d": l.U30} {
			if got == nil || math.Abs(*got-truth) > 0.1 {
				t.Errorf("%s: uptime %s = %v, ground truth %.4f", name, window, deref(got), truth)
			}
		}
	}
	// Rolled up: a steady integration has one span per observed stretch, not one per check.
	if n := b.count(t, `SELECT count(*) FROM integration_uptime_spans WHERE integration_id = $1`, ids["always-up"]); n != 2 {
		t.Errorf("always-up: %d spans, want 2 (before and after the probe's outage)", n)
	}
	if n := b.count(t, `SELECT count(*) FROM integration_uptime_spans WHERE integration_id = $1`, ids["two-outages"]); n != 6 {
		t.Errorf("two-outages: %d spans, want 6 (up, down, up, gap, up, down, up)", n)
	}
}

// TestUptimeWindows seeds 40 days of random spans (second resolution, with unobserved gaps),
// records one check, and compares the 24 h, 7 d and 30 d uptime with the ground truth
// counted second by second.
func TestUptimeWindows(t *testing.T) {
	b := setupProbe(t, nil)
	rng := rand.New(rand.NewPCG(10, 2026))
	now := t0.Add(40 * 24 * time.Hour)
	const seconds = 40 * 24 * 3600
	type span struct {
		start, end int // seconds from now-40d
		up         bool
	}
	ids := make([]string, 4)
	truths := make([][]int8, len(ids)) // per second: 0 unobserved, 1 up, -1 down
	for k := range ids {
		ids[k] = b.integration(t, "windows-"+string(rune('a'+k)), "https://w.example")
		upRate := []float64{0.99, 0.9, 0.5, 0.2}[k]
		truth := make([]int8, seconds)
		var spans []span
		cur := 0
		for cur < seconds-3600 {
			d := 1 + rng.IntN(20000)
			if cur+d > seconds-3600 {
				d = seconds - 3600 - cur
			}
			spans = append(spans, span{cur, cur + d, rng.Float64() < upRate})
			cur += d
			if rng.Float64() < 0.15 {
				cur += 200 + rng.IntN(5000) // unobserved
			}
		}
		spans = append(spans, span{cur, seconds - 30, true}) // the check at now extends it
		batch := [][]any{}
		for _, s := range spans {
			if s.start >= s.end {
				continue
			}
			v := int8(-1)
			if s.up {
				v = 1
			}
			for i := s.start; i < s.end; i++ {
				truth[i] = v
			}
			batch = append(batch, []any{ids[k], now.Add(time.Duration(s.start-seconds) * time.Second),
				now.Add(time.Duration(s.end-seconds) * time.Second), s.up})
		}
		for i := seconds - 30; i < seconds; i++ {
			truth[i] = 1
		}
		truths[k] = truth
		for _, row := range batch {
			b.exec(t, `INSERT INTO integration_uptime_spans (integration_id, started_at, ended_at, up) VALUES ($1, $2, $3, $4)`, row...)
		}
	}
	ctx := context.Background()
	conn, err := b.fn.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	targets, err := loadTargets(ctx, conn, now)
	if err != nil {
		t.Fatal(err)
	}
	results := make([]Result, len(targets))
	for i := range results {
		results[i] = Result{Status: events.HealthHealthy, HTTPStatus: 200}
	}
	if _, err := record(ctx, conn, now, targets, results); err != nil {
		t.Fatal(err)
	}
	for k, id := range ids {
		l := b.listing(t, id)
		for _, w := range []struct {
			name  string
			hours int
			got   *float64
		}{{"24h", 24, l.U24}, {"7d", 168, l.U7}, {"30d", 720, l.U30}} {
			var up, observed int
			for _, v := range truths[k][seconds-w.hours*3600:] {
				if v != 0 {
					observed++
				}
				if v == 1 {
					up++
				}
			}
			truth := 100 * float64(up) / float64(observed)
			if w.got == nil || math.Abs(*w.got-truth) > 0.1 {
				t.Errorf("integration %d: uptime %s = %v, ground truth %.4f", k, w.name, deref(w.got), truth)
			} else if math.Abs(*w.got-truth) > 0.0051 {
				t.Errorf("integration %d: uptime %s = %v, ground truth %.4f: more than rounding apart", k, w.name, *w.got, truth)
			}
		}
	}
}
