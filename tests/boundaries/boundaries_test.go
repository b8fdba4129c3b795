// Package boundaries checks the import rules between the modules of this repository, over the
// real dependency graph (`go list -deps -test`, run in each module's folder, so test-only
// imports count too):
//
//   - functions, shared, events, schemas and wasmhost never import anything under
//     github.com/myscrollr/connect/infra/... (the local runtime, which may import them) nor
//     github.com/myscrollr/connect/tests/...; what a function's tests need from the local
//     runtime moves to shared (as the development identity server did, to shared/idp);
//   - a function never imports another function's packages (docs/architecture.md: shared
//     mechanisms live in shared/);
//   - events imports nothing from the other modules of this repository: integration developers
//     `go get` it, and it must build outside the workspace, which TestEventsBuildsAlone checks
//     by building a copy of it with GOWORK=off.
//
// A violation names the whole import chain, from the module's package to the forbidden one.
package boundaries

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const repo = "github.com/myscrollr/connect/"

// root is the repository root, relative to this package's folder.
const root = "../.."

// graph maps a package (as go list names it, test variants included, e.g.
// "p [p.test]") to the packages it imports.
type graph map[string][]string

// rule says what a module's packages must not reach. forbidden reports, for the package from
// which the walk started (from) and a package it reaches (to), why to is not allowed, or "".
type rule struct {
	module    string // folder under the repository root, e.g. "functions"
	forbidden func(from, to string) string
}

// basePath strips go list's test decorations: "p [p.test]", "p.test" (the test binary) and
// "p_test" (an external test package) become "p".
func basePath(p string) string {
	p, _, _ = strings.Cut(p, " ")
	return strings.TrimSuffix(strings.TrimSuffix(p, ".test"), "_test")
}

func underAny(p string, prefixes ...string) bool {
	for _, pre := range prefixes {
		if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// noInfraNoTests forbids the local runtime and the test module.
func noInfraNoTests(_, to string) string {
	if underAny(basePath(to), repo+"infra/", repo+"tests/") {
		return "the infra and tests modules are not imported by the code they run and test"
	}
	return ""
}

// function returns the function a package belongs to ("relay" for
// github.com/myscrollr/connect/functions/relay/...), or "".
func function(p string) string {
	rest, ok := strings.CutPrefix(basePath(p), repo+"functions/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

var rules = []rule{
	{"functions", func(from, to string) string {
		if why := noInfraNoTests(from, to); why != "" {
			return why
		}
		if a, b := function(from), function(to); a != "" && b != "" && a != b {
			return "a function never imports another function's packages (move what both need to shared)"
		}
		return ""
	}},
	{"shared", noInfraNoTests},
	{"schemas", noInfraNoTests},
	{"wasmhost", noInfraNoTests},
	{"events", func(_, to string) string {
		if p := basePath(to); strings.HasPrefix(p, repo) && !underAny(p, repo+"events/") {
			return "events is go-gettable on its own: it imports no other module of this repository"
		}
		return ""
	}},
}

// violation is one forbidden package reached from a module's package, with the chain.
type violation struct {
	chain []string
	why   string
}

func (v violation) String() string {
	return strings.Join(v.chain, "\n    -> ") + "\n    (" + v.why + ")"
}

// check walks g from each of roots (breadth first, so each chain is a shortest one) and
// returns, per root, the forbidden packages it reaches. A package reached through a forbidden
// one is not reported again: the first forbidden link is the one to cut.
func check(g graph, roots []string, forbidden func(from, to string) string) []violation {
	var out []violation
	for _, r := range roots {
		parent := map[string]string{r: ""}
		queue := []string{r}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, imp := range g[p] {
				if _, seen := parent[imp]; seen {
					continue
				}
				parent[imp] = p
				if why := forbidden(r, imp); why != "" {
					var chain []string
					for q := imp; q != ""; q = parent[q] {
						chain = append(chain, q)
					}
					slices.Reverse(chain)
					out = append(out, violation{chain: chain, why: why})
					continue
				}
				queue = append(queue, imp)
			}
		}
	}
	return out
}

type listed struct {
	ImportPath string
	Imports    []string
	DepOnly    bool
}

// list runs `go list -e -deps -test -json ./...` in dir and returns the graph and the
// packages of the module itself (the roots).
func list(t *testing.T, dir string) (graph, []string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-test", "-json=ImportPath,Imports,DepOnly", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", dir, err, stderr.String())
	}
	g := graph{}
	var roots []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list in %s: %v", dir, err)
		}
		g[p.ImportPath] = p.Imports
		if !p.DepOnly {
			roots = append(roots, p.ImportPath)
		}
	}
	if len(roots) == 0 {
		t.Fatalf("go list in %s: no packages", dir)
	}
	slices.Sort(roots)
	return g, roots
}

func TestModuleBoundaries(t *testing.T) {
	for _, r := range rules {
		t.Run(r.module, func(t *testing.T) {
			g, roots := list(t, filepath.Join(root, r.module))
			for _, v := range check(g, roots, r.forbidden) {
				t.Errorf("forbidden import:\n    %s", v)
			}
		})
	}
}

// TestCheckNamesTheChain holds the checker itself to its promise on a made-up graph: every
// rule is caught, through test variants and indirect imports, with the chain that leads there.
func TestCheckNamesTheChain(t *testing.T) {
	const (
		relay     = repo + "functions/relay"
		relayTest = relay + " [" + relay + ".test]"
		catalog   = repo + "functions/catalog"
		helper    = repo + "shared/helper"
		stack     = repo + "infra/local/stack"
		outbox    = repo + "shared/outbox"
		schemas   = repo + "schemas"
	)
	g := graph{
		relay + ".test": {relayTest},
		relayTest:       {helper, "fmt"},
		helper:          {stack, catalog},
		stack:           {outbox},
		catalog:         {"fmt"},
		relay:           {"fmt"},
	}
	fns := rules[slices.IndexFunc(rules, func(r rule) bool { return r.module == "functions" })]
	got := check(g, []string{relay, relay + ".test"}, fns.forbidden)
	var lines []string
	for _, v := range got {
		lines = append(lines, strings.Join(v.chain, " -> "))
	}
	want := []string{
		relay + ".test -> " + relayTest + " -> " + helper + " -> " + stack,
		relay + ".test -> " + relayTest + " -> " + helper + " -> " + catalog,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	ev := rules[slices.IndexFunc(rules, func(r rule) bool { return r.module == "events" })]
	g = graph{repo + "events/eventschema": {schemas, repo + "events"}}
	if v := check(g, []string{repo + "events/eventschema"}, ev.forbidden); len(v) != 1 || v[0].chain[1] != schemas {
		t.Errorf("events importing schemas: %v", v)
	}
}

// TestEventsBuildsAlone builds and vets a copy of the events module outside the repository,
// with GOWORK=off, as `go get` would see it: no workspace, no replace directives, nothing from
// the folders beside it. Dependencies come from the module cache, or from GOPROXY when the
// cache lacks them; the test is skipped, saying so, only when that download fails for want of
// a network.
func TestEventsBuildsAlone(t *testing.T) {
	src := filepath.Join(root, "events")
	dir := filepath.Join(t.TempDir(), "events")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}

	var mod struct {
		Require []struct{ Path string }
		Replace []struct{ Old struct{ Path string } }
	}
	if err := json.Unmarshal(run(t, dir, nil, "go", "mod", "edit", "-json"), &mod); err != nil {
		t.Fatal(err)
	}
	for _, r := range mod.Require {
		if strings.HasPrefix(r.Path, repo) {
			t.Errorf("events/go.mod requires %s: go get cannot resolve it (the module is not published)", r.Path)
		}
	}
	for _, r := range mod.Replace {
		t.Errorf("events/go.mod replaces %s: go get ignores a dependency's replace directives", r.Old.Path)
	}

	env := []string{"GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false"}
	if out, err := try(dir, env, "go", "build", "./..."); err != nil {
		if offline(out) {
			t.Skipf("module proxy unreachable, events not built outside the workspace:\n%s", out)
		}
		t.Fatalf("GOWORK=off go build ./... in a copy of events: %v\n%s", err, out)
	}
	if out, err := try(dir, []string{"GOWORK=off", "GOFLAGS=-buildvcs=false"}, "go", "vet", "./..."); err != nil {
		t.Fatalf("GOWORK=off go vet ./... in a copy of events: %v\n%s", err, out)
	}
	after, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, goMod) {
		t.Errorf("building events outside the workspace changed its go.mod (a requirement the workspace hid); run `cd events && GOWORK=off go mod tidy`:\n%s", after)
	}
}

// offline reports whether go's output says a download failed for want of a network.
func offline(out string) bool {
	for _, s := range []string{"dial tcp", "no such host", "i/o timeout", "connection refused",
		"network is unreachable", "proxyconnect", "TLS handshake timeout"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

func try(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, err := try(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return []byte(out)
}

// The rules cover every module of the workspace that is not allowed to see the others.
func TestRulesCoverTheLibraryModules(t *testing.T) {
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"events", "functions", "schemas", "shared", "wasmhost"} {
		if !bytes.Contains(work, []byte("./"+m+"\n")) {
			t.Errorf("go.work no longer uses ./%s: update the rules", m)
		}
		if !slices.ContainsFunc(rules, func(r rule) bool { return r.module == m }) {
			t.Errorf("no rule for module %s", m)
		}
	}
}
