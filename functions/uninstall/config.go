package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
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
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("uninstall: Config.DatabaseURL (DATABASE_URL): required"))
	} else if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
		// pgconn's message may echo the password; say only what is wrong.
		errs = append(errs, errors.New("uninstall: Config.DatabaseURL (DATABASE_URL): not a valid PostgreSQL connection string"))
	}
	if c.LogtoEndpoint == "" {
		errs = append(errs, errors.New("uninstall: Config.LogtoEndpoint (LOGTO_ENDPOINT): required"))
	} else if !httpURL(c.LogtoEndpoint) {
		errs = append(errs, fmt.Errorf("uninstall: Config.LogtoEndpoint (LOGTO_ENDPOINT): %q is not an http(s) URL", c.LogtoEndpoint))
	}
	if c.APIResource == "" {
		errs = append(errs, errors.New("uninstall: Config.APIResource (LOGTO_API_RESOURCE): required"))
	}
	if c.LogtoAppID == "" {
		errs = append(errs, errors.New("uninstall: Config.LogtoAppID (LOGTO_M2M_APP_ID): required"))
	}
	if c.LogtoAppSecret == "" {
		errs = append(errs, errors.New("uninstall: Config.LogtoAppSecret (LOGTO_M2M_APP_SECRET): required"))
	}
	if c.LogtoManagementResource != "" && !httpURL(c.LogtoManagementResource) {
		errs = append(errs, fmt.Errorf("uninstall: Config.LogtoManagementResource (LOGTO_MANAGEMENT_RESOURCE): %q is not an http(s) URL", c.LogtoManagementResource))
	}
	return errors.Join(errs...)
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
