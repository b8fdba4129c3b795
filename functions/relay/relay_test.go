package main

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/shared/outbox"
)

func TestRelayDeliversOutboxEventsAsBinaryCloudEvents(t *testing.T) {
	b := newBundle(t)
	ctx := context.Background()
	got := collect(t, b.brokers, testTopics...)
	r, reg := startRelay(t, b.config(), Deps{})

	when := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	install, err := outbox.New("/myscrollr/connect/install", "com.myscrollr.connect.install.completed",
		map[string]any{"install_id": "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90", "integration_id": "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91",
			"name": "crypto-ticker", "user_id": "u_1", "scopes": []string{"dashboard:write"}, "sandbox": false, "installed_at": "2026-03-04T05:06:07Z"})
	if err != nil {
		t.Fatal(err)
	}
	install.SetSubject("u_1")
	install.SetTime(when)
	install.SetDataSchema("https://schemas.myscrollr.com/connect/install.completed.json")
	install.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	install.SetExtension("attempt", int32(3))

	lifecycle, err := outbox.New("/myscrollr/connect/notify", "com.myscrollr.connect.lifecycle.install",
		map[string]any{"install_id": "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90", "integration": "demo", "user_id": "u_1",
			"scopes": []string{"dashboard:write"}, "sandbox": false, "installed_at": "2026-03-04T05:06:07Z"})
	if err != nil {
		t.Fatal(err)
	}

	var installID, lifecycleID, rolledBackID, markerID string
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		var err error
		if installID, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "integration", AggregateID: "i_1", CloudEvent: install}); err != nil {
			return err
		}
		lifecycleID, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "integration", AggregateID: "i_1",
			Topic: "integrations.demo.lifecycle", CloudEvent: lifecycle})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A transaction that rolls back produces nothing. Its aggregate is the marker's, so had it
	// been produced it would sit before the marker in the same partition.
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		ce, _ := outbox.New("/test", "com.myscrollr.connect.test.rolledback", map[string]any{})
		rolledBackID, _ = outbox.Write(ctx, tx, outbox.Event{AggregateType: "integration", AggregateID: "i_2", CloudEvent: ce})
		return errRollback
	})
	if !errors.Is(err, errRollback) || rolledBackID == "" {
		t.Fatalf("rolled-back write: id %q, err %v", rolledBackID, err)
	}
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		ce, _ := outbox.New("/test", "com.myscrollr.connect.test.marker", map[string]any{})
		markerID, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "integration", AggregateID: "i_2", CloudEvent: ce})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "events in Kafka", func() bool { return got.has(installID, lifecycleID, markerID) })

	byID := map[string][]int{}
	recs := got.records()
	for i, rec := range recs {
		id, _ := header(rec, "ce_id")
		byID[id] = append(byID[id], i)
	}
	if _, ok := byID[rolledBackID]; ok {
		t.Fatalf("the rolled-back event %s was relayed", rolledBackID)
	}
	rec := recs[byID[installID][0]]
	if rec.Topic != "connect.events" || string(rec.Key) != "i_1" {
		t.Fatalf("install record: topic %q key %q", rec.Topic, rec.Key)
	}
	if ct, _ := header(rec, "content-type"); ct != "application/json" {
		t.Fatalf("content-type header = %q (binary mode carries datacontenttype there)", ct)
	}
	e, err := kafkace.Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != installID || e.Source() != "/myscrollr/connect/install" || e.Type() != "com.myscrollr.connect.install.completed" ||
		e.Subject() != "u_1" || !e.Time().Equal(when) || e.DataSchema() != "https://schemas.myscrollr.com/connect/install.completed.json" ||
		e.DataContentType() != "application/json" || e.SpecVersion() != "1.0" {
		t.Fatalf("attributes: %s", e.String())
	}
	ext := e.Extensions()
	if ext["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || ext["attempt"] != "3" || ext["partitionkey"] != "i_1" {
		t.Fatalf("extensions = %v", ext)
	}
	var data map[string]any
	if err := json.Unmarshal(e.Data(), &data); err != nil || data["user_id"] != "u_1" || data["name"] != "crypto-ticker" {
		t.Fatalf("data = %s (%v)", e.Data(), err)
	}
	life := recs[byID[lifecycleID][0]]
	if life.Topic != "integrations.demo.lifecycle" || string(life.Key) != "i_1" {
		t.Fatalf("lifecycle record: topic %q key %q", life.Topic, life.Key)
	}

	waitFor(t, "events counted", func() bool { return testutil.ToFloat64(r.m.events) >= 3 })
	if n := testutil.CollectAndCount(reg, "connect_relay_events_total", "connect_relay_lag_seconds",
		"connect_relay_retained_wal_bytes", "connect_relay_last_ack_timestamp", "connect_relay_reconnects_total",
		"connect_relay_stalled", "connect_relay_standby"); n != 8 {
		t.Fatalf("%d relay series registered, want 8", n)
	}
	if v := testutil.ToFloat64(r.m.lastAck); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Fatalf("last_ack_timestamp = %v", v)
	}
	waitFor(t, "caught up", func() bool { return r.lag() == 0 && testutil.ToFloat64(r.m.stalled) == 0 })
}

func TestRelayCreatesPublicationAndSlotAndConfirms(t *testing.T) {
	b := newBundle(t)
	ctx := context.Background()
	r, _ := startRelay(t, b.config(), Deps{})
	var pub string
	if err := b.pool.QueryRow(ctx, `SELECT pubname FROM pg_publication_tables WHERE tablename = 'outbox'`).Scan(&pub); err != nil || pub != "connect_outbox" {
		t.Fatalf("publication = %q, %v", pub, err)
	}
	before := slotConfirmed(t, b)
	got := collect(t, b.brokers, "connect.events")
	ids := writeN(t, b, "agg", 20)
	waitFor(t, "events", func() bool { return got.has(ids...) })
	// The slot's confirmed position moves past the writes once Kafka acknowledged them.
	var lsn string
	if err := b.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slot confirmed past the writes", func() bool { return slotConfirmed(t, b) > before })
	waitFor(t, "retained WAL measured", func() bool { return testutil.ToFloat64(r.m.retained) > 0 || slotConfirmed(t, b) > 0 })
}

func slotConfirmed(t *testing.T, b *bundle) uint64 {
	t.Helper()
	var lsn uint64
	err := b.pool.QueryRow(context.Background(), `SELECT (confirmed_flush_lsn - '0/0')::bigint FROM pg_replication_slots WHERE slot_name = $1`, b.slot).Scan(&lsn)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// writeN commits n events of aggregate agg, one per transaction, and returns their ids.
func writeN(t *testing.T, b *bundle, agg string, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		ce, err := outbox.New("/test", "com.myscrollr.connect.test.written", map[string]any{"seq": i})
		if err != nil {
			t.Fatal(err)
		}
		err = pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
			id, err := outbox.Write(context.Background(), tx, outbox.Event{AggregateType: "test", AggregateID: agg, CloudEvent: ce})
			ids = append(ids, id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestRelayDeadLettersInvalidRowAndGoesOn(t *testing.T) {
	b := newBundle(t)
	ctx := context.Background()
	got := collect(t, b.brokers, "connect.events", "connect.events.dlq")
	r, _ := startRelay(t, b.config(), Deps{})
	// Something bypassed shared/outbox: an extension name CloudEvents does not allow.
	_, err := b.pool.Exec(ctx, `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, source, extensions)
		VALUES ('0193a6f5-7b3c-7d4e-8f00-000000000001', 'test', 'bad', 'com.myscrollr.connect.test.bad', '{}', '/test', '{"Bad-Name": 1}')`)
	if err != nil {
		t.Fatal(err)
	}
	ids := writeN(t, b, "good", 3)
	waitFor(t, "good events after the bad row", func() bool { return got.has(ids...) })
	waitFor(t, "dead letter", func() bool {
		for _, rec := range got.records() {
			if rec.Topic == "connect.events.dlq" && string(rec.Key) == "bad" {
				return true
			}
		}
		return false
	})
	if v := testutil.ToFloat64(r.m.invalid); v != 1 {
		t.Fatalf("invalid_rows_total = %v", v)
	}
}

func TestRelayDeletesRelayedRowsAfterRetention(t *testing.T) {
	b := newBundle(t)
	ctx := context.Background()
	cfg := b.config()
	cfg.Retention = time.Nanosecond // everything confirmed is old enough
	got := collect(t, b.brokers, "connect.events")
	startRelay(t, cfg, Deps{})
	ids := writeN(t, b, "old", 10)
	waitFor(t, "events", func() bool { return got.has(ids...) })
	waitFor(t, "relayed rows deleted", func() bool {
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// A clean shutdown confirms what Kafka acknowledged, so the next relay replays nothing.
func TestRelayCleanRestartReplaysNothing(t *testing.T) {
	b := newBundle(t)
	got := collect(t, b.brokers, "connect.events")
	r, err := New(b.config(), Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "first relay ready", func() bool { return r.Ready(ctx) == nil })
	ids := writeN(t, b, "a", 50)
	waitFor(t, "first events", func() bool { return got.has(ids...) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	startRelay(t, b.config(), Deps{})
	more := writeN(t, b, "a", 1)
	waitFor(t, "event after the restart", func() bool { return got.has(more...) })
	if n := got.count(); n != 51 {
		t.Fatalf("%d records for 51 events: the clean restart replayed %d", n, n-51)
	}
}
