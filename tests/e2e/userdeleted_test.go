package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/shared/idp/idptest"
	"github.com/myscrollr/connect/shared/logto"
)

// Logto deletes a user: the signed webhook reaches logto-webhook through the front door, its
// outbox event travels relay -> Kafka -> dispatcher -> uninstall, which revokes the user's grants
// at the identity server and removes their installs and reviews. A bad signature changes
// nothing. The uninstall function is killed (SIGKILL) just before the webhook arrives: the
// dispatcher retries while the stack starts it again, and nothing is lost.
func TestUserDeletedEndToEnd(t *testing.T) {
	s := startStack(t, testConfig(t, "relay", "logto-webhook", "uninstall"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	id, secret := s.M2MCredentials()
	lc, err := logto.New(logto.Config{Endpoint: s.LogtoEndpoint, AppID: id, AppSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "https://ticker.example/callback"
	app, err := lc.CreateApplication(ctx, logto.NewApplication{Name: "Crypto Ticker", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"u_alice", "u_bob"} {
		if _, err := idptest.Consent(s.LogtoEndpoint+"/oidc", app.ID, redirect, user); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var integrationID string
	if err := conn.QueryRow(ctx, `INSERT INTO integrations (developer_id, logto_app_id, name, display_name, type, base_url, install_count, rating_avg, rating_count, is_published, published_at)
		VALUES ('dev_1', $1, 'crypto-ticker', 'Crypto Ticker', 'widget', 'https://ticker.example', 2, 3, 2, true, now()) RETURNING id`, app.ID).Scan(&integrationID); err != nil {
		t.Fatal(err)
	}
	for user, rating := range map[string]int{"u_alice": 5, "u_bob": 1} {
		if _, err := conn.Exec(ctx, `INSERT INTO user_integrations (user_id, integration_id) VALUES ($1, $2)`, user, integrationID); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO integration_reviews (user_id, integration_id, rating) VALUES ($1, $2, $3)`, user, integrationID, rating); err != nil {
			t.Fatal(err)
		}
	}

	body, _ := json.Marshal(map[string]any{
		"hookId": "hook_1", "event": "User.Deleted", "createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"userAgent": "Logto (https://logto.io/)", "path": "/users/u_alice", "method": "DELETE", "status": 204,
		"matchedRoute": "/users/:userId", "params": map[string]any{"userId": "u_alice"},
		"data": map[string]any{"id": "u_alice", "username": "alice"},
	})
	post := func(sig string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/webhooks/logto", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set("logto-signature-sha-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(hex.EncodeToString(make([]byte, 32))); code != http.StatusUnauthorized {
		t.Fatalf("bad signature answered %d, want 401", code)
	}
	forgeUserDeleted(t, ctx, s, "u_alice")
	requireCount(t, ctx, conn, 1, `SELECT count(*) FROM user_integrations WHERE user_id = 'u_alice'`)
	requireCount(t, ctx, conn, 1, `SELECT count(*) FROM integration_reviews WHERE user_id = 'u_alice'`)
	listensOnlyOnLoopback(t, s)
	if err := s.Kill("uninstall"); err != nil {
		t.Fatal(err)
	}
	// Signed as a person would sign it by hand: with the key make dev wrote to its secrets file.
	mac := hmac.New(sha256.New, []byte(secretFromFile(t, s.SecretsFile(), "LOGTO_WEBHOOK_SIGNING_KEY")))
	mac.Write(body)
	if code := post(hex.EncodeToString(mac.Sum(nil))); code != http.StatusNoContent {
		t.Fatalf("signed webhook answered %d, want 204", code)
	}

	// The uninstall happens asynchronously; wait for its effects.
	for {
		var installs, reviews int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM user_integrations WHERE user_id = 'u_alice'`).Scan(&installs); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM integration_reviews WHERE user_id = 'u_alice'`).Scan(&reviews); err != nil {
			t.Fatal(err)
		}
		if installs == 0 && reviews == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("alice still has %d installs and %d reviews", installs, reviews)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for user, want := range map[string]int{"u_alice": 0, "u_bob": 1} {
		grants, err := lc.ListGrants(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if len(grants) != want {
			t.Errorf("%s has %d grants, want %d", user, len(grants), want)
		}
	}
	var ratingAvg float64
	var ratingCount, bobInstalls int
	if err := conn.QueryRow(ctx, `SELECT rating_avg::float8, rating_count FROM integrations WHERE id = $1`, integrationID).Scan(&ratingAvg, &ratingCount); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM user_integrations WHERE user_id = 'u_bob'`).Scan(&bobInstalls); err != nil {
		t.Fatal(err)
	}
	if ratingAvg != 1 || ratingCount != 1 || bobInstalls != 1 {
		t.Errorf("after alice left: rating %v (%d reviews), bob installs %d; want 1, 1, 1", ratingAvg, ratingCount, bobInstalls)
	}
}
