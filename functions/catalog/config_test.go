package main

import (
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(url string) func(string) string {
		return func(k string) string {
			if k == "DATABASE_URL" {
				return url
			}
			return ""
		}
	}
	if c, err := ConfigFromEnv(env(" postgres://u@127.0.0.1/db ")); err != nil || c.DatabaseURL != "postgres://u@127.0.0.1/db" {
		t.Fatalf("ConfigFromEnv = %+v, %v", c, err)
	}
	for url, want := range map[string]string{
		"":                       "Config.DatabaseURL (DATABASE_URL): required",
		"postgres://u:pw@[bad":   "Config.DatabaseURL (DATABASE_URL): not a valid PostgreSQL connection string",
		"host=x port=notanumber": "Config.DatabaseURL (DATABASE_URL): not a valid",
	} {
		_, err := ConfigFromEnv(env(url))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "pw") {
			t.Errorf("DATABASE_URL=%q: error %v, want it to contain %q and no password", url, err, want)
		}
	}
}
