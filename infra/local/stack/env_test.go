package stack

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/myscrollr/connect/infra/local/knative"
)

// A Service reading DATABASE_URL from the Secret connect-db-<function> gets that function's
// own role's URL; one still reading the shared connect-secrets gets the owner's URL; a
// function without a role of its own (or an external server) gets the one URL.
func TestFunctionDatabaseURL(t *testing.T) {
	dir := t.TempDir()
	svc := func(name, secret string) string {
		return `---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: ` + name + `
  namespace: connect
spec:
  template:
    spec:
      containers:
        - name: ` + name + `
          image: ko://github.com/myscrollr/connect/functions/` + name + `
          env:
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: ` + secret + `
                  key: DATABASE_URL
`
	}
	manifest := svc("catalog", "connect-db-catalog") + svc("logto-webhook", "connect-db-logto-webhook") +
		svc("uninstall", "connect-secrets") + svc("registry", "connect-db-registry")
	if err := os.WriteFile(filepath.Join(dir, "services.yaml"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := knative.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const owner = "postgres://postgres@/postgres?host=/tmp/x"
	s := &Stack{log: slog.New(slog.NewTextHandler(io.Discard, nil)), services: m, DatabaseURL: owner,
		functionDB: map[string]string{
			"catalog":       "postgres://connect_catalog_login@/postgres?host=/tmp/x",
			"logto-webhook": "postgres://connect_logto_webhook_login@/postgres?host=/tmp/x",
			"uninstall":     "postgres://connect_uninstall_login@/postgres?host=/tmp/x",
		}}
	for fn, want := range map[string]string{
		"catalog":       s.functionDB["catalog"],
		"logto-webhook": s.functionDB["logto-webhook"],
		"uninstall":     owner, // still on connect-secrets
		"registry":      owner, // no role of its own
	} {
		env, err := s.functionEnv(fn)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(env, "DATABASE_URL="+want) {
			t.Errorf("%s: env %v, want DATABASE_URL=%s", fn, env, want)
		}
	}
	s.functionDB = nil // an external DATABASE_URL
	env, err := s.functionEnv("catalog")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(env, "DATABASE_URL="+owner) {
		t.Errorf("external server: catalog env %v, want the one URL", env)
	}
}
