package logto

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// contractRoutes reads every (METHOD, path template) from the Logto route
// definitions copied in testdata.
func contractRoutes(t *testing.T) map[route]bool {
	t.Helper()
	files, err := filepath.Glob("testdata/*.openapi.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no contract files: %v", err)
	}
	out := map[route]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Paths map[string]map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for p, ops := range doc.Paths {
			for m := range ops {
				out[route{strings.ToUpper(m), p}] = true
			}
		}
	}
	return out
}

func TestRoutesExistInContract(t *testing.T) {
	known := contractRoutes(t)
	for _, r := range routes {
		if !known[r] {
			t.Errorf("%s %s is not in Logto's route definitions", r.Method, r.Path)
		}
	}
}

var paramRE = regexp.MustCompile(`\{[^}]+\}`)

// matchRoute returns the template in routes that method and path match.
func matchRoute(method, path string) (route, bool) {
	for _, r := range routes {
		re := regexp.MustCompile("^" + paramRE.ReplaceAllString(r.Path, `[^/]+`) + "$")
		if r.Method == method && re.MatchString(path) {
			return r, true
		}
	}
	return route{}, false
}
