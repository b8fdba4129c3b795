package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/manifest/manifesttest"
	"github.com/myscrollr/connect/shared/ssrf"
)

func TestRegister(t *testing.T) {
	t.Parallel()
	b := start(t)
	out := b.register(t, "dev_alice", "world-clock", nil)
	if out.ClientID == "" || out.ClientSecret == "" || out.Integration.Name != "world-clock" || out.Integration.IsPublished {
		t.Fatalf("201 body: %+v", out)
	}
	it := out.Integration
	if len(it.Versions) != 1 || it.Versions[0].Version != "1.0.0" || !it.Versions[0].Publishable || len(it.Versions[0].Checks) != 3 ||
		it.LatestVersion == nil || *it.LatestVersion != "1.0.0" || it.CurrentVersion != nil || it.Tier != "unverified" ||
		it.ClientID == nil || *it.ClientID != out.ClientID {
		t.Fatalf("integration: %+v", it)
	}
	for _, c := range it.Versions[0].Checks {
		if c.Name == "health" && (!c.Passed || c.ResponseTimeMS == nil) {
			t.Errorf("health check: %+v", c)
		}
	}

	// The secret is shown once: GET never shows it, and the database holds only its sealed form,
	// which opens to it only for this row.
	for _, path := range []string{"/v1/developer/integrations", "/v1/developer/integrations/world-clock"} {
		r := b.do(t, "GET", path, b.dev(t, "dev_alice"), nil)
		if r.Status != 200 || strings.Contains(string(r.Body), out.ClientSecret) || strings.Contains(string(r.Body), "t1.") {
			t.Fatalf("GET %s: %d, shows the secret or its sealed form: %s", path, r.Status, r.Body)
		}
	}
	var sealedSecret, id string
	if err := b.owner.QueryRow(context.Background(), `SELECT id::text, client_secret_sealed FROM integrations WHERE name = 'world-clock'`).Scan(&id, &sealedSecret); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealedSecret, out.ClientSecret) || !strings.HasPrefix(sealedSecret, "t1.") {
		t.Fatalf("stored %q", sealedSecret)
	}
	if pt, err := b.keys.Open(sealedSecret, secretAAD(id)); err != nil || string(pt) != out.ClientSecret {
		t.Fatalf("sealed secret opens to %q, %v", pt, err)
	}
	if _, err := b.keys.Open(sealedSecret, secretAAD("00000000-0000-4000-8000-000000000000")); err == nil {
		t.Fatal("the sealed secret opens for another row")
	}

	// The Logto application exists: third-party Traditional, the install callback then the
	// manifest's redirect URI, the manifest's consent scopes, and the secret shown.
	app, err := b.lc.GetApplication(context.Background(), out.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if app.Type != "Traditional" || !app.IsThirdParty || !slices.Equal(app.RedirectURIs, []string{callback, "https://world-clock.example/callback"}) {
		t.Fatalf("application %+v", app)
	}
	var consent struct {
		ResourceScopes []struct {
			Scopes []struct {
				Name string `json:"name"`
			} `json:"scopes"`
		} `json:"resourceScopes"`
	}
	if st := b.mgmt(t, "/api/applications/"+out.ClientID+"/user-consent-scopes", &consent); st != 200 {
		t.Fatalf("consent scopes: %d", st)
	}
	var scopes []string
	for _, rs := range consent.ResourceScopes {
		for _, s := range rs.Scopes {
			scopes = append(scopes, s.Name)
		}
	}
	slices.Sort(scopes)
	if !slices.Equal(scopes, []string{"dashboard:read", "profile:read"}) {
		t.Fatalf("consent scopes %v", scopes)
	}
	if !b.secretWorks(t, out.ClientID, out.ClientSecret) || b.secretWorks(t, out.ClientID, out.ClientSecret+"x") {
		t.Fatal("the secret shown does not authenticate the application (or any secret does)")
	}
	if got := b.outbox(t, id); !slices.Equal(got, []string{"integration.registered"}) {
		t.Fatalf("outbox %v", got)
	}
	// A draft is never public: the catalog reads published rows only.
	if n := b.count(t, `SELECT count(*) FROM integrations WHERE is_published`); n != 0 {
		t.Fatalf("%d published", n)
	}
}

func TestRegisterNameTakenLeavesNoApplication(t *testing.T) {
	t.Parallel()
	rec := &recordingApps{}
	b := startWith(t, func(a Apps) Apps { rec.Apps = a; return rec }, nil)
	first := b.register(t, "dev_alice", "world-clock", nil)
	r := b.do(t, "POST", "/v1/developer/integrations", b.dev(t, "dev_bob"), b.manifestFor("world-clock", "1.0.0", nil))
	if r.Status != http.StatusConflict || r.fields(t)["/name"] != "taken" {
		t.Fatalf("taken name: %d %s", r.Status, r.Body)
	}
	if n := b.checks.Load(); n != 1 {
		t.Errorf("checks ran %d times; a taken name must be refused before", n)
	}
	if len(rec.created) != 1 || rec.created[0] != first.ClientID || len(rec.deleted) != 0 {
		t.Fatalf("applications created %v, deleted %v: the taken name must be refused before Logto is called", rec.created, rec.deleted)
	}
	if n := b.count(t, `SELECT count(*) FROM integrations`); n != 1 {
		t.Fatalf("%d integrations", n)
	}
}

// The race: the name is taken between the first look and the insert. The application created
// for the loser is deleted, and the answer is 409.
func TestRegisterRaceDeletesApplication(t *testing.T) {
	t.Parallel()
	var rec *recordingApps
	var b bundle
	b = startWith(t, func(a Apps) Apps {
		rec = &recordingApps{Apps: a, after: func() {
			b.exec(t, `INSERT INTO integrations (developer_id, name, display_name, type, base_url) VALUES ('dev_bob', 'world-clock', 'W', 'widget', 'https://w.example')`)
		}}
		return rec
	}, nil)
	r := b.do(t, "POST", "/v1/developer/integrations", b.dev(t, "dev_alice"), b.manifestFor("world-clock", "1.0.0", nil))
	if r.Status != http.StatusConflict || r.fields(t)["/name"] != "taken" {
		t.Fatalf("lost race: %d %s", r.Status, r.Body)
	}
	if len(rec.created) != 1 || !slices.Equal(rec.created, rec.deleted) {
		t.Fatalf("created %v, deleted %v", rec.created, rec.deleted)
	}
	if _, err := b.lc.GetApplication(context.Background(), rec.created[0]); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("the loser's application still exists: %v", err)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("%d events", n)
	}
}

// recordingApps records the applications created and deleted through it.
type recordingApps struct {
	Apps
	after            func() // runs after each creation
	created, deleted []string
}

func (r *recordingApps) CreateApplication(ctx context.Context, app logto.NewApplication) (*logto.Application, error) {
	a, err := r.Apps.CreateApplication(ctx, app)
	if err == nil {
		r.created = append(r.created, a.ID)
		if r.after != nil {
			r.after()
		}
	}
	return a, err
}

func (r *recordingApps) DeleteApplication(ctx context.Context, id string) error {
	r.deleted = append(r.deleted, id)
	return r.Apps.DeleteApplication(ctx, id)
}

func TestRegisterBadManifestNamesEveryField(t *testing.T) {
	t.Parallel()
	rec := &recordingApps{}
	b := startWith(t, func(a Apps) Apps { rec.Apps = a; return rec }, nil)
	tok := b.dev(t, "dev_alice")
	r := b.do(t, "POST", "/v1/developer/integrations", tok, b.manifestFor("World Clock", "1.0", func(m map[string]any) {
		m["type"] = "gadget"
		m["scopes"] = []string{"admin:all"}
	}))
	f := r.fields(t)
	if r.Status != 400 || f["/name"] == "" || f["/version"] == "" || f["/type"] == "" || f["/scopes/0"] == "" {
		t.Fatalf("%d %v", r.Status, f)
	}
	r = b.do(t, "POST", "/v1/developer/integrations", tok, b.manifestFor("world-clock", "1.0.0", func(m map[string]any) { m["category"] = "gardening" }))
	if r.Status != 400 || r.fields(t)["/category"] == "" {
		t.Fatalf("unknown category: %d %s", r.Status, r.Body)
	}
	for _, body := range []string{"", "{", "[]", `{"name":1}`, strings.Repeat(" ", 70<<10) + "{}"} {
		r := b.do(t, "POST", "/v1/developer/integrations", tok, body)
		if r.Status != 400 && r.Status != 413 {
			t.Errorf("body %.20q: %d %s", body, r.Status, r.Body)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM integrations`); n != 0 || b.checks.Load() != 0 {
		t.Fatalf("%d integrations, %d check runs after bad manifests", n, b.checks.Load())
	}
	if len(rec.created) != 0 {
		t.Fatalf("applications created for bad manifests: %v", rec.created)
	}
}

func TestScopesAndOwnership(t *testing.T) {
	t.Parallel()
	b := start(t)
	b.register(t, "dev_alice", "world-clock", nil)
	routes := []struct{ method, path string }{
		{"GET", "/v1/developer/integrations/world-clock"},
		{"POST", "/v1/developer/integrations/world-clock/versions"},
		{"POST", "/v1/developer/integrations/world-clock/publish"},
		{"POST", "/v1/developer/integrations/world-clock/unpublish"},
		{"POST", "/v1/developer/integrations/world-clock/deprecate"},
		{"POST", "/v1/developer/integrations/world-clock/secret"},
		{"POST", "/v1/developer/integrations/world-clock/verification"},
	}
	user := b.token(t, "dev_alice", auth.ScopeDashboardRead)
	for _, rt := range append(routes, struct{ method, path string }{"POST", "/v1/developer/integrations"}, struct{ method, path string }{"GET", "/v1/developer/integrations"}) {
		if r := b.do(t, rt.method, rt.path, user, nil); r.Status != http.StatusForbidden {
			t.Errorf("%s %s without integrations:write: %d", rt.method, rt.path, r.Status)
		}
		if r := b.do(t, rt.method, rt.path, "", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d", rt.method, rt.path, r.Status)
		}
	}
	bob := b.dev(t, "dev_bob")
	bodies := map[string]any{
		"versions":  b.manifestFor("world-clock", "2.0.0", nil),
		"deprecate": map[string]any{"message": "going"},
	}
	for _, rt := range routes {
		var body any
		for k, v := range bodies {
			if strings.HasSuffix(rt.path, "/"+k) {
				body = v
			}
		}
		r := b.do(t, rt.method, rt.path, bob, body)
		if r.Status != http.StatusNotFound {
			t.Errorf("%s %s by another developer: %d %s", rt.method, rt.path, r.Status, r.Body)
		}
	}
	var list IntegrationList
	r := b.do(t, "GET", "/v1/developer/integrations", bob, nil)
	r.decode(t, &list)
	if r.Status != 200 || len(list.Items) != 0 {
		t.Fatalf("bob lists %d %s", r.Status, r.Body)
	}
	for _, rt := range []struct{ method, path string }{{"GET", "/v1/admin/verifications"}, {"POST", "/v1/admin/integrations/world-clock/tier"}} {
		if r := b.do(t, rt.method, rt.path, b.dev(t, "dev_alice"), nil); r.Status != http.StatusForbidden {
			t.Errorf("%s %s without integrations:admin: %d", rt.method, rt.path, r.Status)
		}
	}
	// Nothing changed: alice's integration is as registered.
	var id string
	if err := b.owner.QueryRow(context.Background(), `SELECT id::text FROM integrations WHERE name = 'world-clock'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if got := b.outbox(t, id); !slices.Equal(got, []string{"integration.registered"}) {
		t.Fatalf("outbox after refused requests: %v", got)
	}
}

func TestVersionsMustIncrease(t *testing.T) {
	t.Parallel()
	b := start(t)
	tok := b.dev(t, "dev_alice")
	b.register(t, "dev_alice", "world-clock", nil)
	post := func(version string, change func(map[string]any)) reply {
		return b.do(t, "POST", "/v1/developer/integrations/world-clock/versions", tok, b.manifestFor("world-clock", version, change))
	}
	for _, v := range []string{"1.0.0", "0.9.9", "1.0.0-rc.1", "1.0.0+build.2"} {
		if r := post(v, nil); r.Status != http.StatusConflict || r.fields(t)["/version"] != "must be greater than 1.0.0" {
			t.Errorf("version %s: %d %s", v, r.Status, r.Body)
		}
	}
	if r := post("1.1.0-alpha", nil); r.Status != http.StatusCreated {
		t.Fatalf("1.1.0-alpha: %d %s", r.Status, r.Body)
	}
	if r := post("1.1.0-alpha", nil); r.Status != http.StatusConflict {
		t.Errorf("1.1.0-alpha again: %d", r.Status)
	}
	r := post("1.1.0", nil)
	var it Integration
	r.decode(t, &it)
	if r.Status != http.StatusCreated || *it.LatestVersion != "1.1.0" || len(it.Versions) != 3 || it.Versions[0].Version != "1.1.0" || it.Versions[2].Version != "1.0.0" {
		t.Fatalf("1.1.0: %d %+v", r.Status, it)
	}
	r = post("2.0.0", func(m map[string]any) { m["name"] = "other-clock"; m["type"] = "app" })
	if f := r.fields(t); r.Status != 400 || f["/name"] == "" || f["/type"] == "" {
		t.Fatalf("renamed: %d %s", r.Status, r.Body)
	}
	var id string
	if err := b.owner.QueryRow(context.Background(), `SELECT id::text FROM integrations WHERE name = 'world-clock'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if got := b.outbox(t, id); !slices.Equal(got, []string{"integration.registered", "integration.version.created", "integration.version.created"}) {
		t.Fatalf("outbox %v", got)
	}
}

func TestSemverOrder(t *testing.T) {
	t.Parallel()
	// Semantic Versioning 2.0.0 §11's own example, ascending.
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0", "10.0.0", "99999999999999999999.0.0"}
	for i := range order {
		for j := range order {
			if got := semverLess(order[i], order[j]); got != (i < j) {
				t.Errorf("semverLess(%s, %s) = %v", order[i], order[j], got)
			}
		}
	}
	if semverLess("1.0.0+a", "1.0.0+b") || semverLess("1.0.0+b", "1.0.0+a") {
		t.Error("build metadata counted")
	}
}

func TestPublishNeedsPassingChecks(t *testing.T) {
	t.Parallel()
	b := start(t)
	tok := b.dev(t, "dev_alice")
	b.down.Store(true)
	reg := b.register(t, "dev_alice", "world-clock", nil)
	if reg.Integration.Versions[0].Publishable {
		t.Fatal("a version with a failing health check is publishable")
	}
	r := b.do(t, "POST", "/v1/developer/integrations/world-clock/publish", tok, nil)
	f := r.fields(t)
	if r.Status != http.StatusUnprocessableEntity || f["checks/health"] != "GET /health answered 503 Service Unavailable" ||
		len(f) != 1 || !strings.Contains(r.problem(t).Detail, "health") {
		t.Fatalf("publish with health down: %d %s", r.Status, r.Body)
	}
	// The health comes back; a new version is checked again and publishes.
	b.down.Store(false)
	if r := b.do(t, "POST", "/v1/developer/integrations/world-clock/versions", tok, b.manifestFor("world-clock", "1.0.1", func(m map[string]any) {
		m["display_name"] = "World Clock 2"
	})); r.Status != http.StatusCreated {
		t.Fatalf("version: %d %s", r.Status, r.Body)
	}
	r = b.do(t, "POST", "/v1/developer/integrations/world-clock/publish", tok, nil)
	var it Integration
	r.decode(t, &it)
	if r.Status != 200 || !it.IsPublished || it.CurrentVersion == nil || *it.CurrentVersion != "1.0.1" || it.DisplayName != "World Clock 2" {
		t.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	// Publishing again changes nothing and announces nothing.
	if r := b.do(t, "POST", "/v1/developer/integrations/world-clock/publish", tok, nil); r.Status != 200 {
		t.Fatalf("publish again: %d", r.Status)
	}
	var published int
	var version string
	if err := b.owner.QueryRow(context.Background(), `SELECT count(*), max(current_version) FROM integrations WHERE is_published AND name = 'world-clock'`).Scan(&published, &version); err != nil {
		t.Fatal(err)
	}
	if published != 1 || version != "1.0.1" {
		t.Fatalf("catalog sees %d, version %s", published, version)
	}
	// Unpublish: the catalog no longer sees it.
	if r := b.do(t, "POST", "/v1/developer/integrations/world-clock/unpublish", tok, map[string]any{"reason": "maintenance"}); r.Status != 200 {
		t.Fatalf("unpublish: %d %s", r.Status, r.Body)
	}
	if r := b.do(t, "POST", "/v1/developer/integrations/world-clock/unpublish", tok, nil); r.Status != 200 {
		t.Fatalf("unpublish again: %d %s", r.Status, r.Body)
	}
	if n := b.count(t, `SELECT count(*) FROM integrations WHERE is_published`); n != 0 {
		t.Fatalf("%d published after unpublish", n)
	}
	if got := b.outbox(t, reg.Integration.ID); !slices.Equal(got, []string{"integration.registered", "integration.version.created", "integration.published", "integration.unpublished"}) {
		t.Fatalf("outbox %v", got)
	}
}

func TestPaidNeedsVerifiedAndTierRules(t *testing.T) {
	t.Parallel()
	b := start(t)
	tok, admin := b.dev(t, "dev_alice"), b.admin(t)
	reg := b.register(t, "dev_alice", "pro-clock", func(m map[string]any) {
		m["pricing"] = map[string]any{"model": "subscription", "price_cents": 299, "currency": "usd", "interval": "month"}
	})
	r := b.do(t, "POST", "/v1/developer/integrations/pro-clock/publish", tok, nil)
	if r.Status != http.StatusConflict || r.fields(t)["/pricing/model"] == "" {
		t.Fatalf("paid unverified publish: %d %s", r.Status, r.Body)
	}
	tier := func(to, reason string) reply {
		return b.do(t, "POST", "/v1/admin/integrations/pro-clock/tier", admin, map[string]any{"tier": to, "reason": reason})
	}
	if r := tier("featured", "looks great"); r.Status != http.StatusConflict || r.fields(t)["tier"] == "" {
		t.Fatalf("featured from unverified: %d %s", r.Status, r.Body)
	}
	if r := tier("unverified", "no change"); r.Status != http.StatusConflict {
		t.Fatalf("same tier without a request: %d %s", r.Status, r.Body)
	}
	if r := tier("gold", ""); r.Status != 400 || len(r.fields(t)) != 2 {
		t.Fatalf("bad tier request: %d %s", r.Status, r.Body)
	}
	if r := b.do(t, "POST", "/v1/admin/integrations/no-such/tier", admin, map[string]any{"tier": "verified", "reason": "x"}); r.Status != 404 {
		t.Fatalf("unknown integration: %d", r.Status)
	}

	// Verification: one pending at a time; the queue shows it; a tier decision resolves it.
	if r := b.do(t, "POST", "/v1/developer/integrations/pro-clock/verification", tok, map[string]any{"note": "please"}); r.Status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.Status, r.Body)
	}
	if r := b.do(t, "POST", "/v1/developer/integrations/pro-clock/verification", tok, nil); r.Status != http.StatusConflict {
		t.Fatalf("second pending request: %d %s", r.Status, r.Body)
	}
	var q Queue
	r = b.do(t, "GET", "/v1/admin/verifications", admin, nil)
	r.decode(t, &q)
	if r.Status != 200 || len(q.Items) != 1 || q.Items[0].Integration != "pro-clock" || q.Items[0].Note != "please" || q.Items[0].Version != "1.0.0" || len(q.Items[0].Checks) != 3 {
		t.Fatalf("queue: %d %s", r.Status, r.Body)
	}
	var tc TierChanged
	r = tier("verified", "reviewed the code")
	r.decode(t, &tc)
	if r.Status != 200 || tc.FromTier != "unverified" || tc.ToTier != "verified" || tc.Resolved == nil || tc.Resolved.Status != "approved" {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	r = b.do(t, "GET", "/v1/admin/verifications", admin, nil)
	r.decode(t, &q)
	if len(q.Items) != 0 {
		t.Fatalf("queue after approval: %s", r.Body)
	}
	b.exec(t, `INSERT INTO developer_accounts (developer_id, stripe_account_id, charges_enabled) VALUES ('dev_alice', 'acct_1', true)`) // payouts_test.go
	if r := b.do(t, "POST", "/v1/developer/integrations/pro-clock/publish", tok, nil); r.Status != 200 {
		t.Fatalf("paid verified publish: %d %s", r.Status, r.Body)
	}
	if r := tier("unverified", "oops"); r.Status != http.StatusConflict {
		t.Fatalf("published paid back to unverified: %d %s", r.Status, r.Body)
	}
	if r := tier("featured", "staff pick"); r.Status != 200 {
		t.Fatalf("featured from verified: %d %s", r.Status, r.Body)
	}
	if n := b.count(t, `SELECT count(*) FROM integration_tier_changes WHERE integration_id = $1 AND changed_by = 'admin_1'`, reg.Integration.ID); n != 2 {
		t.Fatalf("%d tier changes recorded", n)
	}
	if got := b.outbox(t, reg.Integration.ID); !slices.Equal(got, []string{"integration.registered", "integration.verification.requested",
		"integration.tier.changed", "integration.published", "integration.tier.changed"}) {
		t.Fatalf("outbox %v", got)
	}
	if r := b.do(t, "POST", "/v1/developer/integrations/pro-clock/verification", tok, nil); r.Status != http.StatusConflict {
		t.Fatalf("request while featured: %d", r.Status)
	}
}

func TestRejectionKeepsUnverified(t *testing.T) {
	t.Parallel()
	b := start(t)
	tok, admin := b.dev(t, "dev_alice"), b.admin(t)
	b.register(t, "dev_alice", "world-clock", nil)
	if r := b.do(t, "POST", "/v1/developer/integrations/world-clock/verification", tok, nil); r.Status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.Status, r.Body)
	}
	var tc TierChanged
	r := b.do(t, "POST", "/v1/admin/integrations/world-clock/tier", admin, map[string]any{"tier": "unverified", "reason": "no privacy policy"})
	r.decode(t, &tc)
	if r.Status != 200 || tc.Resolved == nil || tc.Resolved.Status != "rejected" {
		t.Fatalf("reject: %d %s", r.Status, r.Body)
	}
	// A new request may follow the rejection.
	if r := b.do(t, "POST", "/v1/developer/integrations/world-clock/verification", tok, nil); r.Status != http.StatusCreated {
		t.Fatalf("request after rejection: %d %s", r.Status, r.Body)
	}
}

func TestVerificationQueuePages(t *testing.T) {
	t.Parallel()
	b := start(t)
	names := []string{"clock-a", "clock-b", "clock-c"}
	for _, n := range names {
		b.register(t, "dev_"+n, n, nil)
		if r := b.do(t, "POST", "/v1/developer/integrations/"+n+"/verification", b.dev(t, "dev_"+n), nil); r.Status != 201 {
			t.Fatalf("%s: %d", n, r.Status)
		}
	}
	var got []string
	cursor := ""
	for range 5 {
		var q Queue
		r := b.do(t, "GET", "/v1/admin/verifications?limit=2&cursor="+cursor, b.admin(t), nil)
		r.decode(t, &q)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		for _, it := range q.Items {
			got = append(got, it.Integration)
		}
		if cursor = q.NextCursor; cursor == "" {
			break
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Fatalf("pages gave %v", got)
	}
	for _, q := range []string{"limit=0", "limit=101", "cursor=zzz", "cursor=q" + "AAAA"} {
		if r := b.do(t, "GET", "/v1/admin/verifications?"+q, b.admin(t), nil); r.Status != 400 {
			t.Errorf("%s: %d", q, r.Status)
		}
	}
}

func TestDeprecateAndRotate(t *testing.T) {
	t.Parallel()
	b := start(t)
	tok := b.dev(t, "dev_alice")
	reg := b.register(t, "dev_alice", "world-clock", nil)
	b.register(t, "dev_alice", "world-clock-2", nil)
	r := b.do(t, "POST", "/v1/developer/integrations/world-clock/deprecate", tok, map[string]any{"message": "", "sunset": "2020-01-01", "replacement": "Not A Name"})
	if f := r.fields(t); r.Status != 400 || len(f) != 3 {
		t.Fatalf("bad deprecation: %d %s", r.Status, r.Body)
	}
	if r := b.do(t, "POST", "/v1/developer/integrations/world-clock/deprecate", tok, map[string]any{"message": "moving", "replacement": "nope-nope"}); r.Status != 400 {
		t.Fatalf("unknown replacement: %d %s", r.Status, r.Body)
	}
	var it Integration
	r = b.do(t, "POST", "/v1/developer/integrations/world-clock/deprecate", tok, map[string]any{"message": "moving to v2", "sunset": "2026-12-31", "replacement": "world-clock-2"})
	r.decode(t, &it)
	if r.Status != 200 || it.Deprecation == nil || it.Deprecation.Message != "moving to v2" || *it.Deprecation.Sunset != "2026-12-31" || *it.Deprecation.Replacement != "world-clock-2" {
		t.Fatalf("deprecate: %d %s", r.Status, r.Body)
	}

	var rot SecretRotated
	r = b.do(t, "POST", "/v1/developer/integrations/world-clock/secret", tok, nil)
	r.decode(t, &rot)
	if r.Status != 200 || rot.ClientID != reg.ClientID || rot.ClientSecret == "" || rot.ClientSecret == reg.ClientSecret {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	var sealedSecret string
	if err := b.owner.QueryRow(context.Background(), `SELECT client_secret_sealed FROM integrations WHERE id = $1`, reg.Integration.ID).Scan(&sealedSecret); err != nil {
		t.Fatal(err)
	}
	if pt, err := b.keys.Open(sealedSecret, secretAAD(reg.Integration.ID)); err != nil || string(pt) != rot.ClientSecret {
		t.Fatalf("stored secret after rotation: %v", err)
	}
	if !b.secretWorks(t, reg.ClientID, rot.ClientSecret) || b.secretWorks(t, reg.ClientID, reg.ClientSecret) {
		t.Fatal("after rotation the new secret must work and the old one not")
	}
	if got := b.outbox(t, reg.Integration.ID); !slices.Equal(got, []string{"integration.registered", "integration.deprecated"}) {
		t.Fatalf("outbox %v", got)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	b := start(t)
	reg := b.register(t, "dev_alice", "world-clock", nil)
	b.exec(t, `INSERT INTO user_integrations (user_id, integration_id, installed_at) VALUES
		('u1', $1, $2::timestamptz), ('u2', $1, $2::timestamptz + interval '1 hour'), ('u3', $1, $2::timestamptz - interval '3 days'),
		('u4', $1, $2::timestamptz - interval '40 days')`, reg.Integration.ID, testNow)
	b.exec(t, `UPDATE integrations SET uptime_24h = 99.5, uptime_7d = 98, health_status = 'healthy' WHERE id = $1`, reg.Integration.ID)
	var it Integration
	r := b.do(t, "GET", "/v1/developer/integrations/world-clock", b.dev(t, "dev_alice"), nil)
	r.decode(t, &it)
	s := it.Stats
	if r.Status != 200 || s.ActiveInstalls != 4 || len(s.InstallsByDay) != 30 || s.HealthStatus != "healthy" ||
		s.Uptime.H24 == nil || *s.Uptime.H24 != 99.5 || *s.Uptime.D7 != 98 || s.Uptime.D30 != nil {
		t.Fatalf("stats: %d %+v", r.Status, s)
	}
	last, threeAgo := s.InstallsByDay[29], s.InstallsByDay[26]
	if last.Date != "2026-09-01" || last.Installs != 2 || threeAgo.Date != "2026-08-29" || threeAgo.Installs != 1 {
		t.Fatalf("by day: %+v", s.InstallsByDay)
	}
	var total int64
	for _, d := range s.InstallsByDay {
		total += d.Installs
	}
	if total != 3 {
		t.Fatalf("installs in 30 days: %d", total)
	}
}

// The real automated checks (shared/conformance) through the SSRF-safe client, against an app
// on loopback that takes its lifecycle over Kafka: all required checks pass and it publishes;
// with GET /health failing, a new version's publish is refused naming the health check.
func TestRealChecks(t *testing.T) {
	t.Parallel()
	checker, err := NewChecker(Config{Allow: mustAllow(t, "127.0.0.1/32"), AllowLoopbackHTTP: true, CheckHealthThreshold: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := startWith(t, nil, checker)
	tok := b.dev(t, "dev_alice")
	app := func(m map[string]any) {
		delete(m, "widget")
		m["type"] = "app"
		m["app"] = map[string]any{"lifecycle": "kafka"}
	}
	reg := b.register(t, "dev_alice", "kafka-app", app)
	v := reg.Integration.Versions[0]
	if !v.Publishable {
		t.Fatalf("checks of a healthy app: %+v", v.Checks)
	}
	if r := b.do(t, "POST", "/v1/developer/integrations/kafka-app/publish", tok, nil); r.Status != 200 {
		t.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	b.down.Store(true)
	if r := b.do(t, "POST", "/v1/developer/integrations/kafka-app/versions", tok, b.manifestFor("kafka-app", "1.1.0", app)); r.Status != 201 {
		t.Fatalf("version: %d %s", r.Status, r.Body)
	}
	r := b.do(t, "POST", "/v1/developer/integrations/kafka-app/publish", tok, nil)
	if f := r.fields(t); r.Status != http.StatusUnprocessableEntity || !strings.Contains(f["checks/health"], "503") {
		t.Fatalf("publish with health down: %d %s", r.Status, r.Body)
	}
	// The published version stays what the catalog shows.
	var current string
	if err := b.owner.QueryRow(context.Background(), `SELECT current_version FROM integrations WHERE name = 'kafka-app' AND is_published`).Scan(&current); err != nil || current != "1.0.0" {
		t.Fatalf("catalog version %q, %v", current, err)
	}
}

func mustAllow(t *testing.T, s string) []ssrf.Destination {
	t.Helper()
	d, err := ssrf.ParseAllow(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// 1,000 generated invalid manifests (shared/manifest/manifesttest: one to five members made
// wrong): each is answered 400 naming every wrong member by its JSON pointer, and nothing is
// created, checked or called.
func TestGeneratedInvalidManifestsAre400NamingEveryField(t *testing.T) {
	t.Parallel()
	rec := &recordingApps{}
	b := startWith(t, func(a Apps) Apps { rec.Apps = a; return rec }, nil)
	tok := b.dev(t, "dev_alice")
	r := rand.New(rand.NewPCG(11, 1000))
	for range 1000 {
		doc, wrong := manifesttest.Generate(r)
		reply := b.do(t, "POST", "/v1/developer/integrations", tok, doc)
		if reply.Status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s; want 400", doc, reply.Status, reply.Body)
		}
		fields := reply.fields(t)
		for _, w := range wrong {
			if fields[w] == "" {
				t.Fatalf("%s: %s is wrong but not named: %s", doc, w, reply.Body)
			}
		}
	}
	if n := b.count(t, `SELECT count(*) FROM integrations`); n != 0 || b.checks.Load() != 0 || len(rec.created) != 0 {
		t.Fatalf("after invalid manifests: %d integrations, %d check runs, applications %v", n, b.checks.Load(), rec.created)
	}
}
