package main

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	c, err := ConfigFromEnv(env(map[string]string{"DATABASE_URL": " postgres://u@127.0.0.1/db "}))
	if err != nil || c.DatabaseURL != "postgres://u@127.0.0.1/db" || c.MaxConns != DefaultMaxConns || c.MaxWaiting != DefaultMaxWaiting ||
		c.QueueTimeout != DefaultQueueTimeout || c.RetryAfter != DefaultRetryAfter || c.LogtoEndpoint != "" {
		t.Fatalf("ConfigFromEnv = %+v, %v", c, err)
	}
	if got := c.poolURL(); got != "postgres://u@127.0.0.1/db?pool_max_conns=8" {
		t.Errorf("poolURL = %q", got)
	}
	c, err = ConfigFromEnv(env(map[string]string{"DATABASE_URL": "host=/tmp dbname=x", "DB_MAX_CONNS": "12",
		"CATALOG_MAX_WAITING": "0", "CATALOG_QUEUE_TIMEOUT": "20ms", "CATALOG_RETRY_AFTER": "3s",
		"LOGTO_ENDPOINT": "http://127.0.0.1:3001/", "LOGTO_API_RESOURCE": "https://api.test"}))
	if err != nil || c.MaxConns != 12 || c.MaxWaiting != 0 || c.QueueTimeout != 20*time.Millisecond || c.RetryAfter != 3*time.Second ||
		c.LogtoEndpoint != "http://127.0.0.1:3001" || c.APIResource != "https://api.test" || c.poolURL() != "host=/tmp dbname=x pool_max_conns=12" {
		t.Fatalf("ConfigFromEnv = %+v, %v", c, err)
	}
	if got := (Config{DatabaseURL: "postgres://u@h/db?pool_max_conns=2&sslmode=disable", MaxConns: 9}).poolURL(); got != "postgres://u@h/db?pool_max_conns=9&sslmode=disable" {
		t.Errorf("poolURL replacing = %q", got)
	}
	for kv, want := range map[[2]string]string{
		{"DATABASE_URL", ""}:                       "Config.DatabaseURL (DATABASE_URL): required",
		{"DATABASE_URL", "postgres://u:pw@[bad"}:   "Config.DatabaseURL (DATABASE_URL): not a valid PostgreSQL connection string",
		{"DATABASE_URL", "host=x port=notanumber"}: "Config.DatabaseURL (DATABASE_URL): not a valid",
		{"DB_MAX_CONNS", "0"}:                      "Config.MaxConns (DB_MAX_CONNS)",
		{"DB_MAX_CONNS", "x"}:                      "Config.MaxConns (DB_MAX_CONNS)",
		{"CATALOG_MAX_WAITING", "-1"}:              "Config.MaxWaiting (CATALOG_MAX_WAITING)",
		{"CATALOG_QUEUE_TIMEOUT", "0s"}:            "Config.QueueTimeout (CATALOG_QUEUE_TIMEOUT)",
		{"CATALOG_QUEUE_TIMEOUT", "soon"}:          "Config.QueueTimeout (CATALOG_QUEUE_TIMEOUT)",
		{"CATALOG_RETRY_AFTER", "1500ms"}:          "Config.RetryAfter (CATALOG_RETRY_AFTER)",
		{"LOGTO_ENDPOINT", "http://idp.test"}:      "set both or neither",
		{"LOGTO_API_RESOURCE", "https://api.test"}: "set both or neither",
	} {
		vars := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/db"}
		vars[kv[0]] = kv[1]
		_, err := ConfigFromEnv(env(vars))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "pw") {
			t.Errorf("%s=%q: error %v, want it to contain %q and no password", kv[0], kv[1], err, want)
		}
	}
	_, err = ConfigFromEnv(env(map[string]string{"DATABASE_URL": "postgres://u@h/db", "LOGTO_ENDPOINT": "ftp://x", "LOGTO_API_RESOURCE": "a"}))
	if err == nil || !strings.Contains(err.Error(), "Config.LogtoEndpoint (LOGTO_ENDPOINT)") {
		t.Errorf("ftp endpoint: %v", err)
	}
}
