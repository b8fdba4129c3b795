package main

import (
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	good := map[string]string{
		"DATABASE_URL":         "postgres://u@127.0.0.1/db",
		"LOGTO_ENDPOINT":       "http://127.0.0.1:3001",
		"LOGTO_M2M_APP_ID":     "m2m",
		"LOGTO_M2M_APP_SECRET": "secret",
		"LOGTO_API_RESOURCE":   "https://api.myscrollr.local",
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
	if err != nil || c.LogtoEndpoint != "http://127.0.0.1:3001" || c.LogtoAppID != "m2m" || c.LogtoManagementResource != "" ||
		c.APIResource != "https://api.myscrollr.local" {
		t.Fatalf("ConfigFromEnv = %+v, %v", c, err)
	}
	for _, tc := range []struct {
		over map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": ""}, "Config.DatabaseURL (DATABASE_URL): required"},
		{map[string]string{"DATABASE_URL": "postgres://u:pw@[bad"}, "Config.DatabaseURL (DATABASE_URL): not a valid"},
		{map[string]string{"LOGTO_ENDPOINT": ""}, "Config.LogtoEndpoint (LOGTO_ENDPOINT): required"},
		{map[string]string{"LOGTO_ENDPOINT": "ftp://x"}, "Config.LogtoEndpoint (LOGTO_ENDPOINT): \"ftp://x\" is not an http(s) URL"},
		{map[string]string{"LOGTO_API_RESOURCE": " "}, "Config.APIResource (LOGTO_API_RESOURCE): required"},
		{map[string]string{"LOGTO_M2M_APP_ID": ""}, "Config.LogtoAppID (LOGTO_M2M_APP_ID): required"},
		{map[string]string{"LOGTO_M2M_APP_SECRET": ""}, "Config.LogtoAppSecret (LOGTO_M2M_APP_SECRET): required"},
		{map[string]string{"LOGTO_MANAGEMENT_RESOURCE": "not a url"}, "Config.LogtoManagementResource (LOGTO_MANAGEMENT_RESOURCE)"},
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
