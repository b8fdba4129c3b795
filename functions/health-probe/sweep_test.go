package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/runtime"
)

// serve starts a loopback server answering GET /health with h.
func serve(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// after answers ok once d has passed (the slowness under test), or gives up with the client.
func after(d time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			answer(200, `{"status":"ok"}`)(w, r)
		case <-r.Context().Done():
		}
	}
}

// never answers; it returns when the client gives up.
func never(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

type checkRow struct {
	Status     string
	HTTPStatus *int
	Reason     *string
	Ms         *int
}

func (b bundle) checks(t *testing.T, id string) []checkRow {
	t.Helper()
	rows, err := b.owner.Query(context.Background(), `SELECT status, http_status, reason, response_time_ms
		FROM integration_health WHERE integration_id = $1 ORDER BY checked_at`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []checkRow
	for rows.Next() {
		var c checkRow
		if err := rows.Scan(&c.Status, &c.HTTPStatus, &c.Reason, &c.Ms); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type listingRow struct {
	Status                 string
	U24, U7, U30           *float64
	CheckedAt              *time.Time
	StateStatus            string
	Failures, Successes    int
	LastChanged, LastCheck *time.Time
}

func (b bundle) listing(t *testing.T, id string) listingRow {
	t.Helper()
	var l listingRow
	err := b.owner.QueryRow(context.Background(), `SELECT i.health_status, i.uptime_24h::float8, i.uptime_7d::float8,
			i.uptime_30d::float8, i.health_checked_at, s.status, s.consecutive_failures, s.consecutive_successes,
			s.last_changed_at, s.last_checked_at
		FROM integrations i JOIN integration_health_state s ON s.integration_id = i.id WHERE i.id = $1`, id).
		Scan(&l.Status, &l.U24, &l.U7, &l.U30, &l.CheckedAt, &l.StateStatus, &l.Failures, &l.Successes, &l.LastChanged, &l.LastCheck)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type outboxRow struct {
	Type, AggregateType, AggregateID, Source, Subject string
	Data                                              events.HealthChanged
}

func (b bundle) outbox(t *testing.T) []outboxRow {
	t.Helper()
	rows, err := b.owner.Query(context.Background(), `SELECT type, aggregatetype, aggregateid, source, subject, payload
		FROM outbox ORDER BY time, aggregateid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var o outboxRow
		var payload []byte
		if err := rows.Scan(&o.Type, &o.AggregateType, &o.AggregateID, &o.Source, &o.Subject, &payload); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload, &o.Data); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// TestSweep probes servers that are healthy, slow, degraded, failing in several ways and
// never answering, and a private address the SSRF client must refuse without connecting; three
// sweeps a minute apart take the failing ones offline on the third, each transition announced
// exactly once.
func TestSweep(t *testing.T) {
	b := setupProbe(t, nil)
	type want struct {
		check, reason string // reason: a prefix
		code          int
		status        []string // the listing's status after each sweep
	}
	U, H, D, O := events.HealthUnknown, events.HealthHealthy, events.HealthDegraded, events.HealthOffline
	cases := map[string]struct {
		url  string
		want want
	}{
		"healthy":   {serve(t, answer(200, `{"status":"ok"}`)), want{H, "", 200, []string{H, H, H}}},
		"slow":      {serve(t, after(400*time.Millisecond)), want{D, "slow: answered in", 200, []string{D, D, D}}},
		"degraded":  {serve(t, answer(200, `{"status":"degraded","output":"replica lag"}`)), want{D, `reported "degraded"`, 200, []string{D, D, D}}},
		"failing":   {serve(t, answer(500, `{"status":"ok"}`)), want{O, "HTTP status 500", 500, []string{U, U, O}}},
		"down":      {serve(t, answer(200, `{"status":"down"}`)), want{O, `reported "down"`, 200, []string{U, U, O}}},
		"not-json":  {serve(t, answer(200, `OK`)), want{O, "body: not a JSON object", 200, []string{U, U, O}}},
		"too-large": {serve(t, answer(200, `{"status":"ok","x":"`+strings.Repeat("a", 5000)+`"}`)), want{O, "body over 4096 bytes", 200, []string{U, U, O}}},
		"hanging":   {serve(t, never), want{O, "timeout: no complete answer within 1s", 0, []string{U, U, O}}},
		// Private: refused by the SSRF client before any connection is made (the test's Allow
		// covers 127.0.0.1 only).
		"private": {"http://10.0.0.1", want{O, "refused by the SSRF rules: private", 0, []string{U, U, O}}},
	}
	ids := map[string]string{}
	for name, c := range cases {
		ids[name] = b.integration(t, "it-"+name, c.url)
	}
	b.exec(t, `INSERT INTO integrations (developer_id, name, display_name, type, base_url, is_published)
		VALUES ('dev_1', 'draft', 'draft', 'widget', 'http://10.0.0.2', false)`)

	wantTransitions := []int{3, 0, 6}
	for sweep := range 3 {
		at := t0.Add(time.Duration(sweep) * time.Minute)
		s := b.sweep(t, at.Add(17*time.Second)) // stamped with the minute
		if s.Skipped || s.Probed != len(cases) || s.Transitions != wantTransitions[sweep] || !s.CheckedAt.Equal(at) {
			t.Fatalf("sweep %d: %+v, want %d probed, %d transitions at %s", sweep, s, len(cases), wantTransitions[sweep], at)
		}
		for name, c := range cases {
			l := b.listing(t, ids[name])
			if l.Status != c.want.status[sweep] || l.StateStatus != l.Status || l.CheckedAt == nil || !l.CheckedAt.Equal(at) {
				t.Errorf("sweep %d, %s: listing %+v, want status %s checked at %s", sweep, name, l, c.want.status[sweep], at)
			}
		}
	}
	for name, c := range cases {
		checks := b.checks(t, ids[name])
		if len(checks) != 3 {
			t.Fatalf("%s: %d checks, want 3", name, len(checks))
		}
		ch := checks[2]
		if ch.Status != c.want.check || (c.want.reason == "") != (ch.Reason == nil) ||
			(ch.Reason != nil && !strings.HasPrefix(*ch.Reason, c.want.reason)) ||
			(c.want.code == 0) != (ch.HTTPStatus == nil) || (ch.HTTPStatus != nil && *ch.HTTPStatus != c.want.code) ||
			(c.want.code == 0) != (ch.Ms == nil) {
			t.Errorf("%s: check %+v (reason %v), want %+v", name, ch, deref(ch.Reason), c.want)
		}
		l := b.listing(t, ids[name])
		up := 100.0
		if c.want.check == O {
			up = 0
		}
		if l.U24 == nil || *l.U24 != up || l.U7 == nil || *l.U7 != up || l.U30 == nil || *l.U30 != up {
			t.Errorf("%s: uptime %v/%v/%v, want %v", name, deref(l.U24), deref(l.U7), deref(l.U30), up)
		}
	}

	// Exactly one health.changed per transition, in the order they happened.
	perIntegration := map[string][]outboxRow{}
	for _, o := range b.outbox(t) {
		if o.Type != events.TypeHealthChanged || o.AggregateType != "integration" || o.AggregateID != o.Data.IntegrationID ||
			o.Subject != o.Data.IntegrationID || o.Source != events.Source(Name) {
			t.Errorf("outbox row %+v", o)
		}
		perIntegration[o.Data.IntegrationID] = append(perIntegration[o.Data.IntegrationID], o)
	}
	for name, c := range cases {
		got := perIntegration[ids[name]]
		if len(got) != 1 {
			t.Errorf("%s: %d health.changed events, want 1: %+v", name, len(got), got)
			continue
		}
		d := got[0].Data
		wantAt := t0
		if c.want.check == O {
			wantAt = t0.Add(2 * time.Minute)
		}
		if d.PreviousStatus != U || d.Status != c.want.status[2] || !d.CheckedAt.Equal(wantAt) || d.Name != "it-"+name {
			t.Errorf("%s: health.changed %+v", name, d)
		}
		if c.want.check == O && d.Uptime30d != 0 || c.want.check != O && d.Uptime30d != 100 {
			t.Errorf("%s: health.changed uptime_30d %v", name, d.Uptime30d)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM integration_health_state`); n != len(cases) {
		t.Fatalf("%d states, want %d (the unpublished integration is not probed)", n, len(cases))
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestRecovery: an offline integration comes back after two consecutive successes, and the
// listing's uptime follows the checks.
func TestRecovery(t *testing.T) {
	b := setupProbe(t, nil)
	var failing atomic.Bool
	id := b.integration(t, "flappy", serve(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			answer(503, "")(w, r)
			return
		}
		answer(200, `{"status":"pass"}`)(w, r)
	}))
	var statuses []string
	for i := range 6 {
		failing.Store(i < 3)
		b.sweep(t, t0.Add(time.Duration(i)*time.Minute))
		statuses = append(statuses, b.listing(t, id).Status)
	}
	if got := strings.Join(statuses, ","); got != "unknown,unknown,offline,offline,healthy,healthy" {
		t.Fatalf("statuses %s", got)
	}
	var got []string
	for _, o := range b.outbox(t) {
		got = append(got, o.Data.PreviousStatus+">"+o.Data.Status)
	}
	if strings.Join(got, ",") != "unknown>offline,offline>healthy" {
		t.Fatalf("transitions %v", got)
	}
	// Spans: down [t0, t0+3m), up [t0+3m, t0+5m): 2 of 5 minutes up.
	if l := b.listing(t, id); l.U24 == nil || *l.U24 != 40 {
		t.Fatalf("uptime_24h %v, want 40", deref(l.U24))
	}
}

// tickEvent is a PingSource tick for job at time at.
func tickEvent(t *testing.T, id, job string, at time.Time) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("/apis/v1/namespaces/connect/pingsources/health-probe-tick")
	e.SetType(PingType)
	e.SetTime(at)
	if err := e.SetData("application/json", map[string]string{"job": job}); err != nil {
		t.Fatal(err)
	}
	return e
}

// post delivers e to the function over HTTP in binary content mode, as Knative does.
func post(t *testing.T, srv *httptest.Server, e event.Event) int {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL+"/events", strings.NewReader(string(e.Data())))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", e.ID())
	req.Header.Set("Ce-Source", e.Source())
	req.Header.Set("Ce-Type", e.Type())
	if !e.Time().IsZero() {
		req.Header.Set("Ce-Time", e.Time().Format(time.RFC3339Nano))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTicks: a tick is handled as Knative delivers it; a redelivered tick (same id, or
// another id for the same minute) records nothing twice; a stale tick records nothing;
// other types and jobs are dead-lettered.
func TestTicks(t *testing.T) {
	b := setupProbe(t, nil)
	id := b.integration(t, "healthy", serve(t, answer(200, `{"status":"ok"}`)))
	h, err := runtime.NewHandler(runtime.Function{Name: Name, Events: b.svc.HandleEvent}, runtime.Deps{Logger: discard(), InsecureEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	b.clock.Set(t0.Add(2 * time.Second))
	tick := tickEvent(t, "tick-1", Name, t0)
	for i, e := range []event.Event{tick, tick, tickEvent(t, "tick-1-again", Name, t0.Add(30*time.Second))} {
		if code := post(t, srv, e); code != http.StatusOK {
			t.Fatalf("delivery %d: status %d", i, code)
		}
	}
	l := b.listing(t, id)
	if n := b.count(t, `SELECT count(*) FROM integration_health`); n != 1 || l.Successes != 1 || !l.LastCheck.Equal(t0) {
		t.Fatalf("after a tick delivered three times: %d checks, state %+v", n, l)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("%d outbox rows, want 1", n)
	}

	// A tick ten minutes old is dropped; one stamped in the future uses the clock's minute.
	b.clock.Set(t0.Add(15 * time.Minute))
	if code := post(t, srv, tickEvent(t, "old", Name, t0.Add(5*time.Minute))); code != http.StatusOK {
		t.Fatalf("stale tick: status %d", code)
	}
	if n := b.count(t, `SELECT count(*) FROM integration_health`); n != 1 {
		t.Fatalf("a stale tick recorded a check: %d", n)
	}
	if code := post(t, srv, tickEvent(t, "future", Name, t0.Add(5*time.Hour))); code != http.StatusOK {
		t.Fatalf("future tick: status %d", code)
	}
	if l := b.listing(t, id); !l.LastCheck.Equal(t0.Add(15*time.Minute)) || l.Successes != 2 {
		t.Fatalf("a future tick: state %+v, want checked at the clock's minute", l)
	}

	for name, e := range map[string]event.Event{
		"other job":  tickEvent(t, "poll-1", "poll", t0),
		"other type": func() event.Event { e := tickEvent(t, "x", Name, t0); e.SetType(events.TypeHealthChanged); return e }(),
		"no job": func() event.Event {
			e := tickEvent(t, "y", Name, t0)
			_ = e.SetData("application/json", []int{1})
			return e
		}(),
	} {
		if code := post(t, srv, e); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, code)
		}
	}
}

// TestSweepsDoNotOverlap: while a sweep runs, another one (another replica's tick, or the
// next tick) skips at once and records nothing; the first one completes.
func TestSweepsDoNotOverlap(t *testing.T) {
	b := setupProbe(t, nil)
	arrived, release := make(chan struct{}), make(chan struct{})
	id := b.integration(t, "held", serve(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		answer(200, `{"status":"ok"}`)(w, r)
	}))
	type outcome struct {
		s   Summary
		err error
	}
	first := make(chan outcome, 1)
	go func() {
		s, err := b.svc.Sweep(context.Background(), t0)
		first <- outcome{s, err}
	}()
	<-arrived // the first sweep holds the lock and is probing
	second, err := b.svc.Sweep(context.Background(), t0.Add(time.Minute))
	if err != nil || !second.Skipped || second.Probed != 0 {
		t.Fatalf("concurrent sweep: %+v, %v; want skipped", second, err)
	}
	close(release)
	o := <-first
	if o.err != nil || o.s.Skipped || o.s.Probed != 1 {
		t.Fatalf("first sweep: %+v, %v", o.s, o.err)
	}
	if l := b.listing(t, id); l.Successes != 1 || !l.LastCheck.Equal(t0) {
		t.Fatalf("state %+v: only the first sweep's check", l)
	}
	// The lock is free again.
	go func() { <-arrived }()
	if s := b.sweep(t, t0.Add(time.Minute)); s.Skipped || s.Probed != 1 {
		t.Fatalf("next sweep: %+v", s)
	}
}

// TestPrune: raw checks past the retention and spans ended before the 30-day window go;
// recent ones stay.
func TestPrune(t *testing.T) {
	b := setupProbe(t, nil)
	id := b.integration(t, "healthy", serve(t, answer(200, `{"status":"ok"}`)))
	old := b.integration(t, "old", "http://10.0.0.3")
	b.exec(t, `UPDATE integrations SET is_published = false, published_at = now() WHERE id = $1`, old)
	for _, c := range []struct {
		id  string
		age time.Duration
	}{{id, 49 * time.Hour}, {id, 47 * time.Hour}, {old, 100 * time.Hour}} {
		b.exec(t, `INSERT INTO integration_health (integration_id, status, checked_at) VALUES ($1, 'healthy', $2)`, c.id, t0.Add(-c.age))
	}
	b.exec(t, `INSERT INTO integration_uptime_spans (integration_id, started_at, ended_at, up) VALUES
		($1, $2, $3, true), ($1, $4, $5, false), ($6, $7, $8, true)`,
		id, t0.Add(-40*24*time.Hour), t0.Add(-31*24*time.Hour), t0.Add(-29*24*time.Hour), t0.Add(-28*24*time.Hour),
		old, t0.Add(-35*24*time.Hour), t0.Add(-30*24*time.Hour-time.Second))
	s := b.sweep(t, t0)
	if s.Pruned != 4 {
		t.Fatalf("pruned %d rows, want 4 (2 checks, 2 spans)", s.Pruned)
	}
	if n := b.count(t, `SELECT count(*) FROM integration_health WHERE checked_at < $1`, t0); n != 1 {
		t.Fatalf("%d old checks left, want the one 47 h old", n)
	}
	if n := b.count(t, `SELECT count(*) FROM integration_uptime_spans WHERE started_at < $1`, t0); n != 1 {
		t.Fatalf("%d old spans left, want the one inside the window", n)
	}
}

// TestDeletedDuringSweep: an integration deleted while it is being probed is left out of the
// write; the others are recorded.
func TestDeletedDuringSweep(t *testing.T) {
	b := setupProbe(t, nil)
	arrived, deleted := make(chan struct{}), make(chan struct{})
	gone := b.integration(t, "leaving", serve(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-deleted
		answer(200, `{"status":"ok"}`)(w, r)
	}))
	stays := b.integration(t, "staying", serve(t, answer(200, `{"status":"ok"}`)))
	done := make(chan error, 1)
	go func() { _, err := b.svc.Sweep(context.Background(), t0); done <- err }()
	// Delete it while its probe waits (the delete does not wait for the sweep: nothing is
	// locked before the write).
	<-arrived
	b.exec(t, `DELETE FROM integrations WHERE id = $1`, gone)
	close(deleted)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT count(*) FROM integration_health_state`); n != 1 {
		t.Fatalf("%d states, want only the remaining integration's", n)
	}
	if l := b.listing(t, stays); l.Status != events.HealthHealthy {
		t.Fatalf("remaining integration: %+v", l)
	}
}
