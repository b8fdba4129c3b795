package main

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	good := map[string]string{
		"DATABASE_URL":       "postgres://u@127.0.0.1/db",
		"LOGTO_ENDPOINT":     "http://127.0.0.1:3001/",
		"LOGTO_API_RESOURCE": "https://api.myscrollr.local",
	}
	env := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return good[k]
		}
	}
	c, err := ConfigFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogtoEndpoint != "http://127.0.0.1:3001" || c.Timeout != 10*time.Second || c.Concurrency != 64 || c.PerHost != 2 ||
		c.Batch != 500 || c.MaxBodyBytes != 8<<20 || c.MinInterval != time.Minute || c.RejectionRetention != 168*time.Hour ||
		c.RejectionKeep != 1000 || c.TickBudget != 80*time.Second || len(c.Allow) != 0 {
		t.Fatalf("defaults = %+v", c)
	}
	c, err = ConfigFromEnv(env(map[string]string{"SSRF_ALLOW": "127.0.0.1/32", "POLL_TIMEOUT": "3s", "POLL_PER_HOST": "4"}))
	if err != nil || len(c.Allow) != 1 || c.Timeout != 3*time.Second || c.PerHost != 4 {
		t.Fatalf("overrides = %+v, %v", c, err)
	}
	for _, tc := range []struct {
		over map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": ""}, "DATABASE_URL): required"},
		{map[string]string{"LOGTO_ENDPOINT": ""}, "LOGTO_ENDPOINT): required"},
		{map[string]string{"LOGTO_API_RESOURCE": ""}, "LOGTO_API_RESOURCE): required"},
		{map[string]string{"SSRF_ALLOW": "0.0.0.0/0"}, "SSRF_ALLOW"},
		{map[string]string{"POLL_TIMEOUT": "soon"}, "POLL_TIMEOUT): \"soon\" is not a duration"},
		{map[string]string{"POLL_TIMEOUT": "50s"}, "POLL_TICK_BUDGET"},
		{map[string]string{"POLL_CONCURRENCY": "0"}, "POLL_CONCURRENCY"},
		{map[string]string{"POLL_PER_HOST": "x"}, "POLL_PER_HOST): \"x\" is not an integer"},
		{map[string]string{"POLL_BATCH": "-1"}, "POLL_BATCH"},
		{map[string]string{"POLL_MAX_BODY_BYTES": "10"}, "POLL_MAX_BODY_BYTES"},
		{map[string]string{"POLL_MIN_INTERVAL": "0s"}, "POLL_MIN_INTERVAL"},
		{map[string]string{"POLL_REJECTION_RETENTION": "1m"}, "POLL_REJECTION_RETENTION"},
		{map[string]string{"POLL_REJECTION_KEEP": "0"}, "POLL_REJECTION_KEEP"},
		{map[string]string{"POLL_TICK_BUDGET": "115s"}, "POLL_TICK_BUDGET"},
	} {
		_, err := ConfigFromEnv(env(tc.over))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.over, err, tc.want)
		}
	}
}
