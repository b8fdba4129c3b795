package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/inbox"
)

// The relay's maintenance loop runs the inbox retention: claims older than InboxRetention go,
// newer ones stay.
func TestRelayPrunesOldInboxClaims(t *testing.T) {
	b := newBundle(t)
	ctx := context.Background()
	if _, err := b.pool.Exec(ctx, `INSERT INTO processed_events (consumer, source, id, processed_at)
		SELECT 'uninstall', '/s', 'old' || g, now() - interval '2 hours' FROM generate_series(1, 20) AS g`); err != nil {
		t.Fatal(err)
	}
	if ok, err := inbox.Claim(ctx, b.pool, "uninstall", "/s", "fresh"); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	cfg := b.config()
	cfg.InboxRetention = time.Hour
	startRelay(t, cfg, Deps{})
	waitFor(t, "old claims pruned", func() bool {
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	if seen, err := inbox.Seen(ctx, b.pool, "uninstall", "/s", "fresh"); err != nil || !seen {
		t.Fatalf("the fresh claim is gone: %v, %v", seen, err)
	}
}

func TestConfigInboxRetention(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := m[k]; ok {
				return v
			}
			return map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/db", "KAFKA_BROKERS": "127.0.0.1:9092"}[k]
		}
	}
	if c, err := ConfigFromEnv(env(nil)); err != nil || c.InboxRetention != inbox.DefaultRetention {
		t.Fatalf("default InboxRetention = %v, %v", c.InboxRetention, err)
	}
	if c, err := ConfigFromEnv(env(map[string]string{"RELAY_INBOX_RETENTION": "0"})); err != nil || c.InboxRetention != 0 {
		t.Fatalf("RELAY_INBOX_RETENTION=0 keeps claims: %v, %v", c.InboxRetention, err)
	}
	for v, want := range map[string]string{"-1h": "RELAY_INBOX_RETENTION: must not be negative", "week": `RELAY_INBOX_RETENTION: "week" is not a duration`} {
		if _, err := ConfigFromEnv(env(map[string]string{"RELAY_INBOX_RETENTION": v})); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("RELAY_INBOX_RETENTION=%s: error %v, want %q", v, err, want)
		}
	}
}
