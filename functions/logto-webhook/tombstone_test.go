package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
)

func at(s int) time.Time { return testNow.Add(time.Duration(s) * time.Second) }

func (b bundle) ok(t *testing.T, p map[string]any) {
	t.Helper()
	if status, prob := b.send(t, p); status != http.StatusNoContent {
		t.Fatalf("status %d %+v", status, prob)
	}
}

// dump is every row of the tables a webhook writes, as text, in a stable order.
func (b bundle) dump(t testing.TB) string {
	t.Helper()
	var out strings.Builder
	for _, table := range []string{"developer_roles", "developer_role_sets", "logto_tombstones", "outbox", "processed_events"} {
		var s string
		if err := b.pool.QueryRow(context.Background(),
			`SELECT coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '') FROM `+table+` x`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s:\n%s\n", table, s)
	}
	return out.String()
}

func userDeletedAt(user string, when time.Time) map[string]any {
	p := userDeleted(user)
	p["createdAt"] = when.Format("2006-01-02T15:04:05.000Z07:00")
	return p
}

func grant(user, id, name string, when time.Time) map[string]any {
	return rolesUpdated(user, when, map[string]any{"roles": []any{role(id, name)}, "addedRoleIds": []string{id}})
}

func roleDeleted(id string, when time.Time) map[string]any {
	return logtoPayload("Role.Deleted", when, map[string]any{"params": map[string]any{"id": id}, "matchedRoute": "/roles/:id"})
}

// Two different User.Deleted deliveries for one user (not byte-identical, so not deduplicated):
// one user.deleted event, and the tombstone keeps the earlier time.
func TestUserDeletedTwiceAnnouncedOnce(t *testing.T) {
	b := setupWebhook(t)
	b.ok(t, userDeletedAt("u_twice", at(5)))
	b.ok(t, userDeletedAt("u_twice", at(3)))
	var n int
	for _, r := range b.outbox(t) {
		if r.Type == events.TypeUserDeleted {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d user.deleted events, want 1", n)
	}
	var deletedAt time.Time
	if err := b.pool.QueryRow(context.Background(), `SELECT deleted_at FROM logto_tombstones WHERE kind = 'user' AND id = 'u_twice'`).Scan(&deletedAt); err != nil {
		t.Fatal(err)
	}
	if !deletedAt.Equal(at(3)) {
		t.Fatalf("tombstone at %s, want the earlier %s", deletedAt, at(3))
	}
}

// A failure anywhere in a delivery's transaction leaves nothing behind: not the claim, not a
// tombstone, not a role row, not an outbox event. The retry then applies it whole.
func TestNoPartialWrite(t *testing.T) {
	b := setupWebhook(t)
	ctx := context.Background()
	b.ok(t, grant("u_ok", "r_x", "developer", at(1)))
	b.ok(t, grant("u_fail", "r_x", "developer", at(1)))
	// Fail the outbox insert of any event about u_fail: the last write of each delivery below.
	if _, err := b.pool.Exec(ctx, `CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.aggregateid = 'u_fail' THEN RAISE EXCEPTION 'injected failure'; END IF;
			RETURN NEW;
		END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_outbox()`); err != nil {
		t.Fatal(err)
	}
	before := b.dump(t)
	failing := []map[string]any{
		roleDeleted("r_x", at(2)), // u_ok's event is written first, then u_fail's fails
		userDeletedAt("u_fail", at(3)),
		grant("u_fail", "r_a", "admin", at(4)),
		rolesUpdated("u_fail", at(5), map[string]any{"removedRoleIds": []string{"r_x"}}),
		rolesUpdated("u_fail", at(6), map[string]any{"roles": []any{}}),
	}
	for i, p := range failing {
		if status, prob := b.send(t, p); status != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d: status %d %+v", i, status, prob)
		}
		if after := b.dump(t); after != before {
			t.Fatalf("delivery %d left a partial write:\nbefore\n%s\nafter\n%s", i, before, after)
		}
	}
	if _, err := b.pool.Exec(ctx, `DROP TRIGGER fail_outbox ON outbox`); err != nil {
		t.Fatal(err)
	}
	for _, p := range failing { // Logto's retries
		b.ok(t, p)
	}
	for user, want := range map[string][]string{"u_ok": {}, "u_fail": {}} {
		if got := b.developerRoles(t, user); len(got) != len(want) {
			t.Errorf("%s roles %v, want none", user, got)
		}
	}
	var tombs int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM logto_tombstones`).Scan(&tombs); err != nil {
		t.Fatal(err)
	}
	if tombs != 2 {
		t.Fatalf("%d tombstones, want 2 (user u_fail, role r_x)", tombs)
	}
}

// Grants racing a Role.Deleted (and a User.Deleted) never outlive the deletion, and the lock
// order never deadlocks: every delivery is answered 204.
func TestConcurrentGrantsAndDeletions(t *testing.T) {
	b := setupWebhook(t)
	const users = 12
	var payloads []map[string]any
	for i := range users {
		u := fmt.Sprintf("u_c%d", i)
		when := at(5)
		if i%2 == 1 {
			when = at(15) // stamped after the deletion: clock skew between Logto instances
		}
		payloads = append(payloads, rolesUpdated(u, when, map[string]any{
			"roles":        []any{role("r_c", "developer"), role("r_d", "admin")},
			"addedRoleIds": []string{"r_c", "r_d"},
		}))
	}
	payloads = append(payloads, roleDeleted("r_c", at(10)), userDeletedAt("u_c0", at(10)), userDeletedAt("u_c1", at(10)))
	start := make(chan struct{})
	errs := make(chan error, len(payloads))
	var wg sync.WaitGroup
	for _, p := range payloads {
		body, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, err := http.NewRequest("POST", b.srv.URL+Path, strings.NewReader(string(body)))
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(SignatureHeader, sign(testKey, body))
			resp, err := b.srv.Client().Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				errs <- fmt.Errorf("%s %v: status %d", p["event"], p["data"], resp.StatusCode)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var active int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM developer_roles WHERE role_id = 'r_c' AND active`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	if active != 0 {
		t.Fatalf("%d users hold the deleted role", active)
	}
	for i := range users {
		u := fmt.Sprintf("u_c%d", i)
		want := "[admin]"
		if i < 2 {
			want = "[]"
		}
		if got := fmt.Sprint(b.developerRoles(t, u)); got != want {
			t.Errorf("%s roles %s, want %s", u, got, want)
		}
	}
}

// clock is a settable clock safe for the server's goroutines.
type clock struct{ ns atomic.Int64 }

func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }

func TestTombstoneRetention(t *testing.T) {
	var c clock
	c.set(testNow)
	b := setupWebhookClock(t, c.now)
	ctx := context.Background()
	tombstones := func() string {
		t.Helper()
		var s string
		if err := b.pool.QueryRow(ctx, `SELECT coalesce(string_agg(kind || '/' || id, ' ' ORDER BY kind, id), '') FROM logto_tombstones`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	cleanup := func(want int64) {
		t.Helper()
		n, err := b.h.Cleanup(ctx)
		if err != nil || n != want {
			t.Fatalf("Cleanup = %d, %v; want %d", n, err, want)
		}
	}

	b.ok(t, grant("u_old", "r_dev", "developer", at(-2)))
	b.ok(t, userDeletedAt("u_old", at(-1))) // recorded at testNow
	c.set(testNow.Add(20 * 24 * time.Hour))
	b.ok(t, roleDeleted("r_gone", c.now())) // recorded 20 days later

	c.set(testNow.Add(DefaultTombstoneRetention)) // u_old recorded exactly one retention ago: kept
	cleanup(0)
	if got := tombstones(); got != "role/r_gone user/u_old" {
		t.Fatalf("tombstones %q", got)
	}
	c.set(testNow.Add(DefaultTombstoneRetention + time.Millisecond))
	cleanup(1)
	cleanup(0) // idempotent
	if got := tombstones(); got != "role/r_gone" {
		t.Fatalf("tombstones %q", got)
	}
	// Without its tombstone, what u_old held still does not come back from an older event:
	// the row's own time (the deletion's) beats it.
	b.ok(t, grant("u_old", "r_dev", "developer", at(-3)))
	if got := b.developerRoles(t, "u_old"); len(got) != 0 {
		t.Fatalf("u_old regained %v after its tombstone expired", got)
	}
	// The role tombstone still stops grants of r_gone.
	b.ok(t, grant("u_new", "r_gone", "developer", c.now()))
	if got := b.developerRoles(t, "u_new"); len(got) != 0 {
		t.Fatalf("u_new was granted a deleted role: %v", got)
	}

	// Many expired rows go in several batches.
	if _, err := b.pool.Exec(ctx, `INSERT INTO logto_tombstones (kind, id, deleted_at, recorded_at)
		SELECT 'user', 'u_bulk' || g, $1, $1 FROM generate_series(1, $2) g`, testNow, 2*cleanupBatch+1); err != nil {
		t.Fatal(err)
	}
	cleanup(2*cleanupBatch + 1)
	if got := tombstones(); got != "role/r_gone" {
		t.Fatalf("tombstones %q", got)
	}
}

// RunCleanup cleans once at start, then at every tick, and returns when its context ends.
func TestRunCleanup(t *testing.T) {
	var c clock
	c.set(testNow)
	b := setupWebhookClock(t, c.now)
	expire := func(id string) {
		t.Helper()
		if _, err := b.pool.Exec(context.Background(), `INSERT INTO logto_tombstones (kind, id, deleted_at, recorded_at) VALUES ('user', $1, $2, $2)`,
			id, testNow.Add(-DefaultTombstoneRetention-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	expire("u_a")
	type run struct {
		n   int64
		err error
	}
	runs := make(chan run)
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		b.h.RunCleanup(ctx, ticks, func(n int64, err error) { runs <- run{n, err} })
	}()
	if r := <-runs; r.err != nil || r.n != 1 {
		t.Fatalf("run at start: %+v", r)
	}
	expire("u_b")
	expire("u_c")
	ticks <- testNow
	if r := <-runs; r.err != nil || r.n != 2 {
		t.Fatalf("run on tick: %+v", r)
	}
	cancel()
	<-stopped
}

func TestRetentionConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		base := map[string]string{"DATABASE_URL": "postgres://x", "LOGTO_WEBHOOK_SIGNING_KEY": testKey}
		for k, v := range m {
			base[k] = v
		}
		return func(k string) string { return base[k] }
	}
	cfg, err := ConfigFromEnv(env(nil))
	if err != nil || cfg.TombstoneRetention != DefaultTombstoneRetention || cfg.CleanupInterval != DefaultCleanupInterval {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = ConfigFromEnv(env(map[string]string{"LOGTO_TOMBSTONE_RETENTION": "2160h", "LOGTO_CLEANUP_INTERVAL": "10m"}))
	if err != nil || cfg.TombstoneRetention != 2160*time.Hour || cfg.CleanupInterval != 10*time.Minute {
		t.Fatalf("set: %+v %v", cfg, err)
	}
	for name, tc := range map[string]struct{ env, value string }{
		"retention not a duration": {"LOGTO_TOMBSTONE_RETENTION", "30d"},
		"retention too short":      {"LOGTO_TOMBSTONE_RETENTION", "1h"},
		"retention negative":       {"LOGTO_TOMBSTONE_RETENTION", "-720h"},
		"interval not a duration":  {"LOGTO_CLEANUP_INTERVAL", "hourly"},
		"interval negative":        {"LOGTO_CLEANUP_INTERVAL", "-1m"},
	} {
		if _, err := ConfigFromEnv(env(map[string]string{tc.env: tc.value})); err == nil || !strings.Contains(err.Error(), tc.env) {
			t.Errorf("%s: error %v does not name %s", name, err, tc.env)
		}
	}
}
