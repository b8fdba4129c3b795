package runtime

import (
	"errors"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's own collectors, registered on the function's registry.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	events   *prometheus.CounterVec
	types    *labelSet
}

func newMetrics(reg *prometheus.Registry, function string) (*metrics, error) {
	constLabels := prometheus.Labels{"function": function}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connect_http_requests_total", Help: "HTTP requests served, by route, method and status code.",
			ConstLabels: constLabels,
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "connect_http_request_duration_seconds", Help: "HTTP request latency, by route and method.",
			ConstLabels: constLabels, Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connect_events_total", Help: "CloudEvents received, by type and outcome (ok, retry, permanent, malformed).",
			ConstLabels: constLabels,
		}, []string{"type", "outcome"}),
		types: &labelSet{max: 100},
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	m.duration, err = register(reg, m.duration)
	if err != nil {
		return nil, err
	}
	m.events, err = register(reg, m.events)
	return m, err
}

// register registers c, or returns the identical collector already registered (Serve may run
// more than once on one registry, e.g. in tests or in the Lambda adapter).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) event(eventType, outcome string) {
	m.events.WithLabelValues(m.types.label(eventType), outcome).Inc()
}

// labelSet bounds the cardinality of a label fed by untrusted input (event types): the first
// max distinct values are kept, later ones become "other".
type labelSet struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

func (s *labelSet) label(v string) string {
	if v == "" {
		return "none"
	}
	if len(v) > 128 || !utf8.ValidString(v) {
		return "other"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[v]; ok {
		return v
	}
	if len(s.seen) >= s.max {
		return "other"
	}
	if s.seen == nil {
		s.seen = make(map[string]struct{})
	}
	s.seen[v] = struct{}{}
	return v
}
