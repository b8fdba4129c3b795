package stack

import (
	"context"
	"errors"
	"fmt"

	"github.com/myscrollr/connect/infra/local/dispatch"
	"github.com/myscrollr/connect/infra/local/knative"
)

// startEventing runs the dispatcher: what Knative Eventing does with the manifests of
// infra/knative (Broker Triggers, PingSources, KafkaSources), against this stack's Kafka and
// functions.
func (s *Stack) startEventing(ctx context.Context) error {
	m := s.manifests
	s.dropIdleSchedules(m)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		done <- dispatch.Run(ctx, dispatch.Config{
			Brokers:      s.Brokers,
			Manifests:    m,
			Resolve:      s.resolve,
			Logger:       s.log.With("component", "dispatcher"),
			DisablePings: s.cfg.DisablePings,
			Tokens:       s.tokens.Token,
		})
	}()
	s.stopEventing = func() error {
		cancel()
		return <-done
	}
	s.log.Info("dispatcher started", "triggers", len(m.Triggers),
		"pingsources", len(m.PingSources), "kafkasources", len(m.KafkaSources))
	return nil
}

// dropIdleSchedules removes the PingSources whose sink is a Service this stack does not run:
// their ticks would only fail every minute. (Trigger routes stay: their events must not be
// lost, and the dead-letter topic keeps them for replay.)
func (s *Stack) dropIdleSchedules(m *knative.Manifests) {
	kept := m.PingSources[:0]
	for _, ps := range m.PingSources {
		if ref := ps.Sink.Ref; ref != nil && ref.Kind == "Service" {
			if _, err := s.resolve(ref.Name); err != nil {
				s.log.Info("schedule not run: its function is not running", "pingsource", ps.Name, "service", ref.Name)
				continue
			}
		}
		kept = append(kept, ps)
	}
	m.PingSources = kept
}

// resolve maps a Knative Service name to the base URL of the function serving it.
func (s *Stack) resolve(service string) (string, error) {
	if u, ok := s.cfg.ExtraServices[service]; ok {
		return u, nil
	}
	if u, ok := s.Functions[service]; ok {
		return u, nil
	}
	return "", fmt.Errorf("service %q is not running in this stack: %w", service, errNotRunning)
}

var errNotRunning = errors.New("not running")
