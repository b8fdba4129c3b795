package live

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/pgtest"
)

// Every route of the registry, answering success and its refusals, matches the description:
// the registry binary runs against a real PostgreSQL and the development identity server
// (user tokens and the Logto Management API), its automated checks calling an integration on
// loopback.
func TestRegistryAnswersMatchTheDescription(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary; not in -short")
	}
	checker := newChecker(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, done, err := idp.Start(ctx, "127.0.0.1:0", idp.Config{
		Logger:  slog.New(slog.DiscardHandler),
		Clients: []idp.Client{{ID: "m2m", Secret: "m2m-secret", Type: "MachineToMachine", ManagementAPI: true}},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	integ := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(integ.Close)

	owner, fn := pgtest.FunctionURL(t, "registry")
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	base := startFunction(t, "registry", "DATABASE_URL="+fn,
		"LOGTO_ENDPOINT="+strings.TrimSuffix(s.Issuer(), "/oidc"), "LOGTO_API_RESOURCE="+idp.DefaultAPIResource,
		"LOGTO_M2M_APP_ID=m2m", "LOGTO_M2M_APP_SECRET=m2m-secret", "CLIENT_SECRET_KEYS=t1:"+key,
		"INSTALL_CALLBACK_URL=http://127.0.0.1:8080/v1/installs/callback", "MANIFEST_ALLOW_LOOPBACK_HTTP=true",
		"SSRF_ALLOW=127.0.0.1/32", "CHECK_TIMEOUT=10s")
	client := &http.Client{Transport: checker.Transport(t, nil), Timeout: 30 * time.Second}

	token := func(sub string, scopes ...string) string {
		t.Helper()
		tok, err := s.Mint(idp.TokenRequest{Subject: sub, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	dev, other, admin := token("dev_1", auth.ScopeIntegrationsWrite), token("dev_2", auth.ScopeIntegrationsWrite), token("admin_1", auth.ScopeIntegrationsAdmin)
	expect := func(method, path, tok string, body any, want int) []byte {
		t.Helper()
		var rd io.Reader
		switch v := body.(type) {
		case nil:
		case string:
			rd = strings.NewReader(v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if rd != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Errorf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
		}
		return b
	}
	manifest := func(name, version string) map[string]any {
		return map[string]any{
			"name": name, "display_name": "Widget " + name, "version": version, "type": "widget",
			"description": "A clock.", "base_url": integ.URL, "scopes": []string{"dashboard:read"},
			"category": "productivity", "tags": []string{"time"},
		}
	}
	const it = "/v1/developer/integrations/clock-widget"

	// Registration, reading, versions.
	expect("POST", "/v1/developer/integrations", dev, manifest("clock-widget", "1.0.0"), http.StatusCreated)
	expect("POST", "/v1/developer/integrations", dev, manifest("other-widget", "1.0.0"), http.StatusCreated)
	expect("GET", "/v1/developer/integrations", dev, nil, http.StatusOK)
	b := expect("GET", "/v1/developer/integrations?limit=1", dev, nil, http.StatusOK)
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(b, &page); err != nil || page.NextCursor == "" {
		t.Fatalf("first page: %v, next_cursor %q", err, page.NextCursor)
	}
	expect("GET", "/v1/developer/integrations?limit=1&cursor="+page.NextCursor, dev, nil, http.StatusOK)
	expect("GET", it, dev, nil, http.StatusOK)
	expect("POST", it+"/versions", dev, manifest("clock-widget", "1.1.0"), http.StatusCreated)

	// Publishing: refused while a required check fails (the widget's /manifest and /bundle are
	// not served), accepted once the checks of the version are marked passing.
	expect("POST", it+"/publish", dev, nil, http.StatusUnprocessableEntity)
	conn, err := pgx.Connect(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE integration_checks SET passed = true`); err != nil {
		t.Fatal(err)
	}
	expect("POST", it+"/publish", dev, nil, http.StatusOK)
	expect("POST", it+"/deprecate", dev, map[string]any{"message": "use other-widget", "sunset": "2099-01-01", "replacement": "other-widget"}, http.StatusOK)
	expect("POST", it+"/unpublish", dev, map[string]any{"reason": "moving"}, http.StatusOK)
	expect("POST", it+"/unpublish", dev, nil, http.StatusOK)
	expect("POST", it+"/secret", dev, nil, http.StatusOK)
	expect("POST", it+"/verification", dev, map[string]any{"note": "please"}, http.StatusCreated)
	expect("POST", it+"/verification", dev, nil, http.StatusConflict)
	expect("GET", it, dev, nil, http.StatusOK) // with the pending request

	// Admin.
	expect("GET", "/v1/admin/verifications", admin, nil, http.StatusOK)
	expect("GET", "/v1/admin/verifications?limit=1", admin, nil, http.StatusOK)
	expect("POST", "/v1/admin/integrations/clock-widget/tier", admin, map[string]any{"tier": "featured", "reason": "x"}, http.StatusConflict)
	expect("POST", "/v1/admin/integrations/clock-widget/tier", admin, map[string]any{"tier": "verified", "reason": "good"}, http.StatusOK)
	expect("POST", "/v1/admin/integrations/clock-widget/tier", admin, map[string]any{"tier": "featured", "reason": "great"}, http.StatusOK)

	// Refusals.
	expect("POST", "/v1/developer/integrations", dev, manifest("clock-widget", "1.0.0"), http.StatusConflict)
	expect("POST", "/v1/developer/integrations", dev, map[string]any{"name": "X"}, http.StatusBadRequest)
	expect("POST", "/v1/developer/integrations", dev, `{"name":`, http.StatusBadRequest)
	expect("POST", "/v1/developer/integrations", dev, strings.Repeat(" ", 300<<10), http.StatusRequestEntityTooLarge)
	expect("POST", it+"/versions", dev, manifest("clock-widget", "1.0.5"), http.StatusConflict)
	expect("POST", it+"/deprecate", dev, map[string]any{"message": ""}, http.StatusBadRequest)
	expect("POST", it+"/deprecate", dev, map[string]any{"message": "x", "bogus": 1}, http.StatusBadRequest)
	expect("GET", "/v1/developer/integrations?limit=0", dev, nil, http.StatusBadRequest)
	expect("GET", "/v1/developer/integrations?cursor=zzz", dev, nil, http.StatusBadRequest)
	expect("GET", it, other, nil, http.StatusNotFound)
	expect("POST", it+"/secret", other, nil, http.StatusNotFound)
	expect("GET", "/v1/developer/integrations", "", nil, http.StatusUnauthorized)
	expect("GET", "/v1/developer/integrations", "not-a-token", nil, http.StatusUnauthorized)
	expect("GET", "/v1/developer/integrations", admin, nil, http.StatusForbidden)
	expect("GET", "/v1/admin/verifications", dev, nil, http.StatusForbidden)
	expect("GET", "/v1/admin/verifications?limit=500", admin, nil, http.StatusBadRequest)
	expect("POST", "/v1/admin/integrations/nothing-here/tier", admin, map[string]any{"tier": "verified", "reason": "x"}, http.StatusNotFound)
	expect("POST", "/v1/admin/integrations/clock-widget/tier", admin, map[string]any{"tier": "gold", "reason": "x"}, http.StatusBadRequest)
}
