package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnv(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	good := map[string]string{
		"DATABASE_URL": "postgres://u:pw@127.0.0.1/db", "LOGTO_ENDPOINT": "http://127.0.0.1:3001/", "LOGTO_API_RESOURCE": "https://api.myscrollr.local",
		"LOGTO_M2M_APP_ID": "m2m", "LOGTO_M2M_APP_SECRET": "s", "CLIENT_SECRET_KEYS": "k1:" + key,
		"INSTALL_CALLBACK_URL": "http://127.0.0.1:8080/v1/installs/callback", "FRONTEND_URL": "http://127.0.0.1:8080/",
	}
	c, err := ConfigFromEnv(env(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogtoEndpoint != "http://127.0.0.1:3001" || c.TokenTTL != DefaultTokenTTL || c.Keys.SealingKeyID() != "k1" || c.FrontendURL != "http://127.0.0.1:8080/" {
		t.Fatalf("%+v", c)
	}
	good["INSTALL_TOKEN_TTL"] = "15m"
	if c, err := ConfigFromEnv(env(good)); err != nil || c.TokenTTL != 15*time.Minute {
		t.Fatalf("%+v %v", c, err)
	}
	bad := map[string]string{
		"DATABASE_URL": "", "LOGTO_ENDPOINT": "ftp://x", "LOGTO_API_RESOURCE": "", "LOGTO_M2M_APP_ID": "", "LOGTO_M2M_APP_SECRET": "",
		"LOGTO_MANAGEMENT_RESOURCE": "not a url", "CLIENT_SECRET_KEYS": "k1:" + key[:20], "INSTALL_CALLBACK_URL": "/relative",
		"FRONTEND_URL": "https://app.example/?x=1", "INSTALL_TOKEN_TTL": "48h",
	}
	_, err = ConfigFromEnv(env(bad))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for name := range bad {
		if !strings.Contains(err.Error(), "("+name+")") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), key[:20]) {
		t.Error("the error shows key material")
	}
	bad["INSTALL_TOKEN_TTL"] = "soon"
	if _, err := ConfigFromEnv(env(bad)); err == nil || !strings.Contains(err.Error(), `(INSTALL_TOKEN_TTL): "soon" is not a duration`) {
		t.Fatalf("bad duration: %v", err)
	}
}
