package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/wasmhost"
)

func TestPushModes(t *testing.T) {
	b := setupIngest(t, Config{})
	id := b.pushSource(t, "coins", "push-coins", pricesManifest)
	tok := b.token(t, "push-coins", time.Hour, "data:write")

	// Structured.
	one, _ := json.Marshal(ev("e1", "prices", `{"coin":"btc","cents":100}`))
	if code, _, body := b.push(t, tok, map[string]string{"Content-Type": ContentTypeStructured}, one); code != 200 {
		t.Fatalf("structured: %d %s", code, body)
	}
	// Binary, with a user and a time.
	code, _, body := b.push(t, tok, map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e2", "Ce-Source": "/feed",
		"Ce-Type": PushType, "Ce-Subject": "prices", "Ce-User": "user_7", "Ce-Time": "2026-09-01T12:00:00Z",
		"Content-Type": "application/json"}, []byte(`{"coin":"eth","cents":5}`))
	if code != 200 || results(t, body).Stored != 1 {
		t.Fatalf("binary: %d %s", code, body)
	}
	// Batched.
	code, _, body = b.push(t, tok, batchCT, batch(t, ev("e3", "prices", `{"coin":"sol","cents":1}`), ev("e4", "prices", `{"coin":"ada","cents":2}`)))
	if r := results(t, body); code != 200 || r.Stored != 2 {
		t.Fatalf("batch: %d %s", code, body)
	}
	if n := b.count(t, `SELECT count(*) FROM records WHERE integration_id = $1 AND stream = 'prices'`, id); n != 4 {
		t.Errorf("records = %d, want 4", n)
	}
	var user, version string
	var observed time.Time
	if err := b.pool.QueryRow(context.Background(), `SELECT user_id, schema_version, observed_at FROM records WHERE key = 'eth'`).Scan(&user, &version, &observed); err != nil {
		t.Fatal(err)
	}
	if user != "user_7" || version != "1.0.0" || !observed.Equal(time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("envelope = %q %q %s", user, version, observed)
	}
	// Every stored record reached connect.data through the outbox.
	if n := b.count(t, `SELECT coalesce(sum(jsonb_array_length(payload->'records')), 0)::int FROM outbox
		WHERE type = 'com.myscrollr.connect.data.received' AND payload->>'delivery_mode' = 'push'`); n != 4 {
		t.Errorf("announced records = %d, want 4", n)
	}
}

func TestPartlyBadBatchKeepsGoodEvents(t *testing.T) {
	b := setupIngest(t, Config{})
	b.pushSource(t, "coins", "push-coins", pricesManifest)
	tok := b.token(t, "push-coins", time.Hour, "data:write")
	bad := ev("b5", "prices", `{"coin":"x","cents":1}`)
	bad["type"] = "com.example.other"
	code, _, body := b.push(t, tok, batchCT, batch(t,
		ev("g1", "prices", `{"coin":"btc","cents":100}`),
		ev("b1", "prices", `{"coin":"eth","cents":-1}`),
		ev("b2", "missing", `{"coin":"x"}`),
		ev("b3", "nokey", `{"coin":"x"}`),
		map[string]any{"specversion": "1.0", "id": "b4", "type": PushType}, // no source
		bad,
		ev("g2", "prices", `{"coin":"sol","cents":3}`),
	))
	if code != http.StatusMultiStatus {
		t.Fatalf("status %d, want 207: %s", code, body)
	}
	r := results(t, body)
	want := []struct{ id, status, field, reason string }{
		{"g1", Stored, "", ""},
		{"b1", Refused, "/data/cents", "minimum"},
		{"b2", Refused, "/subject", "not declared"},
		{"b3", Refused, "/subject", "no key"},
		{"b4", Refused, "/source", ""},
		{"b5", Refused, "/type", PushType},
		{"g2", Stored, "", ""},
	}
	if r.Stored != 2 || r.Refused != 5 || len(r.Results) != len(want) {
		t.Fatalf("results %s", body)
	}
	for i, w := range want {
		got := r.Results[i]
		if got.ID != w.id || got.Status != w.status {
			t.Errorf("result %d = %+v, want %s %s", i, got, w.id, w.status)
			continue
		}
		if w.status == Refused && (len(got.Problems) == 0 || got.Problems[0].Field != w.field || !strings.Contains(got.Problems[0].Reason+got.Problems[0].Field, w.reason)) {
			t.Errorf("result %s problems %+v, want field %q reason ~%q", w.id, got.Problems, w.field, w.reason)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM records`); n != 2 {
		t.Errorf("records = %d, want 2", n)
	}
	if n := b.count(t, `SELECT count(*) FROM record_rejections WHERE delivery_mode = 'push'`); n < 5 {
		t.Errorf("rejections = %d, want at least 5", n)
	}
}

func TestReplayStoredOnce(t *testing.T) {
	b := setupIngest(t, Config{})
	b.pushSource(t, "coins", "push-coins", pricesManifest)
	tok := b.token(t, "push-coins", time.Hour, "data:write")
	body := batch(t, ev("r1", "prices", `{"coin":"btc","cents":1}`), ev("r1", "prices", `{"coin":"btc","cents":1}`))
	_, _, out := b.push(t, tok, batchCT, body)
	if r := results(t, out); r.Stored != 1 || r.Duplicates != 1 {
		t.Fatalf("first: %s", out)
	}
	// The same event again, even with other data: a duplicate, nothing changes.
	_, _, out = b.push(t, tok, batchCT, batch(t, ev("r1", "prices", `{"coin":"btc","cents":999}`)))
	if r := results(t, out); r.Duplicates != 1 || r.Stored != 0 {
		t.Fatalf("replay: %s", out)
	}
	if n := b.count(t, `SELECT count(*) FROM records WHERE (data->>'cents')::int = 1`); n != 1 {
		t.Errorf("records with the first data = %d, want 1", n)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("announcements = %d, want 1", n)
	}
	// The same id from another source is another event.
	other := ev("r1", "prices", `{"coin":"btc","cents":2}`)
	other["source"] = "/another"
	if _, _, out = b.push(t, tok, batchCT, batch(t, other)); results(t, out).Stored != 1 {
		t.Fatalf("other source: %s", out)
	}
	// Replay keys are pruned after the retention.
	b.clock.t = b.clock.t.Add(DefaultReplayRetention + time.Hour)
	if n, err := b.svc.Prune(context.Background()); err != nil || n != 2 {
		t.Errorf("pruned %d, %v; want 2", n, err)
	}
}

func TestRefusedTokens(t *testing.T) {
	b := setupIngest(t, Config{})
	b.pushSource(t, "coins", "push-coins", pricesManifest)
	b.pushSource(t, "other", "push-other", pricesManifest)
	body := batch(t, ev("x1", "prices", `{"coin":"btc","cents":1}`))
	for _, tc := range []struct {
		name  string
		token string
		code  int
	}{
		{"none", "", 401},
		{"expired", b.token(t, "push-coins", -time.Minute, "data:write"), 401},
		{"no data:write", b.token(t, "push-coins", time.Hour, "dashboard:read"), 403},
		{"the integration's web application", b.token(t, "push-coins-web", time.Hour, "data:write"), 403},
		{"an unknown client", b.token(t, "someone", time.Hour, "data:write"), 403},
	} {
		code, _, out := b.push(t, tc.token, batchCT, body)
		if code != tc.code || !strings.Contains(string(out), `"status"`) {
			t.Errorf("%s: %d %s, want %d problem", tc.name, code, out, tc.code)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM records`); n != 0 {
		t.Errorf("records = %d after refused pushes", n)
	}
	// Another integration's token stores under that integration only.
	if code, _, out := b.push(t, b.token(t, "push-other", time.Hour, "data:write"), batchCT, body); code != 200 {
		t.Fatalf("other: %d %s", code, out)
	}
	if n := b.count(t, `SELECT count(*) FROM records r JOIN integrations i ON i.id = r.integration_id WHERE i.name = 'coins'`); n != 0 {
		t.Errorf("coins has %d records pushed by another integration", n)
	}
}

func TestRateLimit(t *testing.T) {
	b := setupIngest(t, Config{Rate: 10, Burst: 20, MaxBatch: 20})
	b.pushSource(t, "coins", "push-coins", pricesManifest)
	tok := b.token(t, "push-coins", time.Hour, "data:write")
	evs := func(prefix string, n int) []byte {
		var list []map[string]any
		for i := range n {
			list = append(list, ev(prefix+strconv.Itoa(i), "prices", `{"coin":"c`+strconv.Itoa(i)+`","cents":1}`))
		}
		return batch(t, list...)
	}
	if code, _, out := b.push(t, tok, batchCT, evs("a", 15)); code != 200 {
		t.Fatalf("first: %d %s", code, out)
	}
	code, h, out := b.push(t, tok, batchCT, evs("b", 15))
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || h.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("second: %d Retry-After %q %s", code, h.Get("Retry-After"), out)
	}
	// Another integration has its own bucket.
	b.pushSource(t, "other", "push-other", pricesManifest)
	if code, _, out := b.push(t, b.token(t, "push-other", time.Hour, "data:write"), batchCT, evs("c", 15)); code != 200 {
		t.Fatalf("other: %d %s", code, out)
	}
	b.clock.t = b.clock.t.Add(time.Second) // 5 left + 10 refilled
	if code, _, out := b.push(t, tok, batchCT, evs("b", 15)); code != 200 {
		t.Fatalf("after a second: %d %s", code, out)
	}
}

func TestBoundsBeforeParsing(t *testing.T) {
	b := setupIngest(t, Config{MaxBodyBytes: 2048, MaxBatch: 3})
	b.pushSource(t, "coins", "push-coins", pricesManifest)
	tok := b.token(t, "push-coins", time.Hour, "data:write")
	// Oversized: not JSON at all, so a 413 (not a 400) shows the size was checked first.
	code, _, out := b.push(t, tok, batchCT, []byte(strings.Repeat("x", 4096)))
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized: %d %s", code, out)
	}
	code, _, out = b.push(t, tok, batchCT, batch(t, ev("1", "prices", `{}`), ev("2", "prices", `{}`), ev("3", "prices", `{}`), ev("4", "prices", `{}`)))
	if code != 400 || !strings.Contains(string(out), "at most 3") {
		t.Errorf("long batch: %d %s", code, out)
	}
	for _, tc := range []struct{ ct, body, field string }{
		{ContentTypeBatch, `{"not": "an array"}`, `"field":""`},
		{ContentTypeStructured, `{"specversion": "0.3", "id": "1", "source": "/s", "type": "t"}`, `"/specversion"`},
		{"text/plain", `hello`, `"Content-Type"`},
		{"application/cloudevents+xml", `<e/>`, `"Content-Type"`},
	} {
		code, _, out := b.push(t, tok, map[string]string{"Content-Type": tc.ct}, []byte(tc.body))
		if code != 400 || !strings.Contains(string(out), tc.field) {
			t.Errorf("%s %s: %d %s, want 400 naming %s", tc.ct, tc.body, code, out, tc.field)
		}
	}
}

func TestKafkaSourcePath(t *testing.T) {
	b := setupIngest(t, Config{})
	id := b.pushSource(t, "coins", "push-coins", pricesManifest)
	e := event.New()
	e.SetID("k1")
	e.SetSource("/feed")
	e.SetType(PushType)
	e.SetSubject("prices")
	if err := e.SetData("application/json", map[string]any{"coin": "btc", "cents": 7}); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.HandleEvent(context.Background(), e); err == nil || !strings.Contains(err.Error(), IntegrationExtension) {
		t.Fatalf("without the extension: %v", err)
	}
	e.SetExtension(IntegrationExtension, "coins")
	for range 2 { // the redelivery is a duplicate, not an error
		if err := b.svc.HandleEvent(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM records WHERE integration_id = $1`, id); n != 1 {
		t.Errorf("records = %d", n)
	}
	e.SetID("k2")
	e.SetSubject("missing")
	if err := b.svc.HandleEvent(context.Background(), e); err == nil || !strings.Contains(err.Error(), "not declared") {
		t.Errorf("bad event: %v, want permanent refusal", err)
	}
	e.SetExtension(IntegrationExtension, "nobody")
	if err := b.svc.HandleEvent(context.Background(), e); err == nil {
		t.Error("unknown integration accepted")
	}
}

// trapping is a normalizer whose transform fails every batch, as a trapped module does.
type trapping struct{}

func (trapping) Normalize(context.Context, records.Source, string, json.RawMessage) (json.RawMessage, error) {
	return nil, &wasmhost.BatchError{Reason: "wasm trap: unreachable"}
}

// On the Kafka path a transform failure is retried (an ordinary error) the first time and
// permanent (dead letter) the second time the same input fails; other inputs keep their
// first try, and nothing is stored.
func TestKafkaSourceTransformFailureDeadLettersOnTheSecondTrap(t *testing.T) {
	b := setupIngest(t, Config{})
	id := b.pushSource(t, "coins", "push-coins", pricesManifest)
	b.svc.norm = trapping{}
	mk := func(id, coin string) event.Event {
		e := event.New()
		e.SetID(id)
		e.SetSource("/feed")
		e.SetType(PushType)
		e.SetSubject("prices")
		e.SetExtension(IntegrationExtension, "coins")
		if err := e.SetData("application/json", map[string]any{"coin": coin, "cents": 7}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := b.svc.HandleEvent(context.Background(), mk("t1", "btc"))
	if first == nil || events.IsPermanent(first) || !strings.Contains(first.Error(), "wasm trap") {
		t.Fatalf("first failure: %v, want a retried error", first)
	}
	if err := b.svc.HandleEvent(context.Background(), mk("t2", "btc")); err == nil || events.IsPermanent(err) {
		t.Fatalf("another event's first failure: %v, want a retried error", err)
	}
	if err := b.svc.HandleEvent(context.Background(), mk("t1", "eth")); err == nil || events.IsPermanent(err) {
		t.Fatalf("same id, other data: %v, want a retried error", err)
	}
	second := b.svc.HandleEvent(context.Background(), mk("t1", "btc"))
	if !events.IsPermanent(second) || !strings.Contains(second.Error(), "failed it twice") || !strings.Contains(second.Error(), "wasm trap") {
		t.Fatalf("second failure of the same input: %v, want permanent with the reason", second)
	}
	if n := b.count(t, `SELECT count(*) FROM records WHERE integration_id = $1`, id); n != 0 {
		t.Errorf("records = %d", n)
	}
}
