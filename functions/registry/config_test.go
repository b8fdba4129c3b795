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
		"INSTALL_CALLBACK_URL": "http://127.0.0.1:8080/v1/installs/callback", "SSRF_ALLOW": "127.0.0.1/32",
		"MANIFEST_ALLOW_LOOPBACK_HTTP": "true",
	}
	c, err := ConfigFromEnv(env(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogtoEndpoint != "http://127.0.0.1:3001" || !c.AllowLoopbackHTTP || c.CheckTimeout != DefaultCheckTimeout ||
		c.CheckHealthThreshold != DefaultCheckHealthThreshold || c.Keys.SealingKeyID() != "k1" || len(c.Allow) != 1 {
		t.Fatalf("%+v", c)
	}
	bad := map[string]string{
		"DATABASE_URL": "", "LOGTO_ENDPOINT": "ftp://x", "LOGTO_API_RESOURCE": "", "LOGTO_M2M_APP_ID": "", "LOGTO_M2M_APP_SECRET": "",
		"CLIENT_SECRET_KEYS": "k1:" + key[:20], "INSTALL_CALLBACK_URL": "/relative", "MANIFEST_ALLOW_LOOPBACK_HTTP": "maybe",
		"CHECK_TIMEOUT": "soon", "CHECK_HEALTH_THRESHOLD": "1h", "SSRF_ALLOW": "not-an-address",
	}
	_, err = ConfigFromEnv(env(bad))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, name := range []string{"DATABASE_URL", "LOGTO_ENDPOINT", "LOGTO_API_RESOURCE", "LOGTO_M2M_APP_ID", "LOGTO_M2M_APP_SECRET",
		"CLIENT_SECRET_KEYS", "INSTALL_CALLBACK_URL", "MANIFEST_ALLOW_LOOPBACK_HTTP", "CHECK_TIMEOUT", "CHECK_HEALTH_THRESHOLD", "SSRF_ALLOW"} {
		if !strings.Contains(err.Error(), "("+name+")") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), key[:20]) {
		t.Error("the error shows key material")
	}
	delete(good, "CLIENT_SECRET_KEYS")
	if _, err := ConfigFromEnv(env(good)); err == nil || !strings.Contains(err.Error(), "CLIENT_SECRET_KEYS): required") {
		t.Fatalf("missing keys: %v", err)
	}
	good["CLIENT_SECRET_KEYS"] = "k1:" + key
	good["CHECK_TIMEOUT"], good["CHECK_HEALTH_THRESHOLD"] = "5s", "500ms"
	if c, err := ConfigFromEnv(env(good)); err != nil || c.CheckTimeout != 5*time.Second || c.CheckHealthThreshold != 500*time.Millisecond {
		t.Fatalf("%+v %v", c, err)
	}
}
