package main

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	ok := map[string]string{
		"DATABASE_URL":  "postgres://relay@db.internal:5432/connect",
		"KAFKA_BROKERS": "k1:9092, k2:9092,",
	}
	c, err := ConfigFromEnv(env(ok))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.KafkaBrokers) != 2 || c.KafkaBrokers[1] != "k2:9092" || c.Slot != "connect_relay" ||
		c.Publication != "connect_outbox" || c.StatusInterval != 10*time.Second || c.Retention != 24*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}

	tests := []struct {
		name string
		set  map[string]string
		want []string // substrings of the error
	}{
		{"missing", map[string]string{"DATABASE_URL": "", "KAFKA_BROKERS": ""}, []string{"DATABASE_URL: required", "KAFKA_BROKERS: required"}},
		{"bad url", map[string]string{"DATABASE_URL": "postgres://u:secret@host:notaport/db"}, []string{"DATABASE_URL: not a valid"}},
		{"broker without port", map[string]string{"KAFKA_BROKERS": "kafka"}, []string{`KAFKA_BROKERS: "kafka" is not host:port`}},
		{"slot injection", map[string]string{"RELAY_SLOT": "x; DROP TABLE outbox"}, []string{"RELAY_SLOT:"}},
		{"publication case", map[string]string{"RELAY_PUBLICATION": "Outbox"}, []string{"RELAY_PUBLICATION:"}},
		{"duration", map[string]string{"RELAY_STATUS_INTERVAL": "often"}, []string{"RELAY_STATUS_INTERVAL: \"often\""}},
		{"tiny interval", map[string]string{"RELAY_STATUS_INTERVAL": "1ms"}, []string{"RELAY_STATUS_INTERVAL: 1ms is below"}},
		{"negative retention", map[string]string{"RELAY_RETENTION": "-1h"}, []string{"RELAY_RETENTION: must not be negative"}},
		{"in flight", map[string]string{"RELAY_MAX_IN_FLIGHT": "0"}, []string{"RELAY_MAX_IN_FLIGHT: 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range ok {
				m[k] = v
			}
			for k, v := range tt.set {
				m[k] = v
			}
			_, err := ConfigFromEnv(env(m))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %q", err)
			}
		})
	}
	zero := map[string]string{"RELAY_RETENTION": "0"}
	for k, v := range ok {
		zero[k] = v
	}
	if c, err := ConfigFromEnv(env(zero)); err != nil || c.Retention != 0 {
		t.Fatalf("RELAY_RETENTION=0 keeps rows: %v %v", c.Retention, err)
	}
}
