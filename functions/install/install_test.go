package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/idp"
)

// A free install end to end: consent URL, repeat, consent on the identity server's page,
// callback, the install with the scopes granted, install.completed, the list, and the
// integration claiming the tokens once; the refresh token renews the access token after it
// expired. Nothing the flow logs contains a token, the code or the state.
func TestFreeInstallFlow(t *testing.T) {
	b := setupInstall(t)
	in := b.integration(t, "ticker", listingOpts{published: true, scopes: []string{"profile:read", "dashboard:read", "fantasy:read"}})
	alice := b.userToken(t, "alice")

	r := b.start(t, alice, map[string]any{"integration": "ticker", "scopes": []string{"dashboard:read", "profile:read"}}, http.StatusCreated)
	if r.Status != StatusAwaitingConsent || r.PendingInstallID == "" || r.StateExpiresAt == nil ||
		!r.StateExpiresAt.Equal(b.clk.Now().Add(StateTTL)) {
		t.Fatalf("start: %+v", r)
	}
	cu, err := url.Parse(r.ConsentURL)
	if err != nil {
		t.Fatal(err)
	}
	q := cu.Query()
	if !strings.HasPrefix(r.ConsentURL, b.idp.Issuer()+"/auth?") || q.Get("client_id") != in.AppID || q.Get("redirect_uri") != b.callback ||
		q.Get("scope") != "openid offline_access dashboard:read profile:read" || q.Get("code_challenge_method") != "S256" ||
		q.Get("resource") != idp.DefaultAPIResource || q.Get("prompt") != "consent" || len(q.Get("state")) != 43 {
		t.Fatalf("consent URL %s", r.ConsentURL)
	}
	// The state is stored hashed (and sealed), never as is.
	if n := b.count(t, `SELECT count(*) FROM install_attempts WHERE state_sealed LIKE '%'||$1||'%' OR verifier_sealed LIKE '%'||$1||'%'`, q.Get("state")); n != 0 {
		t.Fatal("the state is stored in the clear")
	}
	// A repeat is the same attempt and writes no second install.requested.
	again := b.start(t, alice, map[string]any{"integration": "ticker", "scopes": []string{"dashboard:read", "profile:read"}}, http.StatusOK)
	if again.ConsentURL != r.ConsentURL || again.PendingInstallID != r.PendingInstallID {
		t.Fatalf("repeat: %+v, first %+v", again, r)
	}
	if s := b.state(t, in); s.Requested != 1 || s.Installs != 0 {
		t.Fatalf("after start: %+v", s)
	}

	cb := b.consent(t, r.ConsentURL, "alice", true)
	got := b.callbackAt(t, cb)
	if got.Get("installed") != "ticker" {
		t.Fatalf("callback: %v", got)
	}
	if s := b.state(t, in); s != (state{Installs: 1, Tokens: 1, Completed: 1, Requested: 1, InstallCount: 1}) {
		t.Fatalf("after callback: %+v", s)
	}
	if n := b.count(t, `SELECT count(*) FROM install_attempts`); n != 0 {
		t.Fatalf("%d attempts left", n)
	}

	// The event: the install, the scopes granted, no token.
	var payload []byte
	if err := b.owner.QueryRow(context.Background(), `SELECT payload::text FROM outbox WHERE type = $1`, events.TypeInstallCompleted).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var done events.InstallCompleted
	if err := json.Unmarshal(payload, &done); err != nil {
		t.Fatal(err)
	}
	if done.UserID != "alice" || done.Name != "ticker" || !slices.Equal(done.Scopes, []string{"dashboard:read", "profile:read"}) ||
		done.Sandbox || !done.TokensExpireAt.Equal(b.clk.Now().Add(time.Hour)) {
		t.Fatalf("install.completed: %s", payload)
	}

	// The list, and a repeat of the install request, show the install.
	st, out, _ := b.do(t, "GET", "/v1/installs", alice, nil)
	var list InstallList
	if err := json.Unmarshal(out, &list); err != nil || st != 200 || len(list.Installs) != 1 {
		t.Fatalf("list: %d %s", st, out)
	}
	li := list.Installs[0]
	if li.ID != done.InstallID || li.Integration != "ticker" || !slices.Equal(li.Scopes, done.Scopes) || li.Sandbox || li.Subscription != nil ||
		!strings.Contains(string(out), `"subscription":null`) {
		t.Fatalf("listed %s", out)
	}
	if st, out, _ := b.do(t, "GET", "/v1/installs", b.userToken(t, "bob"), nil); st != 200 || string(out) != "{\"installs\":[]}\n" {
		t.Fatalf("bob's list: %d %s", st, out)
	}
	if r := b.start(t, alice, map[string]any{"integration": "ticker"}, http.StatusOK); r.Status != StatusInstalled || r.Install == nil || r.Install.ID != done.InstallID {
		t.Fatalf("start when installed: %+v", r)
	}

	// Claims: another integration's token and an unknown install look the same; the right
	// one gets the tokens once, with its integration client's token (a token whose client is
	// the integration's main application, the consent's client, is not the integration).
	other := b.integration(t, "other", listingOpts{published: true})
	path := "/v1/integration/installs/" + done.InstallID + "/token"
	st1, body1, _ := b.do(t, "POST", path, b.clientToken(t, other), nil)
	st2, body2, _ := b.do(t, "POST", "/v1/integration/installs/"+uuid.NewString()+"/token", b.clientToken(t, other), nil)
	if st1 != http.StatusForbidden || st2 != http.StatusForbidden || string(body1) != string(body2) {
		t.Fatalf("another integration's claim: %d %s; unknown install: %d %s", st1, body1, st2, body2)
	}
	if st, out, _ := b.do(t, "POST", path, b.appToken(t, in.AppID), nil); st != http.StatusForbidden {
		t.Fatalf("claim with the main application as client: %d %s", st, out)
	}
	if st, _, _ := b.do(t, "POST", path, "", nil); st != http.StatusUnauthorized {
		t.Fatalf("claim without a token: %d", st)
	}
	st, out, hdr := b.do(t, "POST", path, b.clientToken(t, in), nil)
	var claimed ClaimResponse
	if err := json.Unmarshal(out, &claimed); err != nil || st != 200 || claimed.AccessToken == "" || claimed.RefreshToken == "" ||
		claimed.Scope != "dashboard:read profile:read" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("claim: %d %s", st, out)
	}
	if st, out, _ := b.do(t, "POST", path, b.clientToken(t, in), nil); st != http.StatusGone {
		t.Fatalf("second claim: %d %s", st, out)
	}
	if s := b.state(t, in); s.Tokens != 0 {
		t.Fatalf("tokens kept after the claim: %+v", s)
	}

	// The access token is alice's for the integration; after it expires the refresh token
	// gets a new one.
	v := verifierFor(t, b)
	p, err := v.Verify(context.Background(), claimed.AccessToken)
	if err != nil || p.Subject != "alice" || p.ClientID != in.AppID || !p.Has("dashboard:read") || p.Has("fantasy:read") {
		t.Fatalf("claimed access token: %+v %v", p, err)
	}
	b.clk.Advance(2 * time.Hour)
	if _, err := v.Verify(context.Background(), claimed.AccessToken); err == nil {
		t.Fatal("access token still valid after 2h")
	}
	fresh := refresh(t, b, in, claimed.RefreshToken)
	if p, err := v.Verify(context.Background(), fresh); err != nil || p.Subject != "alice" {
		t.Fatalf("refreshed token: %+v %v", p, err)
	}

	logs := b.logs.String()
	for what, secret := range map[string]string{"access token": claimed.AccessToken, "refresh token": claimed.RefreshToken,
		"state": q.Get("state"), "code": mustQuery(t, cb).Get("code"), "client secret": in.Secret} {
		if secret == "" || strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s (or it is empty)", what)
		}
	}
	if !strings.Contains(logs, `"msg":"installed"`) || !strings.Contains(logs, `"msg":"install tokens claimed"`) {
		t.Errorf("the flow's logs are missing: %s", logs)
	}
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}

// refresh uses the refresh token at the identity server as the integration would.
func refresh(t *testing.T, b *bundle, in integration, rt string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", b.idp.Issuer()+"/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(in.AppID, in.Secret)
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.AccessToken == "" {
		t.Fatalf("refresh: %d %v", resp.StatusCode, err)
	}
	return out.AccessToken
}

func verifierFor(t *testing.T, b *bundle) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: b.idp.Issuer(), Audience: idp.DefaultAPIResource,
		Logger: discard(), Clock: b.clk.Now}, b.hc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Forged, replayed, expired and another user's states are refused, and nothing is recorded.
func TestCallbackRefusals(t *testing.T) {
	b := setupInstall(t)
	in := b.integration(t, "ticker", listingOpts{published: true})
	alice := b.userToken(t, "alice")
	nothing := state{}

	refused := func(name, u, reason string, want state) {
		t.Helper()
		if got := b.callbackAt(t, u).Get("install_error"); got != reason {
			t.Fatalf("%s: install_error=%q, want %q", name, got, reason)
		}
		if s := b.state(t, in); s.Installs != want.Installs || s.Tokens != want.Tokens || s.Completed != want.Completed || s.InstallCount != want.InstallCount {
			t.Fatalf("%s: recorded %+v", name, s)
		}
	}
	refused("no parameters", b.callback, ReasonInvalidRequest, nothing)
	refused("no code", b.callback+"?state=abc", ReasonInvalidRequest, nothing)
	refused("forged state", b.callback+"?state="+random32()+"&code=xyz", ReasonUnknownState, nothing)

	// Expired: consent after 11 minutes; the attempt stays as it was.
	r := b.start(t, alice, map[string]any{"integration": "ticker"}, http.StatusCreated)
	b.clk.Advance(11 * time.Minute)
	cb := b.consent(t, r.ConsentURL, "alice", true)
	refused("expired state", cb, ReasonStateExpired, nothing)
	if n := b.count(t, `SELECT count(*) FROM install_attempts WHERE status = 'awaiting_consent'`); n != 1 {
		t.Fatalf("the expired attempt changed: %d", n)
	}

	// A new request after expiry starts again with a new state.
	r2 := b.start(t, alice, map[string]any{"integration": "ticker"}, http.StatusCreated)
	if r2.ConsentURL == r.ConsentURL {
		t.Fatal("the expired consent URL was handed out again")
	}

	// Another user signs in on alice's consent page: refused, and their grant is dropped.
	cb = b.consent(t, r2.ConsentURL, "mallory", true)
	refused("another user's state", cb, ReasonWrongUser, nothing)
	if grants, err := b.lc.ListGrants(context.Background(), "mallory"); err != nil || len(grants) != 0 {
		t.Fatalf("mallory's grants: %+v %v", grants, err)
	}

	// Denied consent ends the attempt.
	r3 := b.start(t, alice, map[string]any{"integration": "ticker"}, http.StatusCreated)
	refused("denied", b.consent(t, r3.ConsentURL, "alice", false), ReasonDenied, nothing)

	// The real one, then its replay.
	r4 := b.start(t, alice, map[string]any{"integration": "ticker"}, http.StatusCreated)
	cb = b.consent(t, r4.ConsentURL, "alice", true)
	if got := b.callbackAt(t, cb).Get("installed"); got != "ticker" {
		t.Fatalf("install: %q", got)
	}
	one := state{Installs: 1, Tokens: 1, Completed: 1, InstallCount: 1}
	refused("replayed state", cb, ReasonUnknownState, one)

	// A new consent with alice's old state after the install: still refused.
	refused("reused state, new code", b.consent(t, r4.ConsentURL, "alice", true), ReasonUnknownState, one)
}

// A revocation that lands after the install started wins (migration 00008): the callback
// records nothing and revokes the grant it obtained.
func TestRevokedWhileConsenting(t *testing.T) {
	b := setupInstall(t)
	in := b.integration(t, "ticker", listingOpts{published: true})
	r := b.start(t, b.userToken(t, "alice"), map[string]any{"integration": "ticker"}, http.StatusCreated)
	cb := b.consent(t, r.ConsentURL, "alice", true)
	b.exec(t, `INSERT INTO install_revocations (user_id, integration_id, revoked_at) VALUES ('alice', $1, $2)`, in.ID, b.clk.Now().Add(time.Second))
	if got := b.callbackAt(t, cb).Get("install_error"); got != ReasonRevoked {
		t.Fatalf("install_error=%q", got)
	}
	if s := b.state(t, in); s.Installs != 0 || s.Tokens != 0 || s.Completed != 0 {
		t.Fatalf("recorded %+v", s)
	}
	if grants, err := b.lc.ListGrants(context.Background(), "alice"); err != nil || len(grants) != 0 {
		t.Fatalf("alice's grants: %+v %v", grants, err)
	}
	// A revocation before the install started does not stop a new one.
	b.clk.Advance(time.Minute)
	r = b.start(t, b.userToken(t, "alice"), map[string]any{"integration": "ticker"}, http.StatusCreated)
	if got := b.callbackAt(t, b.consent(t, r.ConsentURL, "alice", true)).Get("installed"); got != "ticker" {
		t.Fatalf("install after an old revocation: %q", got)
	}
}

// Requests that cannot be served are refused with a problem naming the field.
func TestStartRefusals(t *testing.T) {
	b := setupInstall(t)
	b.integration(t, "ticker", listingOpts{published: true})
	b.integration(t, "draft", listingOpts{developer: "dev_1"})
	alice := b.userToken(t, "alice")
	for _, tc := range []struct {
		name, token string
		body        any
		status      int
		field       string
	}{
		{"no token", "", map[string]any{"integration": "ticker"}, 401, ""},
		{"an application's token", b.appToken(t, "some-app"), map[string]any{"integration": "ticker"}, 403, ""},
		{"bad name", alice, map[string]any{"integration": "Ticker!"}, 400, "integration"},
		{"unknown field", alice, map[string]any{"integration": "ticker", "extra": 1}, 400, ""},
		{"scope not in the manifest", alice, map[string]any{"integration": "ticker", "scopes": []string{"profile:read", "data:write"}}, 400, "scopes/1"},
		{"scope twice", alice, map[string]any{"integration": "ticker", "scopes": []string{"profile:read", "profile:read"}}, 400, "scopes/1"},
		{"unknown integration", alice, map[string]any{"integration": "nope"}, 404, ""},
		{"someone else's unpublished integration", alice, map[string]any{"integration": "draft"}, 404, ""},
	} {
		st, out, _ := b.do(t, "POST", "/v1/installs", tc.token, tc.body)
		if st != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, st, out, tc.status)
			continue
		}
		if tc.field != "" && !strings.Contains(string(out), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %s does not name %s", tc.name, out, tc.field)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM install_attempts`); n != 0 {
		t.Fatalf("refused requests left %d attempts", n)
	}
}

// The developer of an unpublished integration installs it as a sandbox install, flagged in
// every event; it is never charged.
func TestSandboxInstall(t *testing.T) {
	b := setupInstall(t)
	in := b.integration(t, "draft", listingOpts{developer: "dev_1", pricing: "one_time"})
	r := b.start(t, b.userToken(t, "dev_1"), map[string]any{"integration": "draft"}, http.StatusCreated)
	if r.Status != StatusAwaitingConsent {
		t.Fatalf("sandbox start: %+v", r)
	}
	if got := b.callbackAt(t, b.consent(t, r.ConsentURL, "dev_1", true)).Get("installed"); got != "draft" {
		t.Fatalf("sandbox install: %q", got)
	}
	rows, err := b.owner.Query(context.Background(), `SELECT payload->>'sandbox' FROM outbox WHERE type LIKE 'com.myscrollr.connect.install.%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "true" {
			t.Fatalf("event sandbox=%s", v)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 2 {
		t.Fatalf("%d install events, %v", n, err)
	}
	if c := b.count(t, `SELECT count(*) FROM user_integrations WHERE integration_id = $1 AND sandbox`, in.ID); c != 1 {
		t.Fatalf("sandbox installs: %d", c)
	}
}

// A paid listing makes a pending install; ContinueAfterPayment (the payments seam) turns it
// into the consent step, and install.completed carries the payment.
func TestPaidInstallContinuesAfterPayment(t *testing.T) {
	b := setupInstall(t)
	b.enablePayments(t, "dev_1") // a paid install needs Stripe and a chargeable account (checkout_test.go)
	in := b.integration(t, "pro", listingOpts{published: true, pricing: "one_time"})
	alice := b.userToken(t, "alice")
	r := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusCreated)
	if r.Status != StatusAwaitingPayment || r.PendingInstallID == "" || r.ConsentURL != "" {
		t.Fatalf("paid start: %+v", r)
	}
	if again := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusOK); again.PendingInstallID != r.PendingInstallID {
		t.Fatalf("paid repeat: %+v", again)
	}
	ctx := context.Background()
	if _, err := b.svc.ContinueAfterPayment(ctx, uuid.NewString(), uuid.NewString()); err != ErrNoPendingInstall {
		t.Fatalf("unknown pending install: %v", err)
	}
	payment := uuid.NewString()
	c, err := b.svc.ContinueAfterPayment(ctx, r.PendingInstallID, payment)
	if err != nil || !strings.HasPrefix(c.URL, b.idp.Issuer()+"/auth?") {
		t.Fatalf("continue: %+v %v", c, err)
	}
	if c2, err := b.svc.ContinueAfterPayment(ctx, r.PendingInstallID, payment); err != nil || c2.URL != c.URL {
		t.Fatalf("continue again: %+v %v", c2, err)
	}
	if _, err := b.svc.ContinueAfterPayment(ctx, r.PendingInstallID, uuid.NewString()); err != ErrNotAwaitingPayment {
		t.Fatalf("continue with another payment: %v", err)
	}
	if again := b.start(t, alice, map[string]any{"integration": "pro"}, http.StatusOK); again.ConsentURL != c.URL {
		t.Fatalf("start after payment: %+v", again)
	}
	if got := b.callbackAt(t, b.consent(t, c.URL, "alice", true)).Get("installed"); got != "pro" {
		t.Fatalf("paid install: %q", got)
	}
	var pid string
	if err := b.owner.QueryRow(ctx, `SELECT payload->>'payment_id' FROM outbox WHERE type = $1`, events.TypeInstallCompleted).Scan(&pid); err != nil || pid != payment {
		t.Fatalf("payment_id %q %v", pid, err)
	}
	if s := b.state(t, in); s.Installs != 1 || s.Requested != 1 {
		t.Fatalf("paid: %+v", s)
	}
}

// Unclaimed tokens expire: a claim after INSTALL_TOKEN_TTL answers 410, and a later request
// sweeps what expired.
func TestUnclaimedTokensExpire(t *testing.T) {
	b := setupInstall(t)
	in := b.integration(t, "ticker", listingOpts{published: true})
	r := b.start(t, b.userToken(t, "alice"), map[string]any{"integration": "ticker"}, http.StatusCreated)
	b.callbackAt(t, b.consent(t, r.ConsentURL, "alice", true))
	var id string
	if err := b.owner.QueryRow(context.Background(), `SELECT id::text FROM user_integrations`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	b.clk.Advance(time.Hour)
	if st, out, _ := b.do(t, "POST", "/v1/integration/installs/"+id+"/token", b.clientToken(t, in), nil); st != http.StatusGone {
		t.Fatalf("expired claim: %d %s", st, out)
	}
	if n := b.count(t, `SELECT count(*) FROM install_tokens`); n != 0 {
		t.Fatalf("%d expired tokens kept", n)
	}
}

// Fuzz the callback's query parsing: never a panic, and accepted parameters are bounded.
func FuzzParseCallback(f *testing.F) {
	f.Add("state=abc&code=def")
	f.Add("state=abc&error=access_denied")
	f.Add("state=a&state=b&code=c")
	f.Add("code=%zz&state=x")
	f.Add(strings.Repeat("a=b&", 3000))
	f.Fuzz(func(t *testing.T, raw string) {
		p, reason := parseCallback(raw)
		if reason != "" {
			if reason != ReasonInvalidRequest {
				t.Fatalf("reason %q", reason)
			}
			return
		}
		if p.State == "" || len(p.State) > maxStateLen || (p.Error == "" && (p.Code == "" || len(p.Code) > maxCodeLen)) {
			t.Fatalf("accepted %+v from %q", p, raw)
		}
	})
}
