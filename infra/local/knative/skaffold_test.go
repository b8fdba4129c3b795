package knative

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// skaffoldHooks returns the commands of the kubectl deployer's before and after host hooks.
func skaffoldHooks(t *testing.T) (before, after [][]string) {
	t.Helper()
	data, err := os.ReadFile(skaffoldFile)
	if err != nil {
		t.Fatal(err)
	}
	type hook struct {
		Host *struct {
			Command []string `json:"command"`
			OS      []string `json:"os"`
		} `json:"host"`
	}
	var cfg struct {
		Deploy struct {
			Kubectl struct {
				Hooks struct {
					Before []hook `json:"before"`
					After  []hook `json:"after"`
				} `json:"hooks"`
			} `json:"kubectl"`
		} `json:"deploy"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	commands := func(hooks []hook) [][]string {
		var out [][]string
		for _, h := range hooks {
			if h.Host == nil || len(h.Host.Command) == 0 {
				t.Fatalf("skaffold.yaml: hook without a host command: %+v", h)
			}
			out = append(out, h.Host.Command)
		}
		return out
	}
	return commands(cfg.Deploy.Kubectl.Hooks.Before), commands(cfg.Deploy.Kubectl.Hooks.After)
}

// fakeJobsKubectl writes a kubectl that logs its arguments, answers `get job <name>` with the
// value of STATE_<name> (dashes as underscores; "error" fails), and `logs` with a marker.
func fakeJobsKubectl(t *testing.T) (binDir, logFile string) {
	t.Helper()
	return writeKubectl(t, func(logFile string) string {
		return `#!/usr/bin/env bash
set -eu
echo "$*" >>"` + logFile + `"
case " $* " in
*" delete job "*) exit 0 ;;
*" get job "*)
	job=""
	for a in "$@"; do case "$a" in connect-*) job="$a" ;; esac; done
	v="STATE_${job//-/_}"
	[ "${!v:-}" = error ] && { echo "kubectl: connection refused" >&2; exit 1; }
	printf '%s' "${!v:-}" ;;
*" logs "*) echo "LOGS OF $*" ;;
*) echo "unexpected kubectl $*" >&2; exit 9 ;;
esac
`
	})
}

// TestSkaffoldRecreatesAndWaitsForJobs runs skaffold.yaml's deploy hooks against a fake kubectl:
// the before hook deletes exactly the Jobs of infra/knative (a Job is immutable, so each run
// must create it anew), and the after hook waits for every one of them, in order, failing the
// run with the Job's log when one fails or when kubectl does.
func TestSkaffoldRecreatesAndWaitsForJobs(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is required for the fake kubectl")
	}
	m, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, j := range m.Jobs {
		jobs = append(jobs, j.Name)
	}
	if len(jobs) == 0 {
		t.Fatal("no Jobs in infra/knative")
	}
	before, after := skaffoldHooks(t)
	if len(before) != 1 || len(after) != 1 {
		t.Fatalf("before hooks %v, after hooks %v: want one of each", before, after)
	}
	run := func(t *testing.T, command []string, env ...string) (out, logged string, err error) {
		t.Helper()
		bin, log := fakeJobsKubectl(t)
		cmd := exec.Command(command[0], command[1:]...)
		cmd.Env = append([]string{"PATH=" + bin + ":" + os.Getenv("PATH"), "SKAFFOLD_KUBE_CONTEXT=test-ctx"}, env...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err = cmd.Run()
		data, _ := os.ReadFile(log)
		return buf.String(), string(data), err
	}
	state := func(job, s string) string { return "STATE_" + strings.ReplaceAll(job, "-", "_") + "=" + s }

	t.Run("before deletes every Job", func(t *testing.T) {
		out, logged, err := run(t, before[0])
		if err != nil {
			t.Fatalf("before hook: %v\n%s", err, out)
		}
		want := "--context test-ctx -n connect delete job " + strings.Join(jobs, " ") + " --ignore-not-found --wait=true\n"
		if logged != want {
			t.Fatalf("kubectl called as %q, want %q", logged, want)
		}
	})

	t.Run("after waits for every Job", func(t *testing.T) {
		var env []string
		for _, j := range jobs {
			env = append(env, state(j, "SuccessCriteriaMet Complete "))
		}
		out, logged, err := run(t, after[0], env...)
		if err != nil {
			t.Fatalf("after hook: %v\n%s", err, out)
		}
		for _, j := range jobs {
			if !strings.Contains(out, "job/"+j+" complete") || !strings.Contains(logged, "--context test-ctx -n connect get job "+j+" -o ") {
				t.Errorf("Job %s not waited for: output %q, kubectl log %q", j, out, logged)
			}
		}
	})

	t.Run("after fails with the log of a failed Job", func(t *testing.T) {
		out, logged, err := run(t, after[0], state(jobs[0], "FailureTarget Failed "), state(jobs[1], "Complete "))
		if err == nil {
			t.Fatalf("after hook accepted a failed Job: %s", out)
		}
		if !strings.Contains(out, "job/"+jobs[0]+" failed") || !strings.Contains(out, "LOGS OF --context test-ctx -n connect logs job/"+jobs[0]+" --all-containers") {
			t.Errorf("output %q lacks the failure and the Job's log", out)
		}
		if strings.Contains(logged, "get job "+jobs[1]) {
			t.Errorf("kept waiting after a failure: %q", logged)
		}
	})

	t.Run("after fails when kubectl does", func(t *testing.T) {
		out, _, err := run(t, after[0], state(jobs[0], "error"))
		if err == nil || !strings.Contains(out, "connection refused") {
			t.Fatalf("after hook: %v, %q", err, out)
		}
	})

	// The hooks name the Jobs by hand: a Job added to infra/knative must be added to both.
	for _, j := range jobs {
		if !slices.ContainsFunc(after[0], func(s string) bool { return strings.Contains(s, j) }) {
			t.Errorf("the after hook does not wait for Job %s", j)
		}
	}
}
