package idp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/logto"
)

// clientCredentials asks the token endpoint for a token of resource with scope (none when
// empty) and returns the status and the decoded answer.
func clientCredentials(t *testing.T, s *idp.Server, hc *http.Client, id, secret, resource, scope string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequest("POST", s.Issuer()+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("token endpoint %d: %v: %s", resp.StatusCode, err, body)
	}
	return resp.StatusCode, out
}

func managementClient(t *testing.T, s *idp.Server, hc *http.Client) *logto.Client {
	t.Helper()
	lc, err := logto.New(logto.Config{Endpoint: base(s), AppID: "m2m", AppSecret: "m2m-secret", HTTPClient: hc,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

// TestPushCredentials: an M2M application with a role carrying data:write obtains tokens with
// exactly data:write for the API resource, verified as the ingest function would; without the
// role (before it is assigned, after the role is deleted) it obtains no scope.
func TestPushCredentials(t *testing.T) {
	s, hc := start(t)
	v := verifier(t, s, hc, nil)
	lc := managementClient(t, s, hc)
	ctx := context.Background()

	// The resource's scopes, by the resource's id (found by its indicator).
	resources, err := lc.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(resources, func(r logto.Resource) bool { return r.Indicator == idp.DefaultAPIResource })
	if i < 0 {
		t.Fatalf("resources %+v lack %s", resources, idp.DefaultAPIResource)
	}
	scopes, err := lc.ResourceScopes(ctx, resources[i].ID)
	if err != nil || !slices.ContainsFunc(scopes, func(sc logto.Scope) bool { return sc.Name == "data:write" && sc.ID != "" }) {
		t.Fatalf("scopes %+v, %v", scopes, err)
	}
	if _, err := lc.ResourceScopes(ctx, "no-such-resource"); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("unknown resource: %v", err)
	}
	if _, err := lc.ScopeIDs(ctx, idp.DefaultAPIResource, "data:write", "no:such"); err == nil || !strings.Contains(err.Error(), `"no:such"`) {
		t.Fatalf("unknown scope: %v", err)
	}

	// An M2M application with no role gets a token without scopes, and no data:write.
	bare, err := lc.CreateM2MApplication(ctx, "Bare push source", "")
	if err != nil || bare.Secret == "" || bare.Type != "MachineToMachine" {
		t.Fatalf("bare app %+v %v", bare, err)
	}
	status, tok := clientCredentials(t, s, hc, bare.ID, bare.Secret, idp.DefaultAPIResource, "")
	if status != 200 {
		t.Fatalf("bare app: %d %v", status, tok)
	}
	if p, err := v.Verify(ctx, tok["access_token"].(string)); err != nil || len(p.Scopes) != 0 {
		t.Fatalf("bare app's token: %+v %v", p, err)
	}
	if status, _ := clientCredentials(t, s, hc, bare.ID, bare.Secret, idp.DefaultAPIResource, "data:write"); status != 400 {
		t.Fatalf("bare app asking for data:write: status %d", status)
	}

	// The one call a push source's registration makes.
	m, err := lc.CreateM2M(ctx, logto.NewM2M{Name: "Stock feed", Resource: idp.DefaultAPIResource, Scopes: []string{"data:write"}})
	if err != nil || m.AppID == "" || m.Secret == "" || m.RoleID == "" {
		t.Fatalf("CreateM2M = %+v, %v", m, err)
	}
	role, err := lc.GetRole(ctx, m.RoleID)
	if err != nil || role.Type != logto.RoleTypeMachineToMachine {
		t.Fatalf("role %+v %v", role, err)
	}
	if apps, err := lc.RoleApplications(ctx, m.RoleID); err != nil || !slices.Equal(apps, []string{m.AppID}) {
		t.Fatalf("role applications %v %v", apps, err)
	}
	for _, scope := range []string{"", "data:write"} {
		status, tok := clientCredentials(t, s, hc, m.AppID, m.Secret, idp.DefaultAPIResource, scope)
		if status != 200 {
			t.Fatalf("scope %q: %d %v", scope, status, tok)
		}
		p, err := v.Verify(ctx, tok["access_token"].(string))
		if err != nil || p.ClientID != m.AppID || !slices.Equal(p.Scopes, []string{"data:write"}) {
			t.Fatalf("scope %q: token %+v %v", scope, p, err)
		}
	}
	// The role carries data:write only.
	if status, _ := clientCredentials(t, s, hc, m.AppID, m.Secret, idp.DefaultAPIResource, "dashboard:read"); status != 400 {
		t.Fatalf("scope outside the role: status %d", status)
	}
	// Another application's role gives the bare one nothing.
	if status, _ := clientCredentials(t, s, hc, bare.ID, bare.Secret, idp.DefaultAPIResource, "data:write"); status != 400 {
		t.Fatalf("bare app after another app's role: status %d", status)
	}

	// Deleting the role takes the scope away; deleting both is repeatable.
	if err := lc.DeleteRole(ctx, m.RoleID); err != nil {
		t.Fatal(err)
	}
	if status, _ := clientCredentials(t, s, hc, m.AppID, m.Secret, idp.DefaultAPIResource, "data:write"); status != 400 {
		t.Fatalf("after the role is deleted: status %d", status)
	}
	for range 2 {
		if err := lc.DeleteM2M(ctx, *m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lc.GetApplication(ctx, m.AppID); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("application after DeleteM2M: %v", err)
	}
	if status, _ := clientCredentials(t, s, hc, m.AppID, m.Secret, idp.DefaultAPIResource, ""); status == 200 {
		t.Fatal("a deleted application obtained a token")
	}
}

// TestIntegrationClientWithoutScopes: the integration client of an integration that is not a
// push source (logto.Client.CreateM2M with no scopes: a role carrying none) obtains a token for
// the API resource with an empty scope whose client_id is its own, and can ask for no scope.
func TestIntegrationClientWithoutScopes(t *testing.T) {
	s, hc := start(t)
	v := verifier(t, s, hc, nil)
	lc := managementClient(t, s, hc)
	ctx := context.Background()

	m, err := lc.CreateM2M(ctx, logto.NewM2M{Name: "notes", Resource: idp.DefaultAPIResource})
	if err != nil || m.AppID == "" || m.Secret == "" || m.RoleID == "" {
		t.Fatalf("CreateM2M without scopes = %+v, %v", m, err)
	}
	if role, err := lc.GetRole(ctx, m.RoleID); err != nil || role.Type != logto.RoleTypeMachineToMachine || role.Description == "" {
		t.Fatalf("role %+v %v", role, err)
	}
	if apps, err := lc.RoleApplications(ctx, m.RoleID); err != nil || !slices.Equal(apps, []string{m.AppID}) {
		t.Fatalf("role applications %v %v", apps, err)
	}
	status, tok := clientCredentials(t, s, hc, m.AppID, m.Secret, idp.DefaultAPIResource, "")
	if status != 200 {
		t.Fatalf("client credentials: %d %v", status, tok)
	}
	if sc, _ := tok["scope"].(string); sc != "" {
		t.Fatalf("answered scope %q, want none", sc)
	}
	p, err := v.Verify(ctx, tok["access_token"].(string))
	if err != nil || p.ClientID != m.AppID || p.Subject != m.AppID || len(p.Scopes) != 0 {
		t.Fatalf("token %+v %v", p, err)
	}
	for _, scope := range []string{"data:write", "dashboard:read"} {
		if status, _ := clientCredentials(t, s, hc, m.AppID, m.Secret, idp.DefaultAPIResource, scope); status != 400 {
			t.Fatalf("asking for %s: status %d", scope, status)
		}
	}
	if err := lc.DeleteM2M(ctx, *m); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.GetRole(ctx, m.RoleID); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("role after DeleteM2M: %v", err)
	}
}

func TestRoleRefusals(t *testing.T) {
	s, hc := start(t)
	lc := managementClient(t, s, hc)
	ctx := context.Background()
	apiErr := func(err error) *logto.APIError {
		t.Helper()
		var ae *logto.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("error %v is not an API error", err)
		}
		return ae
	}
	if _, err := lc.CreateRole(ctx, logto.NewRole{Name: "r", Description: "d", ScopeIDs: []string{"no:such"}}); apiErr(err).Status != 404 {
		t.Fatalf("unknown scope: %v", err)
	}
	r, err := lc.CreateRole(ctx, logto.NewRole{Name: "writers", Description: "push sources", ScopeIDs: []string{"data:write"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CreateRole(ctx, logto.NewRole{Name: "writers", Description: "again"}); apiErr(err).Status != 422 {
		t.Fatalf("duplicate name: %v", err)
	}
	web, err := lc.CreateApplication(ctx, logto.NewApplication{Name: "Web", RedirectURIs: []string{"https://x.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.AssignRole(ctx, r.ID, web.ID); apiErr(err).Status != 422 {
		t.Fatalf("role to a third-party web app: %v", err)
	}
	if err := lc.AssignRole(ctx, r.ID, "no-such-app"); apiErr(err).Status != 404 {
		t.Fatalf("role to an unknown app: %v", err)
	}
	if err := lc.AssignRole(ctx, "no-such-role", web.ID); !errors.Is(err, logto.ErrNotFound) {
		t.Fatalf("unknown role: %v", err)
	}
	app, err := lc.CreateM2MApplication(ctx, "Feed", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.AssignRole(ctx, r.ID, app.ID); err != nil {
		t.Fatal(err)
	}
	if err := lc.AssignRole(ctx, r.ID, app.ID); apiErr(err).Status != 422 {
		t.Fatalf("assigned twice: %v", err)
	}
	// A Management API route without a Management API token is refused.
	req, err := http.NewRequest("POST", base(s)+"/api/roles", strings.NewReader(`{"name":"x","description":"y","type":"MachineToMachine"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token: status %d", resp.StatusCode)
	}
}
