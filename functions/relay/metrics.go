package main

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the relay's Prometheus metrics (names in the package documentation).
type metrics struct {
	events     prometheus.Counter
	invalid    prometheus.Counter
	retained   prometheus.Gauge
	lastAck    prometheus.Gauge
	reconnects *prometheus.CounterVec
	lag        prometheus.GaugeFunc
	stalled    prometheus.GaugeFunc
	standby    prometheus.GaugeFunc
}

func newMetrics(r *Relay) metrics {
	m := metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "connect_relay_events_total",
			Help: "Outbox events acknowledged by Kafka (replays after a restart included).",
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "connect_relay_invalid_rows_total",
			Help: "Outbox rows that were not valid CloudEvents, sent to a dead-letter topic.",
		}),
		retained: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "connect_relay_retained_wal_bytes",
			Help: "WAL the replication slot holds: pg_current_wal_lsn() - confirmed_flush_lsn.",
		}),
		lastAck: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "connect_relay_last_ack_timestamp",
			Help: "Unix time of the last Kafka acknowledgement.",
		}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connect_relay_reconnects_total",
			Help: "Replication sessions restarted after a failure (target=postgres); failed Kafka broker connection attempts (target=kafka).",
		}, []string{"target"}),
		lag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "connect_relay_lag_seconds",
			Help: "Now minus the commit time of the oldest transaction not yet confirmed; 0 when caught up.",
		}, r.lag),
		stalled: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "connect_relay_stalled",
			Help: "1 while the relay has no replication stream or Kafka acknowledges nothing, else 0.",
		}, func() float64 {
			if r.stalledReason() != "" {
				return 1
			}
			return 0
		}),
		standby: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "connect_relay_standby",
			Help: "1 while another relay holds the replication slot and this one waits to take it over, else 0.",
		}, func() float64 {
			if r.standby() {
				return 1
			}
			return 0
		}),
	}
	// Both targets exist from the start, so a dashboard's rate() has a baseline.
	m.reconnects.WithLabelValues("postgres")
	m.reconnects.WithLabelValues("kafka")
	return m
}

func (m metrics) register(reg prometheus.Registerer) error {
	return errors.Join(
		reg.Register(m.events), reg.Register(m.invalid), reg.Register(m.retained), reg.Register(m.lastAck),
		reg.Register(m.reconnects), reg.Register(m.lag), reg.Register(m.stalled), reg.Register(m.standby))
}
