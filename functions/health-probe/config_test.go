package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestConfigFromEnv(t *testing.T) {
	good := map[string]string{"DATABASE_URL": "postgres://u@127.0.0.1/db"}
	env := func(over map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return good[k]
		}
	}
	c, err := ConfigFromEnv(env(nil))
	if err != nil || c.Timeout != 10*time.Second || c.DegradedAfter != 2*time.Second || c.Concurrency != 1536 ||
		c.PerHost != 4 || c.CheckRetention != 48*time.Hour || len(c.Allow) != 0 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = ConfigFromEnv(env(map[string]string{"SSRF_ALLOW": "127.0.0.1/32", "PROBE_TIMEOUT": "5s",
		"PROBE_DEGRADED_AFTER": "500ms", "PROBE_CONCURRENCY": "100", "PROBE_PER_HOST": "2", "PROBE_CHECK_RETENTION": "24h"}))
	if err != nil || c.Timeout != 5*time.Second || c.DegradedAfter != 500*time.Millisecond || c.Concurrency != 100 ||
		c.PerHost != 2 || c.CheckRetention != 24*time.Hour || len(c.Allow) != 1 || c.Allow[0].Prefix != netip.MustParsePrefix("127.0.0.1/32") {
		t.Fatalf("set: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		over map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": ""}, "Config.DatabaseURL (DATABASE_URL): required"},
		{map[string]string{"DATABASE_URL": "postgres://u:pw@[bad"}, "Config.DatabaseURL (DATABASE_URL): not a valid"},
		{map[string]string{"SSRF_ALLOW": "0.0.0.0/0"}, "Config.Allow (SSRF_ALLOW)"},
		{map[string]string{"SSRF_ALLOW": "nonsense"}, "Config.Allow (SSRF_ALLOW)"},
		{map[string]string{"PROBE_TIMEOUT": "ten"}, `Config.Timeout (PROBE_TIMEOUT): "ten" is not a duration`},
		{map[string]string{"PROBE_TIMEOUT": "0s"}, "Config.Timeout (PROBE_TIMEOUT): must be more than 0"},
		{map[string]string{"PROBE_TIMEOUT": "2m"}, "Config.Timeout (PROBE_TIMEOUT): must be more than 0 and at most 1m0s"},
		{map[string]string{"PROBE_DEGRADED_AFTER": "-1s"}, "Config.DegradedAfter (PROBE_DEGRADED_AFTER)"},
		{map[string]string{"PROBE_DEGRADED_AFTER": "10s"}, "Config.DegradedAfter (PROBE_DEGRADED_AFTER): must be more than 0 and less than PROBE_TIMEOUT"},
		{map[string]string{"PROBE_CONCURRENCY": "0"}, "Config.Concurrency (PROBE_CONCURRENCY): must be between 1 and"},
		{map[string]string{"PROBE_CONCURRENCY": "many"}, `Config.Concurrency (PROBE_CONCURRENCY): "many" is not a whole number`},
		{map[string]string{"PROBE_CONCURRENCY": "100000"}, "Config.Concurrency (PROBE_CONCURRENCY)"},
		{map[string]string{"PROBE_PER_HOST": "0"}, "Config.PerHost (PROBE_PER_HOST)"},
		{map[string]string{"PROBE_PER_HOST": "1.5"}, "Config.PerHost (PROBE_PER_HOST)"},
		{map[string]string{"PROBE_CHECK_RETENTION": "10m"}, "Config.CheckRetention (PROBE_CHECK_RETENTION): must be between 1h0m0s and 720h0m0s"},
		{map[string]string{"PROBE_CHECK_RETENTION": "2d"}, "Config.CheckRetention (PROBE_CHECK_RETENTION)"},
	} {
		_, err := ConfigFromEnv(env(tc.over))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to contain %q", tc.over, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%v: error %q echoes the password", tc.over, err)
		}
	}
}

// TestNewValidates: a Service is never built from an invalid Config.
func TestNewValidates(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://u@127.0.0.1:1/db") // connects lazily: never here
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := New(nil, testConfig("postgres://u@127.0.0.1:1/db"), nil, nil); err == nil {
		t.Error("New accepted no pool")
	}
	_, err = New(pool, Config{DatabaseURL: "postgres://u@127.0.0.1:1/db"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "Config.Timeout (PROBE_TIMEOUT)") {
		t.Errorf("New with zero settings: %v", err)
	}
}
