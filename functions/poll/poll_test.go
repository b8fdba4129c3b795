package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/runtime"
)

// A batch with a bad record keeps the good ones, lists the bad one with pointer and reason,
// and announces the changed records once on connect.data; the same data again announces
// nothing.
func TestPollStoresGoodRejectsBadAnnouncesChanges(t *testing.T) {
	e := newEnv(t, nil)
	src := newSource(t, pricesSchema(60), price("BTC", 100), price("ETH", -5), price("SOL", 7),
		map[string]any{"stream": "nope", "data": map[string]any{"symbol": "X", "price_cents": 1}})
	id := e.seed(t, "prices-source", "dev-1", src.srv.URL)

	res := e.tick(t)
	if res.Claimed != 1 || res.Polled != 1 || res.Failed != 0 {
		t.Fatalf("tick = %+v", res)
	}
	if n := e.count(t, `SELECT count(*) FROM records WHERE integration_id = $1`, id); n != 2 {
		t.Fatalf("%d records stored, want 2 (BTC, SOL)", n)
	}
	var data string
	if err := e.owner.QueryRow(context.Background(), `SELECT data::text FROM records WHERE integration_id = $1 AND stream = 'prices' AND key = 'SOL'`, id).Scan(&data); err != nil {
		t.Fatal(err)
	}
	if data != `{"symbol": "SOL", "price_cents": 7}` {
		t.Errorf("SOL data = %s", data)
	}
	rows, err := e.owner.Query(context.Background(), `SELECT coalesce(stream, ''), coalesce(key, ''), field, reason, sample FROM record_rejections WHERE integration_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	type rej struct{ stream, key, field, reason, sample string }
	var rejs []rej
	for rows.Next() {
		var r rej
		if err := rows.Scan(&r.stream, &r.key, &r.field, &r.reason, &r.sample); err != nil {
			t.Fatal(err)
		}
		rejs = append(rejs, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rejs) != 2 {
		t.Fatalf("rejections = %+v, want 2", rejs)
	}
	if r := rejs[0]; r.stream != "prices" || r.key != "ETH" || r.field != "/data/price_cents" || !strings.Contains(r.reason, "minimum") || !strings.Contains(r.sample, `"ETH"`) {
		t.Errorf("rejection 0 = %+v", r)
	}
	if r := rejs[1]; r.stream != "nope" || r.field != "/stream" || !strings.Contains(r.reason, "not declared") {
		t.Errorf("rejection 1 = %+v", r)
	}

	got := dataEvents(t, e)
	if len(got) != 1 || got[0].RecordCount != 2 || got[0].Name != "prices-source" || got[0].DeliveryMode != "pull" {
		t.Fatalf("data.received events = %+v", got)
	}
	if r := got[0].Records; r[0].Stream != "prices" || r[0].Key != "BTC" || r[1].Key != "SOL" {
		t.Errorf("announced records = %+v", r)
	}

	// Due again, same data (the source sends no validators): stored again, announced never.
	e.clock.Add(61 * time.Second)
	if res := e.tick(t); res.Polled != 1 {
		t.Fatalf("second tick = %+v", res)
	}
	if got := dataEvents(t, e); len(got) != 1 {
		t.Fatalf("%d data.received events after the same data again, want still 1", len(got))
	}
	// One record changes: one event with that record only.
	src.setRecords(price("BTC", 101), price("SOL", 7))
	e.clock.Add(61 * time.Second)
	e.tick(t)
	got = dataEvents(t, e)
	if len(got) != 2 || got[1].RecordCount != 1 || got[1].Records[0].Key != "BTC" || compact(got[1].Records[0].Data) != `{"symbol":"BTC","price_cents":101}` {
		t.Fatalf("events after one change = %+v", got)
	}
}

// dataEvents reads the data.received events of the outbox, oldest first, checking they are on
// connect.data and match their schema.
func dataEvents(t *testing.T, e *env) []events.DataReceived {
	t.Helper()
	rows, err := e.owner.Query(context.Background(), `SELECT topic, type, subject, payload::text FROM outbox ORDER BY created_at, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []events.DataReceived
	for rows.Next() {
		var topic, typ, payload string
		var subject *string
		if err := rows.Scan(&topic, &typ, &subject, &payload); err != nil {
			t.Fatal(err)
		}
		if topic != events.TopicData || typ != events.TypeDataReceived || subject == nil || *subject != "prices" {
			t.Fatalf("outbox row on %s of type %s subject %v", topic, typ, subject)
		}
		var d events.DataReceived
		if err := json.Unmarshal([]byte(payload), &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A source is not polled before it is due: refresh interval from /schema, floored at
// MinInterval.
func TestRefreshIntervalHonoured(t *testing.T) {
	e := newEnv(t, nil)
	src := newSource(t, pricesSchema(120), price("BTC", 1))
	id := e.seed(t, "slow-source", "dev-1", src.srv.URL)
	e.tick(t)
	if s := e.state(t, id); !s.NextPoll.Equal(t0.Add(120 * time.Second)) {
		t.Fatalf("next_poll_at = %s, want t0+120s", s.NextPoll)
	}
	e.clock.Add(119 * time.Second)
	if res := e.tick(t); res.Claimed != 0 || src.count("/data") != 1 {
		t.Fatalf("polled before due: %+v, %d requests", res, src.count("/data"))
	}
	e.clock.Add(time.Second)
	if res := e.tick(t); res.Polled != 1 || src.count("/data") != 2 {
		t.Fatalf("not polled when due: %+v", res)
	}
	// An interval under the floor is raised to it.
	src.setSchema(pricesSchema(5))
	e.clock.Add(120 * time.Second)
	e.tick(t)
	if s := e.state(t, id); !s.NextPoll.Equal(e.clock.Now().Add(60 * time.Second)) {
		t.Fatalf("next_poll_at = %s, want now+60s (POLL_MIN_INTERVAL)", s.NextPoll)
	}
}

// Conditional requests: the validators of the last answers are sent, and 304 keeps what is
// stored (no new event, the source is still a success).
func TestConditionalRequests(t *testing.T) {
	e := newEnv(t, nil)
	src := newSource(t, pricesSchema(60), price("BTC", 1))
	src.etag = `"v1"`
	id := e.seed(t, "etag-source", "dev-1", src.srv.URL)
	e.tick(t)
	e.clock.Add(61 * time.Second)
	if res := e.tick(t); res.Polled != 1 {
		t.Fatalf("tick = %+v", res)
	}
	src.mu.Lock()
	conds := append([]string(nil), src.conditions...)
	src.mu.Unlock()
	if len(conds) != 2 || conds[0] != "" || conds[1] != `"v1"` {
		t.Fatalf("If-None-Match of /data requests = %q", conds)
	}
	if s := e.state(t, id); s.DataETag == nil || *s.DataETag != `"v1"` || s.LastError != nil || !s.Success.Equal(e.clock.Now()) {
		t.Fatalf("state after 304 = %+v", s)
	}
	if n := len(dataEvents(t, e)); n != 1 {
		t.Fatalf("%d events, want 1 (304 announces nothing)", n)
	}
	if n := e.count(t, `SELECT count(*) FROM records`); n != 1 {
		t.Fatalf("%d records", n)
	}
}

// A failing source backs off exponentially with jitter, its error visible; a success resets.
func TestBackoffOnFailure(t *testing.T) {
	e := newEnv(t, nil)
	src := newSource(t, pricesSchema(60), price("BTC", 1))
	src.dataStatus = http.StatusInternalServerError
	id := e.seed(t, "failing-source", "dev-1", src.srv.URL)
	for i, want := range []time.Duration{60 * time.Second, 120 * time.Second, 240 * time.Second} {
		now := e.clock.Now()
		if res := e.tick(t); res.Failed != 1 {
			t.Fatalf("tick %d = %+v", i, res)
		}
		s := e.state(t, id)
		if s.Failures != i+1 || s.LastError == nil || !strings.Contains(*s.LastError, "GET /data: HTTP 500") {
			t.Fatalf("after failure %d: %+v %v", i+1, s, deref(s.LastError))
		}
		if wait := s.NextPoll.Sub(now); wait < want/2 || wait > want {
			t.Fatalf("after failure %d: waits %s, want within [%s, %s]", i+1, wait, want/2, want)
		}
		// Not due before its time.
		e.clock.Add(want/2 - time.Second)
		if res := e.tick(t); res.Claimed != 0 {
			t.Fatalf("polled during backoff: %+v", res)
		}
		e.clock.Add(want/2 + time.Second)
	}
	src.mu.Lock()
	src.dataStatus = 0
	src.mu.Unlock()
	e.tick(t)
	if s := e.state(t, id); s.Failures != 0 || s.LastError != nil {
		t.Fatalf("after success: %+v", s)
	}
	if got := (&Service{cfg: Config{MinInterval: time.Minute}}).backoff(30); got > MaxBackoff || got < MaxBackoff/2 {
		t.Errorf("backoff(30) = %s, want within the 1h cap", got)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// Malformed or oversized documents are the source's error: recorded, nothing stored, and the
// tick itself answers 2xx.
func TestMalformedDocuments(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	big := bytes.Repeat([]byte(" "), 5000)
	cases := []struct {
		name   string
		schema any
		data   []byte
		want   string
	}{
		{"data-not-json", pricesSchema(60), []byte(`{"records": [`), "not valid JSON"},
		{"data-too-big", pricesSchema(60), append([]byte(`{"records": []}`), big...), "4096 bytes"},
		{"data-no-records", pricesSchema(60), []byte(`{"items": []}`), `"/records": required`},
		{"data-deep", pricesSchema(60), []byte(strings.Repeat("[", 100) + strings.Repeat("]", 100)), "nested deeper"},
		{"schema-no-streams", map[string]any{"streams": []any{}}, []byte(`{"records": []}`), "GET /schema"},
		{"schema-remote-ref", map[string]any{"streams": []any{map[string]any{"name": "s", "key": []string{"k"},
			"schema": map[string]any{"$ref": "https://169.254.169.254/latest"}}}}, []byte(`{"records": []}`), "only local references"},
	}
	ids := map[string]string{}
	for _, tc := range cases {
		src := newSource(t, tc.schema)
		src.setData(tc.data)
		ids[tc.name] = e.seed(t, tc.name, "dev-1", src.srv.URL)
	}
	h, err := runtime.NewHandler(runtime.Function{Name: "poll", Events: e.svc.HandleEvent}, runtime.Deps{Logger: discard(), InsecureEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	if code := postTick(t, h, PingType, `{"job":"poll"}`); code/100 != 2 {
		t.Fatalf("tick answered %d", code)
	}
	for _, tc := range cases {
		s := e.state(t, ids[tc.name])
		if s.Failures != 1 || s.LastError == nil || !strings.Contains(*s.LastError, tc.want) {
			t.Errorf("%s: failures %d, last_error %q, want it to contain %q", tc.name, s.Failures, deref(s.LastError), tc.want)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM records`) + e.count(t, `SELECT count(*) FROM outbox`); n != 0 {
		t.Errorf("%d records/events stored from malformed sources", n)
	}
	// Other events are refused for good (400: dead letter), not retried.
	if code := postTick(t, h, "com.example.other", `{}`); code != http.StatusBadRequest {
		t.Errorf("other event type answered %d, want 400", code)
	}
	if code := postTick(t, h, PingType, `{"job":"probe"}`); code != http.StatusBadRequest {
		t.Errorf("other job answered %d, want 400", code)
	}
}

func postTick(t *testing.T, h http.Handler, typ, data string) int {
	t.Helper()
	ce := cloudevents.NewEvent()
	ce.SetID("tick-" + typ)
	ce.SetSource("/apis/v1/namespaces/connect/pingsources/poll")
	ce.SetType(typ)
	if err := ce.SetData(cloudevents.ApplicationJSON, json.RawMessage(data)); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(ce)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// Two ticks running at once poll every source exactly once (leases, SKIP LOCKED).
func TestConcurrentTicksPollEachSourceOnce(t *testing.T) {
	e := newEnv(t, nil)
	var srcs []*fakeSource
	for i := range 6 {
		src := newSource(t, pricesSchema(60), price("BTC", i))
		srcs = append(srcs, src)
		e.seed(t, "src-"+string(rune('a'+i)), "dev-1", src.srv.URL)
	}
	var wg sync.WaitGroup
	results := make([]TickResult, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { results[i], errs[i] = e.svc.Tick(context.Background()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if results[0].Claimed+results[1].Claimed != 6 || results[0].Polled+results[1].Polled != 6 {
		t.Fatalf("ticks = %+v", results)
	}
	for i, src := range srcs {
		if n := src.count("/data"); n != 1 {
			t.Errorf("source %d polled %d times", i, n)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM poll_sources WHERE leased_until IS NOT NULL`); n != 0 {
		t.Errorf("%d leases left", n)
	}
}

// Sources not started within the budget are released for the next tick, not left leased.
func TestUnstartedSourcesReleased(t *testing.T) {
	e := newEnv(t, nil)
	src := newSource(t, pricesSchema(60), price("BTC", 1))
	id := e.seed(t, "late-source", "dev-1", src.srv.URL)
	e.svc.cfg.TickBudget = e.svc.cfg.perSource() // no time left to start anything
	if res := e.tick(t); res.Claimed != 1 || res.Skipped != 1 || res.Polled != 0 || src.count("/data") != 0 {
		t.Fatalf("tick with no budget = %+v, %d requests", res, src.count("/data"))
	}
	if n := e.count(t, `SELECT count(*) FROM poll_sources WHERE integration_id = $1 AND leased_until IS NULL AND last_polled_at IS NULL`, id); n != 1 {
		t.Fatalf("skipped source still leased or marked polled")
	}
	e.svc.cfg.TickBudget = DefaultTickBudget
	if res := e.tick(t); res.Polled != 1 {
		t.Fatalf("next tick = %+v", res)
	}
}

func compact(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return "invalid JSON: " + string(b)
	}
	return out.String()
}
