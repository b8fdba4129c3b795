package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/pgtest"
)

// token is a user access token for the API resource, as the identity server issues it.
func (b bundle) token(t *testing.T, user string) string {
	t.Helper()
	tok, err := b.idp.Mint(idp.TokenRequest{Subject: user, ClientID: "myscrollr-web", Audience: idp.DefaultAPIResource})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// uninstall sends DELETE /v1/installs/{name} with token (none when empty) and returns the
// status and, for an error, the problem.
func uninstall(t *testing.T, srv *httptest.Server, token, name string) (int, *httpx.Problem) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, srv.URL+"/v1/installs/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusNoContent {
		if len(body) != 0 {
			t.Fatalf("204 with a body %q", body)
		}
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("status %d with Content-Type %q: %s", resp.StatusCode, ct, body)
	}
	var p httpx.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("status %d: %v: %s", resp.StatusCode, err, body)
	}
	return resp.StatusCode, &p
}

// revokedEvent is one install.revoked row of the outbox.
type revokedEvent struct {
	ID   string
	Data events.InstallRevoked
}

func (b bundle) revokedEvents(t *testing.T) []revokedEvent {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT id::text, type, aggregateid, payload FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []revokedEvent
	for rows.Next() {
		var id, typ, agg string
		var payload []byte
		if err := rows.Scan(&id, &typ, &agg, &payload); err != nil {
			t.Fatal(err)
		}
		var d events.InstallRevoked
		if err := json.Unmarshal(payload, &d); err != nil {
			t.Fatal(err)
		}
		if typ != events.TypeInstallRevoked || agg != events.InstallKey(d.IntegrationID, d.UserID) {
			t.Fatalf("outbox row %s: type %s, aggregate %s, data %+v", id, typ, agg, d)
		}
		out = append(out, revokedEvent{id, d})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// installed reports whether user has an install of the integration.
func (b bundle) installed(t *testing.T, user, integrationID string) bool {
	t.Helper()
	var ok bool
	if err := b.pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM user_integrations
		WHERE user_id = $1 AND integration_id = $2)`, user, integrationID).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func (b bundle) marks(t *testing.T) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM install_revocations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeleteRevokesInstallAndGrant(t *testing.T) {
	b := setupUninstall(t)
	f := b.seed(t)
	b.exec(t, `UPDATE user_integrations SET sandbox = true WHERE user_id = 'alice' AND integration_id = $1`, f.intA)

	if status, p := uninstall(t, b.events, b.token(t, "alice"), "crypto-ticker"); status != http.StatusNoContent {
		t.Fatalf("status %d %+v", status, p)
	}
	got := b.snapshot(t)
	if got.Installs != 2 || got.Reviews != 3 || got.Outbox != 1 || got.Processed != 0 || b.marks(t) != 1 {
		t.Fatalf("after: %+v, %d marks", got, b.marks(t))
	}
	if b.installed(t, "alice", f.intA) || !b.installed(t, "alice", f.intB) || !b.installed(t, "bob", f.intA) {
		t.Fatal("the wrong install was removed")
	}
	if got.Ratings[f.intA] != "3.50/2/1" { // reviews stay; install_count 2 -> 1
		t.Fatalf("crypto-ticker after: %s", got.Ratings[f.intA])
	}
	// The grant is gone at the identity server; alice's others and bob's stay.
	if want := []string{f.appB, f.appC}; !slices.Equal(b.grantApps(t, "alice"), sorted(want)) {
		t.Fatalf("alice's grants %v, want %v", b.grantApps(t, "alice"), sorted(want))
	}
	if want := []string{f.appA}; !slices.Equal(b.grantApps(t, "bob"), want) {
		t.Fatalf("bob's grants %v, want %v", b.grantApps(t, "bob"), want)
	}
	evs := b.revokedEvents(t)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	if d := evs[0].Data; d.IntegrationID != f.intA || d.Name != "crypto-ticker" || d.UserID != "alice" ||
		d.Reason != events.RevokeUserRequest || !d.Sandbox || d.InstallID == "" || !d.RevokedAt.Equal(testNow) {
		t.Fatalf("install.revoked %+v", d)
	}

	// A repeat answers 204 and writes nothing more.
	if status, p := uninstall(t, b.events, b.token(t, "alice"), "crypto-ticker"); status != http.StatusNoContent {
		t.Fatalf("repeat: status %d %+v", status, p)
	}
	// So does an integration alice never installed (though she once consented to its app):
	// no mark, no call that would revoke her grant, no event.
	if status, p := uninstall(t, b.events, b.token(t, "alice"), "scores"); status != http.StatusNoContent {
		t.Fatalf("never installed: status %d %+v", status, p)
	}
	if again := b.snapshot(t); again.Installs != got.Installs || again.Outbox != 1 || b.marks(t) != 1 {
		t.Fatalf("repeat wrote: %+v -> %+v, %d marks", got, again, b.marks(t))
	}
	if !slices.Contains(b.grantApps(t, "alice"), f.appC) {
		t.Fatal("uninstalling what was never installed revoked a grant")
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestDeleteTouchesOnlyTheCallersInstall(t *testing.T) {
	b := setupUninstall(t)
	f := b.seed(t)
	before := b.snapshot(t)
	// bob never installed weather, which alice did: nothing of alice's changes.
	if status, p := uninstall(t, b.events, b.token(t, "bob"), "weather"); status != http.StatusNoContent {
		t.Fatalf("status %d %+v", status, p)
	}
	if after := b.snapshot(t); after.Installs != before.Installs || after.Outbox != 0 || !b.installed(t, "alice", f.intB) {
		t.Fatalf("bob's DELETE of weather changed %+v -> %+v", before, after)
	}
	// bob's own crypto-ticker goes; alice's install of it and her grant stay.
	if status, p := uninstall(t, b.events, b.token(t, "bob"), "crypto-ticker"); status != http.StatusNoContent {
		t.Fatalf("status %d %+v", status, p)
	}
	if b.installed(t, "bob", f.intA) || !b.installed(t, "alice", f.intA) || !b.installed(t, "alice", f.intB) {
		t.Fatal("wrong installs after bob's DELETE")
	}
	if len(b.grantApps(t, "bob")) != 0 || len(b.grantApps(t, "alice")) != 3 {
		t.Fatalf("grants: bob %v, alice %v", b.grantApps(t, "bob"), b.grantApps(t, "alice"))
	}
	if evs := b.revokedEvents(t); len(evs) != 1 || evs[0].Data.UserID != "bob" {
		t.Fatalf("events %+v", evs)
	}
}

func TestDeleteRefusals(t *testing.T) {
	b := setupUninstall(t)
	b.seed(t)
	before := b.snapshot(t)
	appToken, err := b.idp.Mint(idp.TokenRequest{Subject: "push-app", ClientID: "push-app", Audience: idp.DefaultAPIResource})
	if err != nil {
		t.Fatal(err)
	}
	otherAud, err := b.idp.Mint(idp.TokenRequest{Subject: "alice", ClientID: "web", Audience: "https://elsewhere.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, integration string
		status                   int
		field                    string
	}{
		{"no token", "", "crypto-ticker", http.StatusUnauthorized, ""},
		{"token for another audience", otherAud, "crypto-ticker", http.StatusUnauthorized, ""},
		{"an application's own token", appToken, "crypto-ticker", http.StatusForbidden, ""},
		{"unknown integration", b.token(t, "alice"), "no-such-thing", http.StatusNotFound, "integration"},
		{"name too long", b.token(t, "alice"), strings.Repeat("x", 200), http.StatusNotFound, "integration"},
		{"name with invalid UTF-8", b.token(t, "alice"), "crypto%FFticker", http.StatusNotFound, "integration"},
		{"name with NUL", b.token(t, "alice"), "crypto%00ticker", http.StatusNotFound, "integration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, p := uninstall(t, b.events, tc.token, tc.integration)
			if status != tc.status || p == nil || p.Status != tc.status {
				t.Fatalf("status %d %+v, want %d", status, p, tc.status)
			}
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Fatalf("problem %+v does not name %q", p, tc.field)
			}
		})
	}
	if after := b.snapshot(t); after.Installs != before.Installs || after.Outbox != 0 || b.marks(t) != 0 {
		t.Fatalf("refused requests wrote: %+v -> %+v", before, after)
	}
}

// deadLogto is a Logto client for an address nothing listens on.
func deadLogto(t *testing.T) *logto.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	lc, err := logto.New(logto.Config{Endpoint: dead, AppID: "m2m", AppSecret: "m2m-secret", MaxAttempts: 1, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

func TestDeleteWhileLogtoIsDownIs503AndRemovesNothing(t *testing.T) {
	b := setupUninstall(t)
	f := b.seed(t)
	_, down := b.serve(t, deadLogto(t))
	before := b.snapshot(t)
	status, p := uninstall(t, down, b.token(t, "alice"), "crypto-ticker")
	if status != http.StatusServiceUnavailable || p == nil || strings.Contains(p.Detail, "127.0.0.1") {
		t.Fatalf("status %d %+v, want 503 saying nothing of the address", status, p)
	}
	after := b.snapshot(t)
	if after.Installs != before.Installs || after.Outbox != 0 || !b.installed(t, "alice", f.intA) || len(b.grantApps(t, "alice")) != 3 {
		t.Fatalf("Logto down, yet %+v -> %+v, grants %v", before, after, b.grantApps(t, "alice"))
	}
	// The same request, once Logto answers, goes through.
	if status, p := uninstall(t, b.events, b.token(t, "alice"), "crypto-ticker"); status != http.StatusNoContent {
		t.Fatalf("retry: status %d %+v", status, p)
	}
	if b.installed(t, "alice", f.intA) || slices.Contains(b.grantApps(t, "alice"), f.appA) || len(b.revokedEvents(t)) != 1 {
		t.Fatal("retry did not revoke")
	}
}

func endedEvent(t *testing.T, typ, id string, data any) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource(events.Source("stripe-webhook"))
	e.SetType(typ)
	if err := e.SetData(events.DataContentType, data); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSubscriptionEndedRedeliveredRevokesOnce(t *testing.T) {
	b := setupUninstall(t)
	f := b.seed(t)
	ev := endedEvent(t, events.TypeSubscriptionEnded, "evt-sub-1", events.SubscriptionEnded{
		StripeSubscriptionID: "sub_1", IntegrationID: strings.ToUpper(f.intA), UserID: "alice", EndedAt: testNow})
	for i := range 3 {
		if status := post(t, b.events, ev); status != http.StatusOK {
			t.Fatalf("delivery %d: status %d", i, status)
		}
	}
	evs := b.revokedEvents(t)
	if len(evs) != 1 {
		t.Fatalf("%d install.revoked for one subscription.ended", len(evs))
	}
	if d := evs[0].Data; d.Reason != events.RevokeSubscriptionEnd || d.UserID != "alice" || d.IntegrationID != f.intA {
		t.Fatalf("install.revoked %+v", d)
	}
	if want := derivedEventID(ev.Source(), ev.ID())(evs[0].Data.InstallID); evs[0].ID != want {
		t.Fatalf("event id %s, want %s derived from the subscription.ended", evs[0].ID, want)
	}
	if s := b.snapshot(t); s.Processed != 1 || b.installed(t, "alice", f.intA) || !b.installed(t, "bob", f.intA) {
		t.Fatalf("after: %+v", s)
	}
	if slices.Contains(b.grantApps(t, "alice"), f.appA) || !slices.Contains(b.grantApps(t, "bob"), f.appA) {
		t.Fatal("grants after subscription.ended")
	}

	// Ended for a user without an install, or an integration that no longer exists: claimed,
	// nothing else.
	for i, d := range []events.SubscriptionEnded{
		{StripeSubscriptionID: "sub_2", IntegrationID: f.intC, UserID: "alice", EndedAt: testNow},
		{StripeSubscriptionID: "sub_3", IntegrationID: "0b7e6f1c-0000-4000-8000-000000000009", UserID: "alice", EndedAt: testNow},
	} {
		if status := post(t, b.events, endedEvent(t, events.TypeSubscriptionEnded, fmt.Sprintf("evt-none-%d", i), d)); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
	}
	if s := b.snapshot(t); s.Processed != 3 || s.Outbox != 1 || !slices.Contains(b.grantApps(t, "alice"), f.appC) {
		t.Fatalf("no-install events: %+v", s)
	}
}

func TestRevokeRequestedByPayments(t *testing.T) {
	b := setupUninstall(t)
	f := b.seed(t)
	ev := endedEvent(t, events.TypeInstallRevokeRequested, "evt-refund-1", events.InstallRevokeRequested{
		IntegrationID: f.intB, UserID: "alice", Reason: events.RevokeRefunded, RequestedAt: testNow})
	for range 2 {
		if status := post(t, b.events, ev); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
	}
	evs := b.revokedEvents(t)
	if len(evs) != 1 || evs[0].Data.Reason != events.RevokeRefunded || evs[0].Data.IntegrationID != f.intB {
		t.Fatalf("events %+v", evs)
	}
	if b.installed(t, "alice", f.intB) || slices.Contains(b.grantApps(t, "alice"), f.appB) {
		t.Fatal("refund did not revoke")
	}
	// Any other reason is refused by the schema: dead letter, nothing changes.
	bad := endedEvent(t, events.TypeInstallRevokeRequested, "evt-bad", map[string]any{
		"integration_id": f.intA, "user_id": "alice", "reason": "user_request", "requested_at": testNow})
	if status := post(t, b.events, bad); status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	if !b.installed(t, "alice", f.intA) || len(b.revokedEvents(t)) != 1 {
		t.Fatal("a refused event changed something")
	}
}

// TestEventWhileLogtoIsDownIsRetried: a subscription.ended that cannot revoke the grant is
// answered 500 (redelivered) and deletes nothing.
func TestEventWhileLogtoIsDownIsRetried(t *testing.T) {
	b := setupUninstall(t)
	f := b.seed(t)
	_, down := b.serve(t, deadLogto(t))
	ev := endedEvent(t, events.TypeSubscriptionEnded, "evt-sub-down", events.SubscriptionEnded{
		StripeSubscriptionID: "sub_1", IntegrationID: f.intA, UserID: "alice", EndedAt: testNow})
	if status := post(t, down, ev); status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", status)
	}
	if s := b.snapshot(t); s.Processed != 0 || s.Outbox != 0 || !b.installed(t, "alice", f.intA) {
		t.Fatalf("after: %+v", s)
	}
	if status := post(t, b.events, ev); status != http.StatusOK {
		t.Fatalf("redelivery: status %d", status)
	}
	if b.installed(t, "alice", f.intA) || len(b.revokedEvents(t)) != 1 {
		t.Fatal("redelivery did not revoke")
	}
}

// recordInstall does what the consent callback of functions/install does after exchanging the
// code, per migration 00008: under the (user, integration) advisory lock, it refuses to record
// an install started before the last revocation mark and then revokes the grant it got;
// otherwise it records the install. It reports whether it recorded.
func recordInstall(ctx context.Context, b bundle, user, integrationID, appID string, started time.Time) (bool, error) {
	var refused bool
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2::text, 0))`, user, integrationID); err != nil {
			return err
		}
		var revokedAt *time.Time
		err := tx.QueryRow(ctx, `SELECT revoked_at FROM install_revocations WHERE user_id = $1 AND integration_id = $2`,
			user, integrationID).Scan(&revokedAt)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if revokedAt != nil && revokedAt.After(started) {
			refused = true
			return nil
		}
		tag, err := tx.Exec(ctx, `INSERT INTO user_integrations (user_id, integration_id) VALUES ($1, $2)
			ON CONFLICT (user_id, integration_id) DO NOTHING`, user, integrationID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			_, err = tx.Exec(ctx, `UPDATE integrations SET install_count = install_count + 1 WHERE id = $1`, integrationID)
		}
		return err
	})
	if err != nil {
		return false, err
	}
	if refused {
		_, err := b.lc.RevokeGrants(ctx, user, appID)
		return false, err
	}
	return true, nil
}

// TestInstallAndRevokeRacing races the consent callback (consent at the identity server, which
// records the grant as the code exchange would, then recordInstall) against the user's DELETE,
// many times, from two starting points: not installed yet, and installed already (the user
// consents again). Every run must end consistent: an install row if and only if a grant.
func TestInstallAndRevokeRacing(t *testing.T) {
	b := setupUninstall(t)
	ctx := context.Background()
	app := b.app(t, "Racer")
	intID := b.integration(t, "racer", &app)
	runs := 40
	if testing.Short() {
		runs = 10
	}
	outcomes := map[string]int{}
	for i := range runs {
		user := fmt.Sprintf("racer-%d", i)
		preinstalled := i%2 == 1
		if preinstalled {
			b.consent(t, app, user)
			b.install(t, user, intID)
		}
		var started time.Time // the install's state: created before the race, as POST /v1/installs does
		if err := b.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&started); err != nil {
			t.Fatal(err)
		}
		token := b.token(t, user)
		start := make(chan struct{})
		var wg sync.WaitGroup
		var recorded bool
		var installErr error
		var status int
		var p *httpx.Problem
		wg.Go(func() {
			<-start
			if _, err := consentOnce(b, app, user); err != nil {
				installErr = err
				return
			}
			recorded, installErr = recordInstall(ctx, b, user, intID, app, started)
		})
		wg.Go(func() {
			<-start
			status, p = uninstallNoFatal(b.events, token, "racer")
		})
		close(start)
		wg.Wait()
		if installErr != nil {
			t.Fatalf("run %d: install side: %v", i, installErr)
		}
		if status != http.StatusNoContent {
			t.Fatalf("run %d: DELETE status %d %+v", i, status, p)
		}
		hasInstall := b.installed(t, user, intID)
		grants := b.grantApps(t, user)
		if hasInstall != (len(grants) > 0) {
			t.Fatalf("run %d (preinstalled %v, callback recorded %v): install %v but grants %v", i, preinstalled, recorded, hasInstall, grants)
		}
		outcomes[fmt.Sprintf("preinstalled=%v installed=%v", preinstalled, hasInstall)]++
	}
	// The counts are consistent with the rows: install_count is the number of installs.
	var count, rows int
	if err := b.pool.QueryRow(ctx, `SELECT install_count, (SELECT count(*) FROM user_integrations WHERE integration_id = $1)
		FROM integrations WHERE id = $1`, intID).Scan(&count, &rows); err != nil {
		t.Fatal(err)
	}
	if count != rows {
		t.Fatalf("install_count %d, %d install rows", count, rows)
	}
	if evs := b.revokedEvents(t); len(evs) > runs {
		t.Fatalf("%d install.revoked for %d DELETEs", len(evs), runs)
	}
	t.Logf("outcomes over %d runs: %v", runs, outcomes)
}

// consentOnce is bundle.consent for a goroutine: it returns the error instead of failing.
func consentOnce(b bundle, clientID, user string) (string, error) {
	return idptest.Consent(b.idp.Issuer(), clientID, redirect, user)
}

// uninstallNoFatal is uninstall for a goroutine.
func uninstallNoFatal(srv *httptest.Server, token, name string) (int, *httpx.Problem) {
	req, err := http.NewRequest(http.MethodDelete, srv.URL+"/v1/installs/"+name, nil)
	if err != nil {
		return 0, &httpx.Problem{Detail: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		return 0, &httpx.Problem{Detail: err.Error()}
	}
	defer resp.Body.Close()
	var p httpx.Problem
	if resp.StatusCode != http.StatusNoContent {
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, &p
	}
	return resp.StatusCode, nil
}

// TestLeastPrivilege runs every path as the function's own database role (connect_uninstall,
// migrations 00004 and 00008), so a query needing a privilege the role lacks fails here.
func TestLeastPrivilege(t *testing.T) {
	b := setupUninstall(t)
	owner, fn := pgtest.FunctionURL(t, "uninstall")
	open := func(u string) *pgxpool.Pool {
		p, err := db.Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	b.pool = open(owner) // seeds and inspects
	_, srv := b.serveWith(t, open(fn), b.lc)
	f := b.seed(t)

	if status, p := uninstall(t, srv, b.token(t, "alice"), "crypto-ticker"); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %+v", status, p)
	}
	for _, e := range []event.Event{
		endedEvent(t, events.TypeSubscriptionEnded, "evt-1", events.SubscriptionEnded{
			StripeSubscriptionID: "sub_1", IntegrationID: f.intB, UserID: "alice", EndedAt: testNow}),
		endedEvent(t, events.TypeInstallRevokeRequested, "evt-2", events.InstallRevokeRequested{
			IntegrationID: f.intA, UserID: "bob", Reason: events.RevokePaymentFailed, RequestedAt: testNow}),
		userDeletedEvent(t, "evt-3", "alice"),
	} {
		if status := post(t, srv, e); status != http.StatusOK {
			t.Fatalf("%s: status %d", e.Type(), status)
		}
	}
	if s := b.snapshot(t); s.Installs != 0 || s.Outbox != 3 || s.Processed != 3 || s.Reviews != 1 || b.marks(t) != 3 {
		t.Fatalf("after: %+v, %d marks", s, b.marks(t))
	}
}

// hookRevoker runs before once, just before the first grant revocation it is asked for.
type hookRevoker struct {
	Revoker
	once   sync.Once
	before func()
}

func (h *hookRevoker) RevokeGrants(ctx context.Context, user, app string) (int, error) {
	h.once.Do(h.before)
	return h.Revoker.RevokeGrants(ctx, user, app)
}

// TestCallbackBetweenMarkAndRevocation fixes the interleaving the mark exists for: the user,
// installed, consents again (an install started before the DELETE); the code exchange happens
// after tx 1 marked but before the grant is revoked, and the callback records only after the
// DELETE finished. The callback must be refused, or the install would outlive its grant.
func TestCallbackBetweenMarkAndRevocation(t *testing.T) {
	b := setupUninstall(t)
	ctx := context.Background()
	app := b.app(t, "Racer")
	intID := b.integration(t, "racer", &app)
	b.consent(t, app, "carol")
	b.install(t, "carol", intID)
	var started time.Time
	if err := b.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&started); err != nil {
		t.Fatal(err)
	}
	hook := &hookRevoker{Revoker: b.lc, before: func() {
		if _, err := consentOnce(b, app, "carol"); err != nil {
			t.Error(err)
		}
	}}
	_, srv := b.serve(t, hook)
	if status, p := uninstall(t, srv, b.token(t, "carol"), "racer"); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %+v", status, p)
	}
	recorded, err := recordInstall(ctx, b, "carol", intID, app, started)
	if err != nil {
		t.Fatal(err)
	}
	if recorded || b.installed(t, "carol", intID) || len(b.grantApps(t, "carol")) != 0 {
		t.Fatalf("recorded %v, installed %v, grants %v: want neither", recorded, b.installed(t, "carol", intID), b.grantApps(t, "carol"))
	}
}
