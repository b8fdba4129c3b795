// Package settings checks the settings several functions read, with the same words everywhere:
// each problem names the Config field, the environment variable and what is wrong, never the
// value of a secret (a PostgreSQL URL may hold a password, so its parse error is not repeated).
//
//	p := settings.Check("install")
//	p.DatabaseURL(c.DatabaseURL)
//	p.Logto(c.LogtoEndpoint, c.APIResource)
//	p.Required("LogtoAppID", "LOGTO_M2M_APP_ID", c.LogtoAppID)
//	return p.Err()
package settings

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Problems collects the problems of one function's configuration.
type Problems struct {
	function string
	errs     []error
}

// Check starts the checks of function's settings; every problem is prefixed with its name.
func Check(function string) *Problems { return &Problems{function: function} }

// Add records a problem in the usual form: "<function>: Config.<field> (<env>): <reason>".
func (p *Problems) Add(field, env, reason string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: Config.%s (%s): %s", p.function, field, env, fmt.Sprintf(reason, args...)))
}

// Addf records a problem worded by the caller (prefixed with the function's name).
func (p *Problems) Addf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(p.function+": "+format, args...))
}

// Required records "required" when value is empty, and reports whether it was set.
func (p *Problems) Required(field, env, value string) bool {
	if value == "" {
		p.Add(field, env, "required")
		return false
	}
	return true
}

// DatabaseURL checks Config.DatabaseURL (DATABASE_URL): required and a PostgreSQL connection
// string.
func (p *Problems) DatabaseURL(value string) {
	if !p.Required("DatabaseURL", "DATABASE_URL", value) {
		return
	}
	if _, err := pgconn.ParseConfig(value); err != nil {
		p.Add("DatabaseURL", "DATABASE_URL", "not a valid PostgreSQL connection string")
	}
}

// HTTPURL checks that a set value is an absolute http(s) URL with a host (required: also set).
func (p *Problems) HTTPURL(field, env, value string, required bool) {
	if value == "" {
		if required {
			p.Add(field, env, "required")
		}
		return
	}
	if !IsHTTPURL(value) {
		p.Add(field, env, "%q is not an http(s) URL", value)
	}
}

// Logto checks the identity settings of a function that verifies tokens: LOGTO_ENDPOINT (an
// http(s) URL) and LOGTO_API_RESOURCE, both required.
func (p *Problems) Logto(endpoint, apiResource string) {
	p.HTTPURL("LogtoEndpoint", "LOGTO_ENDPOINT", endpoint, true)
	p.Required("APIResource", "LOGTO_API_RESOURCE", apiResource)
}

// ManagementAPI checks the Logto Management API credentials (LOGTO_M2M_APP_ID and
// LOGTO_M2M_APP_SECRET, required) and the optional LOGTO_MANAGEMENT_RESOURCE.
func (p *Problems) ManagementAPI(appID, appSecret, resource string) {
	p.Required("LogtoAppID", "LOGTO_M2M_APP_ID", appID)
	p.Required("LogtoAppSecret", "LOGTO_M2M_APP_SECRET", appSecret)
	p.HTTPURL("LogtoManagementResource", "LOGTO_MANAGEMENT_RESOURCE", resource, false)
}

// Err is every problem recorded, joined, or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// IsHTTPURL reports whether s is an absolute http or https URL with a host.
func IsHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Duration sets *dst from the environment variable env read through getenv (a Go duration,
// e.g. 30s), or to def when it is unset; a value that does not parse is a problem and leaves
// def.
func (p *Problems) Duration(getenv func(string) string, field, env string, def time.Duration, dst *time.Duration) {
	*dst = def
	if v := strings.TrimSpace(getenv(env)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			p.Add(field, env, "%q is not a duration (e.g. 30s)", v)
			return
		}
		*dst = d
	}
}

// Int sets *dst from the environment variable env (a decimal integer), or to def when it is
// unset; a value that does not parse is a problem and leaves def.
func (p *Problems) Int(getenv func(string) string, field, env string, def int, dst *int) {
	*dst = def
	if v := strings.TrimSpace(getenv(env)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			p.Add(field, env, "%q is not an integer", v)
			return
		}
		*dst = n
	}
}
