package main

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"
)

// tick posts a PingSource tick (binary mode) with data to /events and returns the status.
func (b bundle) tick(t *testing.T, data string, ext map[string]string) int {
	t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+"/events", bytes.NewReader([]byte(data)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "tick-1")
	req.Header.Set("Ce-Source", "/apis/v1/namespaces/connect/pingsources/ingest-prune")
	req.Header.Set("Ce-Type", PingType)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range ext {
		req.Header.Set("Ce-"+k, v)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A PingSource tick on /events deletes the replay keys older than the retention, and only
// those; a replayed event whose key was pruned is stored again (it is past the retention).
func TestPruneTick(t *testing.T) {
	t.Parallel()
	b := setupIngest(t, Config{ReplayRetention: 24 * time.Hour})
	id := b.pushSource(t, "coins", "push-coins", pricesManifest)
	tok := b.token(t, "push-coins", time.Hour, "data:write")
	ctx := context.Background()
	now := b.clock.t
	// Keys received 2 days, 25 hours, 23 hours and 1 minute ago.
	for i, age := range []time.Duration{48 * time.Hour, 25 * time.Hour, 23 * time.Hour, time.Minute} {
		if _, err := b.pool.Exec(ctx, `INSERT INTO ingest_events (integration_id, source, id, received_at) VALUES ($1, 'https://pusher.example/feed', $2, $3)`,
			id, "old-"+string(rune('a'+i)), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	// Not a tick for ingest: refused as permanent (4xx), nothing deleted.
	if code := b.tick(t, `{"job":"poll"}`, nil); code < 400 || code >= 500 {
		t.Fatalf("another job's tick: %d", code)
	}
	if code := b.tick(t, `not json`, nil); code < 400 || code >= 500 {
		t.Fatalf("a tick without a job: %d", code)
	}
	// A "tick" produced onto a push topic carries the KafkaSource's extension: it is a pushed
	// record (refused: wrong type), never a prune.
	if code := b.tick(t, `{"job":"ingest-prune"}`, map[string]string{IntegrationExtension: "coins"}); code < 400 || code >= 500 {
		t.Fatalf("a tick from a push topic: %d", code)
	}
	if n := b.count(t, `SELECT count(*) FROM ingest_events`); n != 4 {
		t.Fatalf("%d replay keys after refused ticks, want 4", n)
	}

	if code := b.tick(t, `{"job":"ingest-prune"}`, nil); code/100 != 2 {
		t.Fatalf("prune tick: %d", code)
	}
	if n := b.count(t, `SELECT count(*) FROM ingest_events WHERE id LIKE 'old-%'`); n != 2 {
		t.Fatalf("%d replay keys left, want the 2 younger than 24h", n)
	}
	if n := b.count(t, `SELECT count(*) FROM ingest_events WHERE id IN ('old-c', 'old-d')`); n != 2 {
		t.Fatalf("the young keys were pruned")
	}
	// old-a is past the retention: pushing it again stores it; old-c is still a duplicate.
	code, _, out := b.push(t, tok, batchCT, batch(t, ev("old-a", "prices", `{"coin":"btc","cents":1}`), ev("old-c", "prices", `{"coin":"eth","cents":1}`)))
	if r := results(t, out); code != 200 || r.Stored != 1 || r.Duplicates != 1 || r.Results[0].Status != Stored {
		t.Fatalf("after pruning: %d %s", code, out)
	}
}

// Prune works through a backlog larger than one batch.
func TestPruneBatches(t *testing.T) {
	t.Parallel()
	b := setupIngest(t, Config{ReplayRetention: time.Hour})
	id := b.pushSource(t, "coins", "push-coins", pricesManifest)
	old := b.clock.t.Add(-2 * time.Hour)
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO ingest_events (integration_id, source, id, received_at)
		SELECT $1, 's', 'e' || g, $2 FROM generate_series(1, $3::int) g`, id, old, pruneBatch+5); err != nil {
		t.Fatal(err)
	}
	n, err := b.svc.Prune(context.Background())
	if err != nil || n != pruneBatch+5 {
		t.Fatalf("pruned %d, %v; want %d", n, err, pruneBatch+5)
	}
	if c := b.count(t, `SELECT count(*) FROM ingest_events`); c != 0 {
		t.Fatalf("%d left", c)
	}
}
