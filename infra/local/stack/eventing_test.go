package stack

import (
	"log/slog"
	"testing"

	"github.com/myscrollr/connect/infra/local/knative"
)

// Schedules of functions the stack does not run are dropped; the others, and schedules that
// send to a URI, are kept.
func TestDropIdleSchedules(t *testing.T) {
	s := &Stack{log: slog.New(slog.DiscardHandler), Functions: map[string]string{"health-probe": "http://127.0.0.1:1"}}
	ping := func(name string, d knative.Destination) knative.PingSource {
		return knative.PingSource{Object: knative.Object{Name: name}, Sink: d}
	}
	m := &knative.Manifests{PingSources: []knative.PingSource{
		ping("health", knative.Destination{Ref: &knative.Ref{Kind: "Service", Name: "health-probe"}}),
		ping("poll", knative.Destination{Ref: &knative.Ref{Kind: "Service", Name: "poll"}}),
		ping("external", knative.Destination{URI: "http://127.0.0.1:2/tick"}),
	}}
	s.dropIdleSchedules(m)
	var got []string
	for _, p := range m.PingSources {
		got = append(got, p.Name)
	}
	if len(got) != 2 || got[0] != "health" || got[1] != "external" {
		t.Fatalf("kept %v, want [health external]", got)
	}
}
