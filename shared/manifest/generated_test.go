package manifest_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/manifest/manifesttest"
)

// schemaMembers lists every member the manifest schema defines, as JSON pointers with array
// items at index 0, following properties, items and local $refs.
func schemaMembers(t *testing.T) []string {
	t.Helper()
	raw, err := schemas.JSON.ReadFile(manifest.SchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	defs, _ := root["$defs"].(map[string]any)
	var out []string
	var walk func(prefix string, s map[string]any, depth int)
	walk = func(prefix string, s map[string]any, depth int) {
		if depth > 10 {
			t.Fatalf("schema nests deeper than expected at %s", prefix)
		}
		if ref, ok := s["$ref"].(string); ok {
			name, ok := strings.CutPrefix(ref, "#/$defs/")
			if !ok {
				t.Fatalf("%s: $ref %q is not local", prefix, ref)
			}
			walk(prefix, defs[name].(map[string]any), depth+1)
		}
		if props, ok := s["properties"].(map[string]any); ok {
			for name, sub := range props {
				p := prefix + "/" + name
				out = append(out, p)
				walk(p, sub.(map[string]any), depth+1)
			}
		}
		if items, ok := s["items"].(map[string]any); ok {
			out = append(out, prefix+"/0")
			walk(prefix+"/0", items, depth+1)
		}
	}
	walk("", root, 0)
	sort.Strings(out)
	return slices.Compact(out)
}

// present lists the members a JSON document has, as pointers with array items at index 0.
func present(t *testing.T, doc []byte) map[string]bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch c := v.(type) {
		case map[string]any:
			for k, sub := range c {
				out[prefix+"/"+k] = true
				walk(prefix+"/"+k, sub)
			}
		case []any:
			for _, sub := range c {
				out[prefix+"/0"] = true
				walk(prefix+"/0", sub)
			}
		}
	}
	walk("", v)
	return out
}

// checkNamed fails unless the problems name every wrong member and only members related to one.
func checkNamed(t *testing.T, doc []byte, wrong []string, got []httpx.FieldError) {
	t.Helper()
	named := map[string]bool{}
	for _, fe := range got {
		named[fe.Field] = true
		if !slices.ContainsFunc(wrong, func(w string) bool { return manifesttest.Related(w, fe.Field) }) {
			t.Errorf("%s: problem at %s (%s), which was not made wrong (wrong: %v)", doc, fe.Field, fe.Reason, wrong)
		}
	}
	for _, w := range wrong {
		if !named[w] {
			t.Errorf("%s: %s is wrong but not named (got %v)", doc, w, got)
		}
	}
}

// Every member of the schema has a passing example (one of the complete examples uses it, and
// they validate) and a failing one (a mutation, which is reported at that member).
func TestEveryMemberHasPassingAndFailingExamples(t *testing.T) {
	members := schemaMembers(t)
	if len(members) < 40 {
		t.Fatalf("found %d schema members: the walk is broken", len(members))
	}
	used := map[string]bool{}
	for _, typ := range manifesttest.Types {
		doc := manifesttest.Example(typ)
		if got := validate(t, doc, manifest.Options{}); len(got) != 0 {
			t.Fatalf("example %s does not validate: %v", typ, got)
		}
		for p := range present(t, doc) {
			used[p] = true
		}
	}
	mutated := map[string]bool{}
	for _, m := range manifesttest.Mutations {
		mutated[atIndexZero(m.Pointer)] = true
	}
	for _, p := range members {
		if !used[p] {
			t.Errorf("schema member %s: no example uses it (add it to an example in manifesttest/examples)", p)
		}
		if !mutated[p] {
			t.Errorf("schema member %s: no invalid example (add a Mutation)", p)
		}
	}
	for _, m := range manifesttest.Mutations {
		if !slices.Contains(members, atIndexZero(m.Pointer)) && m.Pointer != "/colour" {
			t.Errorf("mutation %s names no schema member", m.Pointer)
		}
		for _, typ := range m.Types {
			doc, err := manifesttest.Apply(manifesttest.Example(typ), m.Pointer, m.Value)
			if err != nil {
				t.Fatal(err)
			}
			checkNamed(t, doc, []string{m.Pointer}, validate(t, doc, manifest.Options{}))
		}
	}
}

// 1,000 generated invalid manifests, each with one to five members made wrong: every one is
// refused, naming each wrong member by its pointer and nothing unrelated.
func TestGeneratedInvalidManifestsNameEveryWrongMember(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 1000))
	for range 1000 {
		doc, wrong := manifesttest.Generate(r)
		got := validate(t, doc, manifest.Options{})
		if len(got) == 0 {
			t.Fatalf("%s: accepted; wrong: %v", doc, wrong)
		}
		checkNamed(t, doc, wrong, got)
		if t.Failed() {
			return
		}
	}
}

// atIndexZero writes every array index of pointer as 0, as schemaMembers names members.
func atIndexZero(pointer string) string {
	parts := strings.Split(pointer, "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = "0"
		}
	}
	return strings.Join(parts, "/")
}
