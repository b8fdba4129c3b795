package main

import (
	"context"
	"testing"

	"github.com/myscrollr/connect/shared/db"
)

// The relay's own least-privilege login role (db.LoginRole("relay"): REPLICATION, member of
// connect_relay) is enough for everything the relay does: -setup creates the slot (twice is
// fine), and the relay then streams outbox inserts to Kafka and confirms them. The publication
// is migration 00004's; the role could not create it.
func TestSetupAndRelayAsRelayRole(t *testing.T) {
	b := newBundle(t)
	ctx := context.Background()
	cfg, r := relayAs(t, b, "relay")
	for range 2 {
		if err := r.Setup(ctx); err != nil {
			t.Fatalf("Setup as %s: %v", db.LoginRole("relay"), err)
		}
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND plugin = 'pgoutput'`, b.slot).Scan(&n); err != nil || n != 1 {
		t.Fatalf("slots named %s: %d, %v; want one pgoutput slot", b.slot, n, err)
	}

	startRelay(t, cfg, Deps{})
	got := collect(t, b.brokers, "connect.events")
	ids := writeN(t, b, "agg", 5)
	waitFor(t, "events relayed by the relay's role", func() bool { return got.has(ids...) })
}

// A role without REPLICATION (here the catalog's) cannot create the slot: -setup says so.
func TestSetupRefusedWithoutReplication(t *testing.T) {
	b := newBundle(t)
	_, r := relayAs(t, b, "catalog")
	if err := r.Setup(context.Background()); !isCode(err, "42501") {
		t.Fatalf("Setup as %s: %v, want insufficient_privilege", db.LoginRole("catalog"), err)
	}
}

// relayAs is a relay of b's configuration that connects as fn's login role.
func relayAs(t *testing.T, b *bundle, fn string) (Config, *Relay) {
	t.Helper()
	cfg := b.config()
	u, err := db.URLAs(b.url, db.LoginRole(fn))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = u
	r, err := New(cfg, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, r
}
