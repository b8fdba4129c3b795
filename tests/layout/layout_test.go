// Package layout checks that the files which describe the repository agree with it.
package layout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every function is built by skaffold and by make build (which globs functions/*/main.go), and
// is listed in the README's architecture.
func TestEveryFunctionIsBuiltAndDeployed(t *testing.T) {
	mains, err := filepath.Glob("../../functions/*/main.go")
	if err != nil || len(mains) == 0 {
		t.Fatalf("no functions found: %v", err)
	}
	skaffold, err := os.ReadFile("../../skaffold.yaml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mains {
		name := filepath.Base(filepath.Dir(m))
		if !strings.Contains(string(skaffold), "image: ko://github.com/myscrollr/connect/functions/"+name+"\n") {
			t.Errorf("skaffold.yaml has no ko artifact for functions/%s", name)
		}
		if !strings.Contains(string(readme), name) {
			t.Errorf("README.md does not mention the %s function", name)
		}
	}
}

// go.work uses every module the Makefile loops over, and nothing else.
func TestWorkspaceMatchesMakefile(t *testing.T) {
	work, err := os.ReadFile("../../go.work")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var modules []string
	for _, line := range strings.Split(string(makefile), "\n") {
		if rest, ok := strings.CutPrefix(line, "MODULES"); ok {
			_, list, _ := strings.Cut(rest, "=")
			modules = strings.Fields(list)
		}
	}
	if len(modules) == 0 {
		t.Fatal("Makefile has no MODULES line")
	}
	for _, m := range modules {
		if !strings.Contains(string(work), "./"+m+"\n") {
			t.Errorf("go.work does not use ./%s", m)
		}
		if _, err := os.Stat(filepath.Join("../..", m, "go.mod")); err != nil {
			t.Errorf("module %s: %v", m, err)
		}
	}
	if n := strings.Count(string(work), "\t./"); n != len(modules) {
		t.Errorf("go.work uses %d modules, the Makefile loops over %d", n, len(modules))
	}
}
