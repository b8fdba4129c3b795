package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/runtime"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const testKey = "whsk_test_0123456789abcdef"

var testNow = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

type bundle struct {
	srv  *httptest.Server
	pool *pgxpool.Pool
	h    *Handler
}

func setupWebhook(t testing.TB) bundle {
	t.Helper()
	return setupWebhookClock(t, func() time.Time { return testNow })
}

// setupWebhookClock is setupWebhook with the handler's clock (outbox times, tombstone
// recording and retention) given by now.
func setupWebhookClock(t testing.TB, now func() time.Time) bundle {
	t.Helper()
	pool := pgtest.Pool(t)
	h, err := New(Config{SigningKeys: []string{testKey}}, pool, slog.New(slog.DiscardHandler), now)
	if err != nil {
		t.Fatal(err)
	}
	stack, err := runtime.NewHandler(runtime.Function{Name: "logto-webhook", HTTP: h.Routes()},
		runtime.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(stack)
	t.Cleanup(srv.Close)
	return bundle{srv: srv, pool: pool, h: h}
}

func sign(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// post sends body with the given signature header ("" = none) and returns status and problem.
func (b bundle) post(t testing.TB, body []byte, sig string) (int, httpx.Problem) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.srv.URL+Path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Logto (https://logto.io/)")
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p httpx.Problem
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("status %d with Content-Type %q: %s", resp.StatusCode, ct, raw)
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("problem body: %v: %s", err, raw)
		}
	}
	return resp.StatusCode, p
}

func (b bundle) send(t testing.TB, payload any) (int, httpx.Problem) {
	t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return b.post(t, body, sign(testKey, body))
}

func (b bundle) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type outboxRow struct {
	ID, AggregateType, AggregateID, Type, Source, Subject string
	Payload                                               json.RawMessage
}

func (b bundle) outbox(t testing.TB) []outboxRow {
	t.Helper()
	rows, err := b.pool.Query(context.Background(),
		`SELECT id::text, aggregatetype, aggregateid, type, source, coalesce(subject, ''), payload FROM outbox ORDER BY created_at, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.ID, &r.AggregateType, &r.AggregateID, &r.Type, &r.Source, &r.Subject, &r.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// logtoPayload is shaped like Logto's HookEventPayload for a data hook.
func logtoPayload(event string, createdAt time.Time, extra map[string]any) map[string]any {
	p := map[string]any{
		"hookId": "hook_abc123", "event": event, "createdAt": createdAt.Format("2006-01-02T15:04:05.000Z07:00"),
		"sessionId": "", "userAgent": "curl/8.0", "ip": "10.0.0.1", "method": "DELETE", "status": 204,
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func userDeleted(userID string) map[string]any {
	return logtoPayload("User.Deleted", testNow, map[string]any{
		"path": "/users/" + userID, "matchedRoute": "/users/:userId", "params": map[string]any{"userId": userID},
		"data": map[string]any{"id": userID, "username": "alice", "primaryEmail": "alice@example.test", "isSuspended": false},
	})
}

func TestSignatureRequired(t *testing.T) {
	b := setupWebhook(t)
	body, _ := json.Marshal(userDeleted("u_alice"))
	tamper := []byte(strings.Replace(string(body), "u_alice", "u_mallory", -1))
	for name, tc := range map[string]struct {
		body []byte
		sig  string
	}{
		"missing":        {body, ""},
		"wrong key":      {body, sign("another-key-0123456789", body)},
		"tampered body":  {tamper, sign(testKey, body)},
		"not hex":        {body, strings.Repeat("z", 64)},
		"truncated":      {body, sign(testKey, body)[:40]},
		"sha256= prefix": {body, "sha256=" + sign(testKey, body)},
	} {
		t.Run(name, func(t *testing.T) {
			status, p := b.post(t, tc.body, tc.sig)
			if status != http.StatusUnauthorized || p.Status != 401 {
				t.Fatalf("status %d %+v", status, p)
			}
		})
	}
	if n := b.count(t, "outbox") + b.count(t, "processed_events"); n != 0 {
		t.Fatalf("%d rows written by rejected deliveries", n)
	}
}

func TestUserDeletedWritesOutboxOnce(t *testing.T) {
	b := setupWebhook(t)
	payload := userDeleted("u_alice")
	for i := range 2 { // the second is Logto retrying the same delivery
		if status, p := b.send(t, payload); status != http.StatusNoContent {
			t.Fatalf("delivery %d: status %d %+v", i, status, p)
		}
	}
	rows := b.outbox(t)
	if len(rows) != 1 {
		t.Fatalf("outbox rows: %+v", rows)
	}
	r := rows[0]
	if r.Type != events.TypeUserDeleted || r.AggregateType != "user" || r.AggregateID != "u_alice" ||
		r.Source != events.Source("logto-webhook") || r.Subject != "u_alice" {
		t.Fatalf("outbox row %+v", r)
	}
	var data events.UserDeleted
	if err := json.Unmarshal(r.Payload, &data); err != nil || data.UserID != "u_alice" || !data.DeletedAt.Equal(testNow) {
		t.Fatalf("payload %s: %+v %v", r.Payload, data, err)
	}
	if n := b.count(t, "processed_events"); n != 1 {
		t.Fatalf("processed_events: %d", n)
	}
}

func TestUserDeletedIDFromParams(t *testing.T) {
	b := setupWebhook(t)
	p := userDeleted("u_bob")
	delete(p, "data")
	if status, prob := b.send(t, p); status != http.StatusNoContent {
		t.Fatalf("status %d %+v", status, prob)
	}
	if rows := b.outbox(t); len(rows) != 1 || rows[0].AggregateID != "u_bob" {
		t.Fatalf("outbox %+v", rows)
	}
}

func TestOversizedBody(t *testing.T) {
	b := setupWebhook(t)
	big := userDeleted("u_alice")
	big["data"].(map[string]any)["customData"] = map[string]any{"blob": strings.Repeat("x", DefaultMaxBody)}
	body, _ := json.Marshal(big)
	status, p := b.post(t, body, sign(testKey, body))
	if status != http.StatusRequestEntityTooLarge || p.Status != 413 {
		t.Fatalf("status %d %+v", status, p)
	}
	if b.count(t, "outbox") != 0 {
		t.Fatal("oversized delivery wrote to the outbox")
	}
}

func TestBadPayloads(t *testing.T) {
	b := setupWebhook(t)
	for name, tc := range map[string]struct {
		body  string
		field string // expected errors[0].field, "" for none
	}{
		"not JSON":           {`{"hookId": "h", "event": `, ""},
		"array":              {`[1, 2]`, ""},
		"trailing data":      {`{"hookId":"h","event":"User.Deleted","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":"u"}} {}`, ""},
		"missing hookId":     {`{"event":"User.Deleted","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":"u"}}`, "hookId"},
		"missing event":      {`{"hookId":"h","createdAt":"2026-09-01T12:00:00.000Z"}`, "event"},
		"hookId number":      {`{"hookId":12,"event":"User.Deleted","createdAt":"2026-09-01T12:00:00.000Z"}`, "hookId"},
		"bad createdAt":      {`{"hookId":"h","event":"PostSignIn","createdAt":"yesterday"}`, "createdAt"},
		"deleted without id": {`{"hookId":"h","event":"User.Deleted","createdAt":"2026-09-01T12:00:00.000Z","data":{}}`, "data.id"},
		"data.id number":     {`{"hookId":"h","event":"User.Deleted","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":7}}`, "data.id"},
		"roles not array":    {`{"hookId":"h","event":"User.Roles.Updated","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":"u"},"roles":{}}`, "roles"},
		"role without name":  {`{"hookId":"h","event":"User.Roles.Updated","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":"u"},"roles":[{"id":"r1"}]}`, "roles[0].name"},
		"no role members":    {`{"hookId":"h","event":"User.Roles.Updated","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":"u"}}`, "roles"},
		"empty added id":     {`{"hookId":"h","event":"User.Roles.Updated","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":"u"},"addedRoleIds":[""]}`, "addedRoleIds[0]"},
		"long user id":       {`{"hookId":"h","event":"User.Deleted","createdAt":"2026-09-01T12:00:00.000Z","data":{"id":"` + strings.Repeat("u", 200) + `"}}`, "data.id"},
	} {
		t.Run(name, func(t *testing.T) {
			status, p := b.post(t, []byte(tc.body), sign(testKey, []byte(tc.body)))
			if status != http.StatusBadRequest {
				t.Fatalf("status %d %+v", status, p)
			}
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Detail, tc.field)) {
				t.Fatalf("problem does not name %q: %+v", tc.field, p)
			}
		})
	}
	if b.count(t, "outbox")+b.count(t, "processed_events") != 0 {
		t.Fatal("bad payloads wrote rows")
	}
}

func TestWrongContentType(t *testing.T) {
	b := setupWebhook(t)
	body, _ := json.Marshal(userDeleted("u_alice"))
	req, _ := http.NewRequest("POST", b.srv.URL+Path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set(SignatureHeader, sign(testKey, body))
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestOtherEventsIgnored(t *testing.T) {
	b := setupWebhook(t)
	for _, ev := range []string{"PostSignIn", "User.Created", "User.Data.Updated", "Organization.Created", "Some.Future.Event"} {
		p := logtoPayload(ev, testNow, map[string]any{"data": map[string]any{"id": "u_1"}, "user": map[string]any{"id": "u_1"}})
		if status, prob := b.send(t, p); status != http.StatusNoContent {
			t.Fatalf("%s: status %d %+v", ev, status, prob)
		}
	}
	if b.count(t, "outbox")+b.count(t, "processed_events") != 0 {
		t.Fatal("ignored events wrote rows")
	}
}

func TestDatabaseDownIs503(t *testing.T) {
	b := setupWebhook(t)
	b.pool.Close()
	status, p := b.send(t, userDeleted("u_alice"))
	if status != http.StatusServiceUnavailable || p.Status != 503 {
		t.Fatalf("status %d %+v", status, p)
	}
}

// roles payloads, shaped like Logto's User.Roles.Updated.
func role(id, name string) map[string]any {
	return map[string]any{"tenantId": "default", "id": id, "name": name, "description": name, "type": "User", "isDefault": false}
}

func rolesUpdated(user string, at time.Time, extra map[string]any) map[string]any {
	m := map[string]any{"data": map[string]any{"id": user, "username": user}, "params": map[string]any{"userId": user}}
	for k, v := range extra {
		m[k] = v
	}
	return logtoPayload("User.Roles.Updated", at, m)
}

func (b bundle) roleEvents(t testing.TB) []events.DeveloperRoleChanged {
	t.Helper()
	var out []events.DeveloperRoleChanged
	for _, r := range b.outbox(t) {
		if r.Type != events.TypeDeveloperRoleChanged {
			continue
		}
		var d events.DeveloperRoleChanged
		if err := json.Unmarshal(r.Payload, &d); err != nil {
			t.Fatal(err)
		}
		if r.AggregateType != "user" || r.AggregateID != d.UserID {
			t.Fatalf("aggregate %s/%s for %+v", r.AggregateType, r.AggregateID, d)
		}
		out = append(out, d)
	}
	return out
}

func (b bundle) developerRoles(t testing.TB, user string) []string {
	t.Helper()
	var roles []string
	err := b.pool.QueryRow(context.Background(), `SELECT coalesce((SELECT roles FROM developers WHERE user_id = $1), '{}')`, user).Scan(&roles)
	if err != nil {
		t.Fatal(err)
	}
	return roles
}

func TestRoleChanges(t *testing.T) {
	b := setupWebhook(t)
	t0 := testNow
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ok := func(p map[string]any) {
		t.Helper()
		if status, prob := b.send(t, p); status != http.StatusNoContent {
			t.Fatalf("status %d %+v", status, prob)
		}
	}
	dev, admin, viewer := role("r_dev", "developer"), role("r_admin", "admin"), role("r_view", "viewer")

	// POST /users/:userId/roles: developer and a role that is not a platform role.
	ok(rolesUpdated("u_1", at(1), map[string]any{"roles": []any{dev, viewer}, "addedRoleIds": []string{"r_dev", "r_view"}}))
	// Only a non-platform role: no event.
	ok(rolesUpdated("u_2", at(2), map[string]any{"roles": []any{viewer}, "addedRoleIds": []string{"r_view"}}))
	// POST /roles/:id/users: admin for u_1.
	ok(rolesUpdated("u_1", at(3), map[string]any{"roles": []any{admin}, "addedRoleIds": []string{"r_admin"}}))
	// DELETE /users/:userId/roles/:roleId carries only the id.
	ok(rolesUpdated("u_1", at(4), map[string]any{"removedRoleIds": []string{"r_dev"}}))
	// A late delivery of an older add must not resurrect the role.
	ok(rolesUpdated("u_1", at(2), map[string]any{"roles": []any{dev}, "addedRoleIds": []string{"r_dev"}}))
	// PUT /users/:userId/roles: the complete set.
	ok(rolesUpdated("u_3", at(5), map[string]any{"roles": []any{dev, admin}}))
	ok(rolesUpdated("u_3", at(6), map[string]any{"roles": []any{dev, viewer}}))
	// Role.Deleted (DELETE /roles/:id: no body, the id is in params).
	ok(logtoPayload("Role.Deleted", at(7), map[string]any{"params": map[string]any{"id": "r_dev"}, "matchedRoute": "/roles/:id"}))

	got := b.roleEvents(t)
	want := []events.DeveloperRoleChanged{
		{UserID: "u_1", Roles: []string{"developer"}, Added: []string{"developer"}, ChangedAt: at(1)},
		{UserID: "u_1", Roles: []string{"admin", "developer"}, Added: []string{"admin"}, ChangedAt: at(3)},
		{UserID: "u_1", Roles: []string{"admin"}, Removed: []string{"developer"}, ChangedAt: at(4)},
		{UserID: "u_3", Roles: []string{"admin", "developer"}, Added: []string{"admin", "developer"}, ChangedAt: at(5)},
		{UserID: "u_3", Roles: []string{"developer"}, Removed: []string{"admin"}, ChangedAt: at(6)},
		{UserID: "u_3", Roles: []string{}, Removed: []string{"developer"}, ChangedAt: at(7)},
	}
	if len(got) != len(want) {
		t.Fatalf("events:\n got %+v\nwant %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.UserID != w.UserID || !slices.Equal(g.Roles, w.Roles) || !slices.Equal(g.Added, w.Added) ||
			!slices.Equal(g.Removed, w.Removed) || !g.ChangedAt.Equal(w.ChangedAt) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	for user, want := range map[string][]string{"u_1": {"admin"}, "u_2": {}, "u_3": {}} {
		if got := b.developerRoles(t, user); !slices.Equal(got, want) {
			t.Errorf("developers(%s) = %v, want %v", user, got, want)
		}
	}

	// User.Deleted takes the remaining roles away without a role event.
	ok(userDeleted("u_1"))
	if got := b.developerRoles(t, "u_1"); len(got) != 0 {
		t.Fatalf("deleted user still has roles %v", got)
	}
	if n := len(b.roleEvents(t)); n != len(want) {
		t.Fatalf("%d role events after User.Deleted", n)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, err := ConfigFromEnv(env(map[string]string{"DATABASE_URL": "postgres://x"})); err == nil ||
		!strings.Contains(err.Error(), "LOGTO_WEBHOOK_SIGNING_KEY") {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := ConfigFromEnv(env(map[string]string{"LOGTO_WEBHOOK_SIGNING_KEY": testKey})); err == nil ||
		!strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("missing url: %v", err)
	}
	cfg, err := ConfigFromEnv(env(map[string]string{"DATABASE_URL": "postgres://x",
		"LOGTO_WEBHOOK_SIGNING_KEY": testKey + ", new-key-0123456789abcdef", "PLATFORM_ROLES": " dev , ops"}))
	if err != nil || len(cfg.SigningKeys) != 2 || !slices.Equal(cfg.PlatformRoles, []string{"dev", "ops"}) || cfg.MaxBody != DefaultMaxBody {
		t.Fatalf("%+v %v", cfg, err)
	}
	cfg, _ = ConfigFromEnv(env(map[string]string{"DATABASE_URL": "postgres://x", "LOGTO_WEBHOOK_SIGNING_KEY": testKey}))
	if !slices.Equal(cfg.PlatformRoles, DefaultPlatformRoles) {
		t.Fatalf("default roles %v", cfg.PlatformRoles)
	}
}

func TestKeyRotation(t *testing.T) {
	keys := [][]byte{[]byte("old-key-0123456789abcdef"), []byte("new-key-0123456789abcdef")}
	body := []byte(`{}`)
	for _, k := range keys {
		if r := verify(keys, body, sign(string(k), body)); r != "" {
			t.Fatalf("key %s: %s", k, r)
		}
	}
	if r := verify(keys, body, strings.ToUpper(sign(string(keys[0]), body))); r != "" {
		t.Fatalf("upper-case hex: %s", r)
	}
	if r := verify(keys, body, sign("third-key-0123456789", body)); r == "" {
		t.Fatal("an unknown key verified")
	}
}

func ExampleConfigFromEnv() {
	env := map[string]string{"DATABASE_URL": "postgres://localhost/connect", "LOGTO_WEBHOOK_SIGNING_KEY": "a-signing-key-of-the-hook"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(cfg.PlatformRoles, cfg.MaxBody, err)
	// Output: [developer admin] 262144 <nil>
}
