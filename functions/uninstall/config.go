package main

import (
	"strings"

	"github.com/myscrollr/connect/shared/settings"
)

// Config is uninstall's configuration, read from the environment by ConfigFromEnv. The
// runtime's own settings (PORT, LOG_LEVEL, EVENTS_OIDC_*, ...) are read by shared/runtime.
type Config struct {
	// DatabaseURL (DATABASE_URL, required) is the PostgreSQL database holding the installs;
	// the schema version is checked at start (shared/db.OpenCurrent: a function never
	// migrates; the migration Job or make dev does).
	DatabaseURL string
	// LogtoEndpoint (LOGTO_ENDPOINT, required) is the Logto base URL, e.g.
	// http://127.0.0.1:3001; grants are revoked through its Management API, and user tokens
	// (DELETE /v1/installs/...) are issued by LogtoEndpoint + "/oidc".
	LogtoEndpoint string
	// APIResource (LOGTO_API_RESOURCE, required): the audience of user tokens.
	APIResource string
	// LogtoAppID and LogtoAppSecret (LOGTO_M2M_APP_ID, LOGTO_M2M_APP_SECRET, required) are
	// the Management API machine-to-machine credentials.
	LogtoAppID     string
	LogtoAppSecret string
	// LogtoManagementResource (LOGTO_MANAGEMENT_RESOURCE) is the Management API resource
	// indicator; empty means logto.DefaultResource (https://default.logto.app/api).
	LogtoManagementResource string
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv) and validates it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:             strings.TrimSpace(getenv("DATABASE_URL")),
		LogtoEndpoint:           strings.TrimSuffix(strings.TrimSpace(getenv("LOGTO_ENDPOINT")), "/"),
		APIResource:             strings.TrimSpace(getenv("LOGTO_API_RESOURCE")),
		LogtoAppID:              getenv("LOGTO_M2M_APP_ID"),
		LogtoAppSecret:          getenv("LOGTO_M2M_APP_SECRET"),
		LogtoManagementResource: strings.TrimSpace(getenv("LOGTO_MANAGEMENT_RESOURCE")),
	}
	return c, c.validate()
}

// validate names the field and the environment variable of every problem.
func (c Config) validate() error {
	p := settings.Check("uninstall")
	p.DatabaseURL(c.DatabaseURL)
	p.Logto(c.LogtoEndpoint, c.APIResource)
	p.ManagementAPI(c.LogtoAppID, c.LogtoAppSecret, c.LogtoManagementResource)
	return p.Err()
}
