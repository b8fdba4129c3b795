package main

import (
	"strings"
	"testing"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/clip"
)

// TestNext runs scripted check sequences through the status machine and checks the status
// after every check, so each transition happens exactly where it should and nowhere else.
func TestNext(t *testing.T) {
	const (
		U = events.HealthUnknown
		H = events.HealthHealthy
		D = events.HealthDegraded
		O = events.HealthOffline
	)
	for _, tc := range []struct {
		name   string
		from   string
		checks string // one letter per check: h healthy, d degraded, o offline
		want   []string
	}{
		{"first success decides", U, "h", []string{H}},
		{"first degraded decides", U, "d", []string{D}},
		{"unknown waits for the third failure", U, "ooo", []string{U, U, O}},
		{"unknown: a success after two failures", U, "ooh", []string{U, U, H}},
		{"unknown: failures interrupted start again", U, "oohoo", []string{U, U, H, H, H}},
		{"healthy survives two failures", H, "oohoo", []string{H, H, H, H, H}},
		{"healthy to offline on the third failure", H, "ooo", []string{H, H, O}},
		{"degraded to offline on the third failure", D, "ooo", []string{D, D, O}},
		{"offline stays on more failures", O, "oooo", []string{O, O, O, O}},
		{"offline back after two successes", O, "hh", []string{O, H}},
		{"offline back to degraded by the second check", O, "hd", []string{O, D}},
		{"offline: an interrupted recovery starts again", O, "hohh", []string{O, O, O, H}},
		{"healthy and degraded follow each success", H, "dhdd", []string{D, H, D, D}},
		{"full cycle", U, "hhooohhoh", []string{H, H, H, H, O, O, H, H, H}},
		{"flapping never reaches offline", H, "ohohoh", []string{H, H, H, H, H, H}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := State{Status: tc.from}
			if tc.from == O {
				s.Failures = failuresToOffline
			}
			var got []string
			for _, c := range tc.checks {
				s = Next(s, map[rune]string{'h': H, 'd': D, 'o': O}[c])
				got = append(got, s.Status)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("%s from %s: statuses %v, want %v", tc.checks, tc.from, got, tc.want)
			}
		})
	}
}

// TestNextCounters: the runs are counted and reset as documented.
func TestNextCounters(t *testing.T) {
	s := State{Status: events.HealthHealthy}
	s = Next(s, events.HealthOffline)
	s = Next(s, events.HealthOffline)
	if s != (State{events.HealthHealthy, 2, 0}) {
		t.Fatalf("after two failures: %+v", s)
	}
	s = Next(s, events.HealthDegraded)
	if s != (State{events.HealthDegraded, 0, 1}) {
		t.Fatalf("after a success: %+v", s)
	}
}

func TestTruncate(t *testing.T) {
	if got := clip.Ellipsis("abc", 3); got != "abc" {
		t.Fatalf("truncate short = %q", got)
	}
	if got := clip.Ellipsis("aé", 2); got != "a…" {
		t.Fatalf("truncate in a rune = %q, want the partial rune dropped", got)
	}
}
