package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// passThrough are the variables of this process a function still sees: what a program needs
// to run (and to write coverage or race reports in tests), never a setting.
var passThrough = []string{"PATH", "HOME", "TMPDIR", "TZ", "GOCOVERDIR", "GORACE"}

// localValues are the values this stack gives to the keys of the ConfigMap connect-config and
// the Secret connect-secrets (infra/knative/10-config.yaml and its README), by key. The
// Secrets connect-db-<function> are functionDatabaseURL's; connect-secrets' DATABASE_URL, which
// Services not yet moved to their own Secret read, stays the owner's URL.
func (s *Stack) localValues() map[string]string {
	return map[string]string{
		"DATABASE_URL":              s.DatabaseURL,
		"KAFKA_BROKERS":             strings.Join(s.Brokers, ","),
		"STRIPE_API_BASE":           s.StripeAPIBase,
		"LOGTO_ENDPOINT":            s.LogtoEndpoint,
		"LOGTO_API_RESOURCE":        s.APIResource,
		"LOGTO_M2M_APP_ID":          s.m2mID,
		"LOGTO_M2M_APP_SECRET":      s.m2mSecret,
		"LOGTO_WEBHOOK_SIGNING_KEY": s.WebhookSigningKey,
		"LOG_LEVEL":                 envOr("LOG_LEVEL", "info"),
		// The explicit exemption that lets health-probe and poll reach the demo integrations,
		// which listen on 127.0.0.1 over http (shared/ssrf Config.Allow). Production has none.
		"SSRF_ALLOW": envOr("SSRF_ALLOW", "127.0.0.1/32"),
		// The registry accepts manifests whose URLs are http://127.0.0.1 (the demo integrations'
		// and a developer's own, run beside make dev) and registers the install callback of this
		// front door as every integration's redirect URI.
		"MANIFEST_ALLOW_LOOPBACK_HTTP": "true",
		"INSTALL_CALLBACK_URL":         s.URL + "/v1/installs/callback",
		"CLIENT_SECRET_KEYS":           s.clientSecretKeys,
		"LIFECYCLE_SIGNING_KEYS":       s.lifecycleSigningKeys,
		"STRIPE_WEBHOOK_SECRET":        s.stripeWebhookSecret,
		// stripe-mock accepts any test-mode key.
		"STRIPE_SECRET_KEY": envOr("STRIPE_SECRET_KEY", "sk_test_MyScrollrConnectDev"),
		// Where the install callback sends the user's browser back: the front door's root here.
		"FRONTEND_URL":         envOr("FRONTEND_URL", s.URL+"/"),
		"PLATFORM_FEE_PERCENT": envOr("PLATFORM_FEE_PERCENT", "15"),
		// The cluster's service account issuer on Knative; the development identity server
		// here. Its discovery document names the JWKS, so EVENTS_OIDC_JWKS_URL stays unset.
		"EVENTS_OIDC_ISSUER": s.senderIssuer,
	}
}

// localPaths replace the literal paths of the Services' volumes (in the cluster, emptyDirs
// mounted at fixed places) with directories of this run's work directory.
func (s *Stack) localPaths() map[string]string {
	return map[string]string{"WASM_CACHE_DIR": filepath.Join(s.workDir, "wasm-cache")}
}

// FunctionDBSecretPrefix names the Secret each function's Knative Service reads its
// DATABASE_URL from: "connect-db-" and the function's name (connect-db-catalog, ...), holding
// the URL of that function's own least-privilege login role (docs/decisions/0004-database-roles.md).
const FunctionDBSecretPrefix = "connect-db-"

// functionDatabaseURL is the local value of key DATABASE_URL in the Secret connect-db-<fn>:
// the URL of fn's login role when this stack runs its own cluster (startPostgres made the
// role), else the one database URL (an external DATABASE_URL: its role is used for all).
func (s *Stack) functionDatabaseURL(fn string) string {
	if u, ok := s.functionDB[fn]; ok {
		return u
	}
	return s.DatabaseURL
}

// functionEnv is the environment of one function: exactly the variables its Knative Service
// declares, literal values as written and ConfigMap or Secret keys with this stack's values,
// plus passThrough. A declared key this stack has no value for stays unset (the function's
// default applies) and is logged.
func (s *Stack) functionEnv(name string) ([]string, error) {
	svc, ok := s.services.Service(name)
	if !ok {
		return nil, fmt.Errorf("stack: functions/%s has no Knative Service in infra/knative: declare it (with the settings it reads) in 20-services.yaml", name)
	}
	var env []string
	for _, k := range passThrough {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	values := s.localValues()
	for _, e := range svc.Env {
		if v, ok := s.localPaths()[e.Name]; ok {
			env = append(env, e.Name+"="+v)
			continue
		}
		if e.From == nil {
			env = append(env, e.Name+"="+e.Value)
			continue
		}
		v, ok := values[e.From.Key]
		if fn, isDB := strings.CutPrefix(e.From.Name, FunctionDBSecretPrefix); isDB && e.From.Kind == "Secret" && e.From.Key == "DATABASE_URL" {
			v, ok = s.functionDatabaseURL(fn), true
		}
		if !ok || v == "" {
			s.log.Info("setting left unset: no local value", "function", name, "env", e.Name, "from", e.From.Kind+"/"+e.From.Name+"."+e.From.Key)
			continue
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

// Secrets are the development secrets of this run, by setting name: generated unless the
// environment gave them (environment values win).
func (s *Stack) Secrets() map[string]string {
	out := map[string]string{
		"LOGTO_WEBHOOK_SIGNING_KEY": s.WebhookSigningKey,
		"LOGTO_M2M_APP_ID":          s.m2mID,
		"LOGTO_M2M_APP_SECRET":      s.m2mSecret,
		"CLIENT_SECRET_KEYS":        s.clientSecretKeys,
		"LIFECYCLE_SIGNING_KEYS":    s.lifecycleSigningKeys,
		"STRIPE_WEBHOOK_SECRET":     s.stripeWebhookSecret,
	}
	if s.eventingSecret != "" {
		out["EVENTING_CLIENT_ID"] = EventingClientID
		out["EVENTING_CLIENT_SECRET"] = s.eventingSecret
	}
	return out
}

// SecretsFile is where Start wrote Secrets, as KEY=value lines a shell can source.
func (s *Stack) SecretsFile() string { return filepath.Join(s.workDir, "secrets.env") }

func (s *Stack) writeSecrets() error {
	sec := s.Secrets()
	keys := make([]string, 0, len(sec))
	for k := range sec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Development secrets of this make dev run (removed when it stops).\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, sec[k])
	}
	return os.WriteFile(s.SecretsFile(), []byte(b.String()), 0o600)
}
