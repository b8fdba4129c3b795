package knative

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const secretsDir = "../../secrets" // README.md and create.sh

// secretKeys returns "secret/key" for every Secret key the manifests reference: Service and Job
// env (init containers too), the Kafka Broker's config, KafkaSinks and KafkaSources.
func secretKeys(m *Manifests) []string {
	kafkaKeys := []string{"protocol", "sasl.mechanism", "user", "password", "ca.crt"}
	var out []string
	env := func(list []EnvVar) {
		for _, e := range list {
			if e.From != nil && e.From.Kind == "Secret" {
				out = append(out, e.From.Name+"/"+e.From.Key)
			}
		}
	}
	for _, s := range m.Services {
		env(s.Env)
	}
	for _, j := range m.Jobs {
		for _, c := range j.Containers {
			env(c.Env)
		}
	}
	kafka := func(secret string) {
		if secret == "" {
			return // no Secret named: CheckKafkaAuth reports it
		}
		for _, k := range kafkaKeys {
			out = append(out, secret+"/"+k)
		}
	}
	for _, b := range m.Brokers {
		if b.Config == nil {
			continue
		}
		for _, c := range m.ConfigMaps {
			if c.Name == b.Config.Name && c.Data["auth.secret.ref.name"] != "" {
				kafka(c.Data["auth.secret.ref.name"])
			}
		}
	}
	for _, s := range m.KafkaSinks {
		kafka(s.AuthSecret)
	}
	for _, k := range m.KafkaSources {
		if len(k.SASLSecrets) > 0 {
			kafka(k.SASLSecrets[0])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// readSecretsList returns infra/secrets/README.md.
func readSecretsList(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(secretsDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(readme)
}

// unlistedSecrets reports every Secret key the manifests reference that readme (the text of
// infra/secrets/README.md) does not list in a table row.
func unlistedSecrets(m *Manifests, readme string) error {
	rows := strings.Split(readme, "\n")
	var errs []error
	for _, sk := range secretKeys(m) {
		secret, key, _ := strings.Cut(sk, "/")
		listed := slices.ContainsFunc(rows, func(r string) bool {
			if !strings.HasPrefix(r, "| ") || !strings.Contains(r, "`"+key+"`") {
				return false
			}
			if strings.HasPrefix(secret, "connect-db-") {
				return strings.Contains(r, "`"+secret+"`") || (strings.Contains(r, "`connect-db-<function>`") && strings.Contains(r, strings.TrimPrefix(secret, "connect-db-")))
			}
			return strings.Contains(r, "`"+secret+"`") || (strings.Contains(r, "same") && strings.Contains(r, "`"+secret+"`"))
		})
		kafkaSame := slices.ContainsFunc(rows, func(r string) bool {
			return strings.HasPrefix(r, "| `"+secret+"` | same |")
		})
		if !listed && !kafkaSame {
			errs = append(errs, fmt.Errorf("Secret %s key %s is referenced by the manifests but not listed in infra/secrets/README.md", secret, key))
		}
	}
	return errors.Join(errs...)
}

// TestSecretsListed checks that infra/secrets/README.md names every Secret and key the
// manifests (deployed and pending, Jobs included) reference, in one table row each. The
// deployment checks run the same comparison ("secrets") with planted mistakes.
func TestSecretsListed(t *testing.T) {
	m, err := Load(manifestDir, pendingDir)
	if err != nil {
		t.Fatal(err)
	}
	keys := secretKeys(m)
	if len(keys) < 10 || !slices.Contains(keys, "connect-db-migrate/DATABASE_URL") {
		t.Fatalf("only %d secret keys found, or not the migration Job's: %v", len(keys), keys)
	}
	if err := unlistedSecrets(m, readSecretsList(t)); err != nil {
		t.Error(err)
	}
}

// fakeKubectl writes a kubectl that logs what it is asked to do: for "create secret generic"
// the Secret name and the keys and contents of its --from-file files; for "get secret" (the
// Strimzi Secrets) a fixed value; "apply" reads its input.
func fakeKubectl(t *testing.T) (binDir, logFile string) {
	t.Helper()
	return writeKubectl(t, func(logFile string) string {
		return `#!/usr/bin/env bash
set -eu
log="` + logFile + `"
args=("$@")
case " $* " in
*" create secret generic "*)
	name=""
	for i in "${!args[@]}"; do
		if [ "${args[$i]}" = generic ]; then name="${args[$((i+1))]}"; fi
	done
	for a in "$@"; do
		case "$a" in
		--from-file=*) kv="${a#--from-file=}"; printf 'SECRET %s %s=%s\n' "$name" "${kv%%=*}" "$(cat "${kv#*=}")" >>"$log" ;;
		esac
	done
	echo "kind: Secret" ;;
*" get secret "*) printf 'strimzi-value' ;;
*" apply "*) cat >/dev/null ;;
*) echo "unexpected kubectl $*" >&2; exit 9 ;;
esac
`
	})
}

// writeKubectl writes the kubectl script that script returns (given the path of the log file
// it may write) into a new directory, to put first on PATH.
func writeKubectl(t *testing.T, script func(logFile string) string) (binDir, logFile string) {
	t.Helper()
	binDir = t.TempDir()
	logFile = filepath.Join(binDir, "log")
	if err := os.WriteFile(filepath.Join(binDir, "kubectl"), []byte(script(logFile)), 0o755); err != nil {
		t.Fatal(err)
	}
	return binDir, logFile
}

func TestCreateSecretsScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is required to test infra/secrets/create.sh")
	}
	m, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join(secretsDir, "create.sh"))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "s3cr3t-value-"
	values := map[string]string{
		"DATABASE_URL_CATALOG": marker + "1", "DATABASE_URL_UNINSTALL": marker + "2",
		"DATABASE_URL_LOGTO_WEBHOOK": marker + "3", "DATABASE_URL_RELAY": marker + "4",
		"LOGTO_M2M_APP_ID": marker + "5", "LOGTO_M2M_APP_SECRET": marker + "6",
		"DATABASE_URL_MIGRATE": marker + "8", "DATABASE_URL_HEALTH_PROBE": marker + "h",
		"DATABASE_URL_POLL": marker + "p", "DATABASE_URL_REGISTRY": marker + "r",
		"CLIENT_SECRET_KEYS": marker + "k", "DATABASE_URL_INSTALL": marker + "i",
		"DATABASE_URL_NOTIFY": marker + "n", "DATABASE_URL_INGEST": marker + "g",
		"DATABASE_URL_STRIPE_WEBHOOK": marker + "s", "STRIPE_SECRET_KEY": marker + "sk",
		"STRIPE_WEBHOOK_SECRET": marker + "wh", "LIFECYCLE_SIGNING_KEYS": marker + "lk",
	}
	run := func(t *testing.T, file string, extra ...string) (string, string, error) {
		bin, log := fakeKubectl(t)
		env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		for k, v := range values {
			env = append(env, k+"="+v)
		}
		args := []string{script}
		if file != "" {
			args = append(args, "-f", file)
		}
		cmd := exec.Command("bash", args...)
		cmd.Env = append(env, extra...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		logged, _ := os.ReadFile(log)
		return out.String(), string(logged), err
	}

	t.Run("missing value", func(t *testing.T) {
		out, logged, err := run(t, "")
		if err == nil || !strings.Contains(out, "LOGTO_WEBHOOK_SIGNING_KEY (Secret connect-secrets key LOGTO_WEBHOOK_SIGNING_KEY)") || logged != "" {
			t.Fatalf("err %v, output %q, kubectl log %q: want a failure naming the variable and nothing written", err, out, logged)
		}
	})

	t.Run("every referenced key", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "values.env")
		if err := os.WriteFile(file, []byte("# comment\nLOGTO_WEBHOOK_SIGNING_KEY="+marker+"7\nLOGTO_M2M_APP_ID=overridden\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, logged, err := run(t, file)
		if err != nil {
			t.Fatalf("create.sh: %v\n%s", err, out)
		}
		if strings.Contains(out, marker) || strings.Contains(out, "strimzi-value") {
			t.Fatalf("create.sh printed a value:\n%s", out)
		}
		for _, sk := range secretKeys(m) {
			secret, key, _ := strings.Cut(sk, "/")
			if !strings.Contains(logged, "SECRET "+secret+" "+key+"=") {
				t.Errorf("create.sh does not write Secret %s key %s", secret, key)
			}
		}
		for _, want := range []string{
			"SECRET connect-db-relay DATABASE_URL=" + marker + "4\n",
			"SECRET connect-db-migrate DATABASE_URL=" + marker + "8\n",  // the migration Job's owner role
			"SECRET connect-secrets LOGTO_M2M_APP_ID=" + marker + "5\n", // the environment wins
			"SECRET connect-secrets LOGTO_WEBHOOK_SIGNING_KEY=" + marker + "7\n",
			"SECRET connect-kafka-broker password=strimzi-value\n",
			"SECRET connect-kafka-sinks user=connect-sinks\n",
		} {
			if !strings.Contains(logged, want) {
				t.Errorf("kubectl log lacks %q:\n%s", want, logged)
			}
		}
	})
}
