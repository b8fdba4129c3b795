package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/webhook"
)

// A delivery is signed so that the integration verifies it with only the published keys;
// during a rotation both keys sign, and a verifier holding either one accepts; the body is
// the lifecycle CloudEvent in structured mode; a redelivered platform event reaches the
// integration once; the lifecycle topic gets the event through the outbox.
func TestSignedDeliveryOnceWithRotation(t *testing.T) {
	b := setupNotify(t, seedKey(t, "old", 1), seedKey(t, "new", 2))
	in, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	if len(in.keys) != 2 {
		t.Fatalf("%d published keys, want 2", len(in.keys))
	}
	e := installCompleted(t, id, "coach", "alice")
	for range 2 {
		if status := b.post(t, e); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
	}
	got := in.received()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1 (a redelivered platform event makes no second)", len(got))
	}
	r := got[0]
	if r.VerifyErr != nil {
		t.Fatalf("the integration could not verify with the published keys: %v", r.VerifyErr)
	}
	wantID := LifecycleID(e.Source(), e.ID(), events.TypeLifecycleInstall)
	if r.Path != "/lifecycle/install" || r.Verified.ID != wantID || r.Header.Get("Content-Type") != ContentType {
		t.Fatalf("delivery %s id %s ct %q", r.Path, r.Verified.ID, r.Header.Get("Content-Type"))
	}
	if sigs := strings.Fields(r.Header.Get(webhook.HeaderSignature)); len(sigs) != 2 {
		t.Fatalf("signatures %v, want one per key", sigs)
	}
	for _, k := range in.keys {
		if _, err := webhook.Verify(r.Header, r.Body, []webhook.PublicKey{k}, b.clock.now()); err != nil {
			t.Errorf("a verifier trusting only %s refuses: %v", k.ID, err)
		}
	}
	var ce struct {
		ID, Type, Source, Subject string
		Data                      events.LifecycleInstall
	}
	if err := json.Unmarshal(r.Body, &ce); err != nil {
		t.Fatal(err)
	}
	if ce.ID != wantID || ce.Type != events.TypeLifecycleInstall || ce.Source != events.Source(Name) ||
		ce.Data.Integration != "coach" || ce.Data.UserID != "alice" || ce.Subject != ce.Data.InstallID {
		t.Fatalf("body %s", r.Body)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE topic = 'integrations.coach.lifecycle' AND id = $1`, wantID); n != 1 {
		t.Fatalf("%d outbox rows on the lifecycle topic", n)
	}
	if n := b.count(t, `SELECT count(*) FROM lifecycle_deliveries WHERE status = 'delivered' AND attempts = 1`); n != 1 {
		t.Fatalf("%d delivered", n)
	}
	// Tampering is refused by the integration's verifier.
	if _, err := webhook.Verify(r.Header, append([]byte(" "), r.Body...), in.keys, b.clock.now()); err == nil {
		t.Fatal("tampered body verified")
	}
}

// user_deleted makes uninstall and redact; other reasons uninstall only. Widgets and data
// sources get the topic and no HTTP delivery; a kafka-lifecycle app neither.
func TestRevokeAndWhoGetsHTTP(t *testing.T) {
	b := setupNotify(t)
	in, id := b.integration(t, "coach", "dev-1", "app", `{}`)
	_, widget := b.integration(t, "clock", "dev-1", "widget", `{}`)
	_, kafkaApp := b.integration(t, "kafka-app", "dev-1", "app", `{"app":{"lifecycle":"kafka"}}`)
	b.post(t, installRevoked(t, id, "coach", "alice", "8d4c7d4e-0000-4000-8000-000000000001", events.RevokeUserDeleted))
	b.post(t, installRevoked(t, id, "coach", "bob", "8d4c7d4e-0000-4000-8000-000000000002", events.RevokeUserRequest))
	b.post(t, installRevoked(t, widget, "clock", "bob", "8d4c7d4e-0000-4000-8000-000000000003", events.RevokeUserRequest))
	b.post(t, installRevoked(t, kafkaApp, "kafka-app", "bob", "8d4c7d4e-0000-4000-8000-000000000004", events.RevokeUserDeleted))
	var paths []string
	for _, r := range in.received() {
		if r.VerifyErr != nil {
			t.Fatal(r.VerifyErr)
		}
		paths = append(paths, r.Path)
	}
	// uninstall and redact of one install are two deliveries attempted side by side, in no
	// promised order (each is idempotent for the integration).
	slices.Sort(paths)
	if strings.Join(paths, " ") != "/lifecycle/redact /lifecycle/uninstall /lifecycle/uninstall" {
		t.Fatalf("paths %v", paths)
	}
	if n := b.count(t, `SELECT count(*) FROM lifecycle_deliveries`); n != 3 {
		t.Fatalf("%d deliveries, want 3 (the default-lifecycle app only)", n)
	}
	for topic, want := range map[string]int{"integrations.coach.lifecycle": 3, "integrations.clock.lifecycle": 1, "integrations.kafka-app.lifecycle": 2} {
		if n := b.count(t, `SELECT count(*) FROM outbox WHERE topic = $1`, topic); n != want {
			t.Errorf("%s: %d outbox rows, want %d", topic, n, want)
		}
	}
}

// The integration is down for the whole window: attempts follow the schedule (test clock),
// the delivery fails and is dead-lettered, the log shows it, and a redelivery after
// recovery succeeds.
func TestDownForTheWholeWindow(t *testing.T) {
	b := setupNotify(t)
	in, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	in.status.Store(http.StatusServiceUnavailable)
	e := installCompleted(t, id, "coach", "alice")
	if status := b.post(t, e); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	eventID := LifecycleID(e.Source(), e.ID(), events.TypeLifecycleInstall)
	ctx := context.Background()
	for attempt := 2; attempt <= MaxAttempts; attempt++ {
		var next time.Time
		if err := b.owner.QueryRow(ctx, `SELECT next_attempt_at FROM lifecycle_deliveries WHERE event_id = $1`, eventID).Scan(&next); err != nil {
			t.Fatal(err)
		}
		// Just before it is due: nothing is attempted.
		b.clock.set(next.Add(-time.Millisecond))
		if sum, err := b.svc.Wake(ctx); err != nil || sum.Attempted != 0 {
			t.Fatalf("attempt %d early: %+v %v", attempt, sum, err)
		}
		b.clock.set(next)
		if sum, err := b.svc.Wake(ctx); err != nil || sum.Attempted != 1 {
			t.Fatalf("attempt %d: %+v %v", attempt, sum, err)
		}
	}
	got := in.received()
	if len(got) != MaxAttempts {
		t.Fatalf("%d attempts, want %d", len(got), MaxAttempts)
	}
	var total time.Duration
	for i := 1; i < len(got); i++ {
		gap := got[i].Verified.Timestamp.Sub(got[i-1].Verified.Timestamp)
		if got[i].VerifyErr != nil || gap != Schedule[i-1] {
			t.Errorf("gap before attempt %d: %s, want %s (%v)", i+1, gap, Schedule[i-1], got[i].VerifyErr)
		}
		total += gap
	}
	if total < 3*time.Hour+30*time.Minute || total > 4*time.Hour+30*time.Minute {
		t.Errorf("the window is %s, want about 4 hours", total)
	}
	// After the last attempt, nothing more, ever.
	b.clock.advance(24 * time.Hour)
	if sum, err := b.svc.Wake(ctx); err != nil || sum.Attempted != 0 {
		t.Fatalf("after the last: %+v %v", sum, err)
	}
	var status string
	var attempts, code int
	if err := b.owner.QueryRow(ctx, `SELECT status, attempts, last_status_code FROM lifecycle_deliveries WHERE event_id = $1`,
		eventID).Scan(&status, &attempts, &code); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || attempts != MaxAttempts || code != 503 {
		t.Fatalf("delivery %s after %d attempts, code %d", status, attempts, code)
	}
	var ext map[string]any
	if err := b.owner.QueryRow(ctx, `SELECT extensions FROM outbox WHERE topic = 'integrations.coach.lifecycle.dlq' AND type = $1`,
		events.TypeLifecycleInstall).Scan(&ext); err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	strExt := map[string]string{}
	for k, v := range ext {
		strExt[k] = fmt.Sprint(v)
	}
	dl, err := events.ParseDeadLetter(strExt)
	if err != nil || dl.Code != 503 || dl.Attempts != MaxAttempts || !strings.HasSuffix(dl.Dest, "/lifecycle/install") || strExt[ExtLifecycleID] != eventID {
		t.Fatalf("dead letter %+v %v %v", dl, err, strExt)
	}

	// The log shows it to its developer.
	tok := b.developerToken(t, "dev-1")
	var page DeliveryPage
	if status := b.call(t, "GET", "/v1/developer/integrations/coach/deliveries", tok, &page); status != 200 || len(page.Deliveries) != 1 {
		t.Fatalf("log: %d %+v", status, page)
	}
	d := page.Deliveries[0]
	if d.EventID != eventID || d.Status != "failed" || d.Attempts != MaxAttempts || d.LastStatusCode == nil || *d.LastStatusCode != 503 ||
		d.LastError == nil || !strings.Contains(*d.LastError, "503") || d.NextAttemptAt != nil {
		t.Fatalf("log row %+v", d)
	}

	// Recovery, then a redelivery: delivered at once.
	in.status.Store(http.StatusOK)
	var after Delivery
	if status := b.call(t, "POST", "/v1/developer/integrations/coach/deliveries/"+eventID+"/redeliver", tok, &after); status != 200 {
		t.Fatalf("redeliver: %d", status)
	}
	if after.Status != "delivered" || after.Attempts != 1 {
		t.Fatalf("after redelivery %+v", after)
	}
	if last := in.received()[len(in.received())-1]; last.VerifyErr != nil || last.Verified.ID != eventID {
		t.Fatalf("redelivery %+v", last)
	}
}

// A 410 disables the endpoint: no retry, later events are not attempted, the log says
// disabled; a redelivery re-enables it.
func TestGoneDisables(t *testing.T) {
	b := setupNotify(t)
	in, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	in.status.Store(http.StatusGone)
	first := installCompleted(t, id, "coach", "alice")
	b.post(t, first)
	in.status.Store(http.StatusOK)
	b.post(t, installCompleted(t, id, "coach", "bob"))
	b.clock.advance(5 * time.Hour)
	if sum, err := b.svc.Wake(context.Background()); err != nil || sum.Attempted != 0 {
		t.Fatalf("wake after 410: %+v %v", sum, err)
	}
	if n := len(in.received()); n != 1 {
		t.Fatalf("%d requests after a 410, want 1", n)
	}
	if n := b.count(t, `SELECT count(*) FROM lifecycle_deliveries WHERE status = 'disabled'`); n != 2 {
		t.Fatalf("%d disabled, want 2", n)
	}
	firstID := LifecycleID(first.Source(), first.ID(), events.TypeLifecycleInstall)
	var d Delivery
	if status := b.call(t, "POST", "/v1/developer/integrations/coach/deliveries/"+firstID+"/redeliver", b.developerToken(t, "dev-1"), &d); status != 200 || d.Status != "delivered" {
		t.Fatalf("redeliver: %d %+v", status, d)
	}
	// Re-enabled: the next event is delivered.
	b.post(t, installCompleted(t, id, "coach", "carol"))
	if n := len(in.received()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

// Two replicas woken at once never send the same attempt: each due delivery is attempted
// exactly once.
func TestConcurrentWakersNeverDoubleSend(t *testing.T) {
	b := setupNotify(t)
	in, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	in.status.Store(http.StatusInternalServerError)
	const n = 40
	for i := range n {
		b.post(t, installCompleted(t, id, "coach", fmt.Sprintf("user-%d", i)))
	}
	if got := len(in.received()); got != n {
		t.Fatalf("%d first attempts, want %d", got, n)
	}
	in.status.Store(http.StatusOK)
	b.clock.advance(Schedule[0] + time.Minute)
	workers := []*Service{b.svc, b.service(t, nil), b.service(t, nil)}
	var wg sync.WaitGroup
	sums := make([]Summary, len(workers))
	for i, w := range workers {
		wg.Go(func() {
			var err error
			if sums[i], err = w.Wake(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	perID := map[string]int{}
	for _, r := range in.received()[n:] {
		perID[r.Verified.ID]++
	}
	total := 0
	for _, s := range sums {
		total += s.Attempted
	}
	if len(perID) != n || total != n {
		t.Fatalf("second attempts: %d ids, %d attempts (%+v), want %d each", len(perID), total, sums, n)
	}
	for id, c := range perID {
		if c != 1 {
			t.Fatalf("%s sent %d times", id, c)
		}
	}
}

// A worker that dies holding a lease: the attempt is made again once the lease is over, not
// before.
func TestExpiredLeaseIsRetaken(t *testing.T) {
	b := setupNotify(t)
	in, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	in.status.Store(http.StatusInternalServerError)
	b.post(t, installCompleted(t, id, "coach", "alice"))
	b.clock.advance(Schedule[0])
	// A worker claims and dies before sending.
	if c, err := b.svc.claim(context.Background(), nil); err != nil || len(c) != 1 {
		t.Fatalf("claim: %v %v", c, err)
	}
	in.status.Store(http.StatusOK)
	b.clock.advance(b.cfg.Timeout) // still leased
	if sum, _ := b.svc.Wake(context.Background()); sum.Attempted != 0 {
		t.Fatalf("attempted under another's lease: %+v", sum)
	}
	b.clock.advance(Schedule[1])
	if sum, err := b.svc.Wake(context.Background()); err != nil || sum.Delivered != 1 {
		t.Fatalf("after the lease: %+v %v", sum, err)
	}
}

// The catch-up route pages through the integration's own lifecycle events with its own token
// (its integration client's).
func TestCatchUpCursor(t *testing.T) {
	b := setupNotify(t)
	_, id := b.integration(t, "clock", "dev-1", "widget", `{}`)
	_, other := b.integration(t, "coach", "dev-2", "app", appHTTP)
	var want []string
	for i := range 5 {
		e := installCompleted(t, id, "clock", fmt.Sprintf("u%d", i))
		b.post(t, e)
		want = append(want, LifecycleID(e.Source(), e.ID(), events.TypeLifecycleInstall))
	}
	b.post(t, installCompleted(t, other, "coach", "x"))
	tok := b.integrationToken(t, "client-clock")
	var got []string
	cursor := "0"
	for range 4 {
		var page EventPage
		if status := b.call(t, "GET", "/v1/integration/events?limit=2&after="+cursor, tok, &page); status != 200 {
			t.Fatalf("status %d", status)
		}
		for _, raw := range page.Events {
			var ce struct{ ID string }
			if err := json.Unmarshal(raw, &ce); err != nil {
				t.Fatal(err)
			}
			got = append(got, ce.ID)
		}
		if len(page.Events) == 0 && page.NextCursor != cursor {
			t.Fatalf("empty page moved the cursor %s -> %s", cursor, page.NextCursor)
		}
		cursor = page.NextCursor
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	for path, want := range map[string]int{
		"/v1/integration/events?after=-1":    400,
		"/v1/integration/events?after=x":     400,
		"/v1/integration/events?limit=0":     400,
		"/v1/integration/events?limit=10000": 400,
	} {
		if status := b.call(t, "GET", path, tok, nil); status != want {
			t.Errorf("%s: %d, want %d", path, status, want)
		}
	}
	if status := b.call(t, "GET", "/v1/integration/events", "", nil); status != 401 {
		t.Errorf("no token: %d", status)
	}
	if status := b.call(t, "GET", "/v1/integration/events", b.integrationToken(t, "not-an-integration"), nil); status != 403 {
		t.Errorf("a client that is no integration's: %d", status)
	}
	// The main application (the consent's OIDC client) is not the integration calling as itself.
	if status := b.call(t, "GET", "/v1/integration/events", b.integrationToken(t, "app-clock"), nil); status != 403 {
		t.Errorf("the main application's client id: %d", status)
	}
}

// A developer sees and redelivers only their own integrations' deliveries; another's is 404.
func TestDeveloperIsolation(t *testing.T) {
	b := setupNotify(t)
	_, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	e := installCompleted(t, id, "coach", "alice")
	b.post(t, e)
	eventID := LifecycleID(e.Source(), e.ID(), events.TypeLifecycleInstall)
	mallory := b.developerToken(t, "dev-2")
	if status := b.call(t, "GET", "/v1/developer/integrations/coach/deliveries", mallory, nil); status != 404 {
		t.Errorf("another developer's log: %d", status)
	}
	if status := b.call(t, "POST", "/v1/developer/integrations/coach/deliveries/"+eventID+"/redeliver", mallory, nil); status != 404 {
		t.Errorf("another developer's redelivery: %d", status)
	}
	owner := b.developerToken(t, "dev-1")
	for path, want := range map[string]int{
		"/v1/developer/integrations/coach/deliveries?limit=0":    400,
		"/v1/developer/integrations/coach/deliveries?cursor=abc": 400,
		"/v1/developer/integrations/nothing/deliveries":          404,
	} {
		if status := b.call(t, "GET", path, owner, nil); status != want {
			t.Errorf("%s: %d, want %d", path, status, want)
		}
	}
	if status := b.call(t, "POST", "/v1/developer/integrations/coach/deliveries/not-a-uuid/redeliver", owner, nil); status != 400 {
		t.Errorf("bad id: %d", status)
	}
	if status := b.call(t, "GET", "/v1/developer/integrations/coach/deliveries", b.integrationToken(t, "client-coach"), nil); status != 403 {
		t.Errorf("without integrations:write: %d", status)
	}
}

// The delivery log pages newest first.
func TestDeliveryLogPaging(t *testing.T) {
	b := setupNotify(t)
	_, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	var ids []string
	for i := range 5 {
		e := installCompleted(t, id, "coach", fmt.Sprintf("u%d", i))
		b.post(t, e)
		ids = append([]string{LifecycleID(e.Source(), e.ID(), events.TypeLifecycleInstall)}, ids...)
	}
	tok := b.developerToken(t, "dev-1")
	var got []string
	path := "/v1/developer/integrations/coach/deliveries?limit=2"
	for pages := 0; ; pages++ {
		var page DeliveryPage
		if status := b.call(t, "GET", path, tok, &page); status != 200 || pages > 3 {
			t.Fatalf("status %d after %d pages", status, pages)
		}
		for _, d := range page.Deliveries {
			got = append(got, d.EventID)
		}
		if page.NextCursor == nil {
			break
		}
		path = "/v1/developer/integrations/coach/deliveries?limit=2&cursor=" + *page.NextCursor
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("log %v, want %v", got, ids)
	}
}

// Bad events are refused for good (400: dead letter) and record nothing.
func TestPermanentErrors(t *testing.T) {
	b := setupNotify(t)
	_, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	bad := installCompleted(t, id, "coach", "alice")
	_ = bad.SetData(events.DataContentType, map[string]any{"install_id": "x"})
	wrongType := installCompleted(t, id, "coach", "alice")
	wrongType.SetType(events.TypePaymentFailed)
	tick := installCompleted(t, id, "coach", "alice")
	tick.SetType(PingType)
	_ = tick.SetData(events.DataContentType, map[string]string{"job": "health-probe"})
	for name, status := range map[string]int{"off schema": b.post(t, bad), "other type": b.post(t, wrongType), "tick": b.post(t, tick)} {
		if status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, status)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM lifecycle_events`) + b.count(t, `SELECT count(*) FROM processed_events`); n != 0 {
		t.Fatalf("%d rows written", n)
	}
}

// The signing keys never reach the logs, whatever happens (deliveries, failures, errors).
func TestKeysNeverLogged(t *testing.T) {
	key := seedKey(t, "k1", 42)
	b := setupNotify(t, key)
	in, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	in.status.Store(http.StatusGone)
	b.post(t, installCompleted(t, id, "coach", "alice"))
	b.logs.Write([]byte(fmt.Sprintf("%v %+v\n", b.cfg, b.cfg)))
	seed := strings.TrimPrefix(key, "k1:")
	if logs := b.logs.String(); strings.Contains(logs, seed) || !strings.Contains(logs, "k1") {
		t.Fatalf("logs hold the key (or lost its id): %s", logs)
	}
}

// The first attempt runs after the event is answered: an integration that takes its time does
// not hold up the Broker's next event; Close waits for the attempt, which is delivered.
func TestFirstAttemptAfterTheAnswer(t *testing.T) {
	b := setupNotify(t)
	in, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	in.gate = make(chan struct{})
	svc := b.service(t, slog.New(slog.DiscardHandler))
	svc.syncFirst = false
	answered := make(chan error, 1)
	go func() { answered <- svc.HandleEvent(context.Background(), installCompleted(t, id, "coach", "alice")) }()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(in.gate)
		t.Fatal("HandleEvent waited for the integration's answer")
	}
	if n := b.count(t, `SELECT count(*) FROM lifecycle_deliveries WHERE status = 'pending'`); n != 1 {
		t.Fatalf("%d pending deliveries while the integration holds the attempt, want 1", n)
	}
	close(in.gate)
	svc.Close()
	if n := b.count(t, `SELECT count(*) FROM lifecycle_deliveries WHERE status = 'delivered' AND attempts = 1`); n != 1 {
		t.Fatalf("%d delivered after Close, want 1", n)
	}
	if got := in.received(); len(got) != 1 || got[0].VerifyErr != nil {
		t.Fatalf("received %d deliveries (%v)", len(got), got)
	}
}

// A notify that starts (after a crash, or from zero) makes the due attempts at once, without
// waiting for the next tick.
func TestWakeAtStart(t *testing.T) {
	b := setupNotify(t)
	in, id := b.integration(t, "coach", "dev-1", "app", appHTTP)
	in.status.Store(http.StatusServiceUnavailable)
	b.post(t, installCompleted(t, id, "coach", "alice"))
	if n := b.count(t, `SELECT count(*) FROM lifecycle_deliveries WHERE status = 'pending' AND attempts = 1`); n != 1 {
		t.Fatalf("%d pending after a failed first attempt, want 1", n)
	}
	in.status.Store(http.StatusOK)
	b.clock.advance(time.Hour) // the retry is due
	svc := b.service(t, slog.New(slog.DiscardHandler))
	svc.WakeAtStart()
	deadline := time.Now().Add(30 * time.Second)
	for b.count(t, `SELECT count(*) FROM lifecycle_deliveries WHERE status = 'delivered'`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the start-up wake-up did not deliver the due attempt")
		}
		time.Sleep(20 * time.Millisecond)
	}
	svc.Close()
	if n := len(in.received()); n != 2 {
		t.Fatalf("%d requests, want 2 (the failed first attempt and the start-up one)", n)
	}
}
