package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/idp"
	"github.com/myscrollr/connect/shared/logto"
)

// An integration client made as the registry makes a push source's (logto.Client.CreateM2M:
// an M2M application and a role carrying data:write, functions/registry/client.go) gives, by client credentials, a token that POST
// /v1/ingest accepts for that push source; the same application without its role gets no
// data:write and is refused.
func TestPushCredentialsFromLogto(t *testing.T) {
	t.Parallel()
	b := setupIngest(t, Config{})
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	lc, err := logto.New(logto.Config{Endpoint: strings.TrimSuffix(b.idp.Issuer(), "/oidc"), AppID: mgmtClient, AppSecret: mgmtSecret,
		HTTPClient: hc, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := lc.CreateM2M(ctx, logto.NewM2M{Name: "push coins", Resource: idp.DefaultAPIResource, Scopes: []string{auth.ScopeDataWrite}})
	if err != nil {
		t.Fatal(err)
	}
	b.pushSource(t, "coins", creds.AppID, pricesManifest)

	tok := clientCredentials(t, hc, b.idp.Issuer(), creds.AppID, creds.Secret)
	code, _, out := b.push(t, tok, batchCT, batch(t, ev("a1", "prices", `{"coin":"btc","cents":1}`)))
	if code != 200 || results(t, out).Stored != 1 {
		t.Fatalf("push with the integration client's token: %d %s", code, out)
	}
	if n := b.count(t, `SELECT count(*) FROM records WHERE key = 'btc'`); n != 1 {
		t.Fatalf("%d records", n)
	}

	// Without its role the application obtains no data:write: its token is refused 403.
	if err := lc.DeleteRole(ctx, creds.RoleID); err != nil {
		t.Fatal(err)
	}
	tok = clientCredentials(t, hc, b.idp.Issuer(), creds.AppID, creds.Secret)
	code, _, out = b.push(t, tok, batchCT, batch(t, ev("a2", "prices", `{"coin":"eth","cents":1}`)))
	if code != http.StatusForbidden {
		t.Fatalf("push without data:write: %d %s", code, out)
	}
}

// clientCredentials obtains a token for the API resource by the client credentials grant.
func clientCredentials(t *testing.T, hc *http.Client, issuer, clientID, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {idp.DefaultAPIResource}}
	req, _ := http.NewRequest("POST", issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.AccessToken == "" {
		t.Fatalf("client credentials: %d %s", resp.StatusCode, out.Error)
	}
	return out.AccessToken
}
