package apicheck_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"sigs.k8s.io/yaml"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/tests/apicheck"
)

// The functions the description covers, relative to this package: every function that serves
// public routes (the gateway's /v1/...).
var functionDirs = []string{
	"../../functions/registry", "../../functions/catalog", "../../functions/install", "../../functions/ingest",
	"../../functions/uninstall", "../../functions/notify", "../../functions/poll",
	"../../functions/stripe-webhook", "../../functions/logto-webhook",
}

// structDirs are the packages whose structs TestSchemasMatchTheGoStructs reads: the functions,
// and events/webhook, whose KeySet notify publishes.
var structDirs = append(slices.Clip(functionDirs), "../../events/webhook")

func specBytes(t testing.TB) []byte {
	t.Helper()
	spec, err := schemas.OpenAPI.ReadFile("openapi/connect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func load(t testing.TB) *apicheck.Checker {
	t.Helper()
	c, err := apicheck.New(specBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// specJSON is the description as plain JSON values, for checks of its text.
func specJSON(t testing.TB) map[string]any {
	t.Helper()
	b, err := yaml.YAMLToJSON(specBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The description is OpenAPI 3.1, builds into libopenapi's model and validates against the
// OpenAPI 3.1 schema (apicheck.New does all three).
func TestSpecIsValidOpenAPI31(t *testing.T) {
	c := load(t)
	if v := c.Model().Version; v != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", v)
	}
	if c.Model().Paths == nil || c.Model().Paths.PathItems.Len() == 0 {
		t.Fatal("no paths")
	}
}

// New refuses what is not a valid OpenAPI 3.1 document.
func TestNewRefusesInvalidDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"not yaml":       "{",
		"openapi 3.0":    "openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: {}\n",
		"no info":        "openapi: 3.1.0\npaths: {}\n",
		"bad response":   "openapi: 3.1.0\ninfo: {title: x, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200': {content: 7}\n",
		"unresolved ref": "openapi: 3.1.0\ninfo: {title: x, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200': {$ref: '#/components/responses/Nope'}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := apicheck.New([]byte(doc)); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

type route struct{ method, path string }

func (r route) String() string { return r.method + " " + r.path }

var (
	// A registration in code: mux.Handle / handle / dev / admin with a "METHOD /v1/..." pattern.
	codeRoute = regexp.MustCompile(`"(GET|POST|PUT|DELETE|PATCH) (/v1/[^"\s]*)"`)
	// A registration of a path constant: mux.Handle("POST "+Path, ...), with
	// const Path = "/v1/..." in the same package (the webhooks).
	codeConstRoute = regexp.MustCompile(`"(GET|POST|PUT|DELETE|PATCH) "\s*\+\s*([A-Za-z_][A-Za-z0-9_]*)`)
	pathConst      = regexp.MustCompile(`(?m)^\s*(?:const\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(/v1/[^"\s]*)"`)
	// A route in a package comment: a line of a route table ("//	POST /v1/..."), a heading
	// ("// # GET /v1/..."), or the package doc's first sentence ("// Command x receives ... at
	// POST /v1/..."). A query string in a table ("...?cursor=&limit=") is not part of the path.
	docRoute = regexp.MustCompile(`(?m)^//\s+(?:#\s+)?(GET|POST|PUT|DELETE|PATCH)\s+(/v1/[^\s?]*)|^// Command .*?\b(GET|POST|PUT|DELETE|PATCH) (/v1/[^\s?]*)`)
)

// routesOf reads the routes a function registers (its non-test Go files) and the routes its
// package documentation lists.
func routesOf(t *testing.T, dir string) (code, doc map[route]bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	code, doc = map[route]bool{}, map[route]bool{}
	consts := map[string]string{} // path constants: name -> "/v1/..."
	var byConst [][2]string       // registrations of a constant: method, constant
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeRoute.FindAllStringSubmatch(string(b), -1) {
			code[route{m[1], m[2]}] = true
		}
		for _, m := range codeConstRoute.FindAllStringSubmatch(string(b), -1) {
			byConst = append(byConst, [2]string{m[1], m[2]})
		}
		for _, m := range pathConst.FindAllStringSubmatch(string(b), -1) {
			consts[m[1]] = m[2]
		}
		for _, m := range docRoute.FindAllStringSubmatch(string(b), -1) {
			if m[1] != "" {
				doc[route{m[1], m[2]}] = true
			} else {
				doc[route{m[3], m[4]}] = true
			}
		}
	}
	for _, r := range byConst {
		p, ok := consts[r[1]]
		if !ok {
			t.Fatalf("%s registers %q+%s and has no constant %s = \"/v1/...\"; the patterns of this test are stale", dir, r[0]+" ", r[1], r[1])
		}
		code[route{r[0], p}] = true
	}
	if len(code) == 0 || len(doc) == 0 {
		t.Fatalf("%s: found %d routes in code and %d in its documentation; the patterns of this test are stale", dir, len(code), len(doc))
	}
	return code, doc
}

func operation(item *v3.PathItem, method string) *v3.Operation {
	switch method {
	case http.MethodGet:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodDelete:
		return item.Delete
	case http.MethodPatch:
		return item.Patch
	}
	return nil
}

// specRoutes are the operations of the description.
func specRoutes(m *v3.Document) map[route]*v3.Operation {
	out := map[route]*v3.Operation{}
	for p, item := range m.Paths.PathItems.FromOldest() {
		for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			if op := operation(item, method); op != nil {
				out[route{method, p}] = op
			}
		}
	}
	return out
}

// Every route the registry and the catalog register, and every route their documentation
// lists, is in the description; and the description has no route the functions do not serve.
func TestEveryRouteIsDescribed(t *testing.T) {
	described := specRoutes(load(t).Model())
	served := map[route]bool{}
	for _, dir := range functionDirs {
		code, doc := routesOf(t, dir)
		for r := range code {
			served[r] = true
			if described[r] == nil {
				t.Errorf("%s serves %s; schemas/openapi/connect.yaml does not describe it", dir, r)
			}
		}
		for r := range doc {
			if described[r] == nil {
				t.Errorf("the documentation of %s lists %s; schemas/openapi/connect.yaml does not describe it", dir, r)
			}
		}
	}
	for r := range described {
		if !served[r] {
			t.Errorf("schemas/openapi/connect.yaml describes %s, which neither function serves", r)
		}
	}
}

// Every operation documents its errors, each as a problem: 500 always; 401 and 403 when it
// needs a token; 404 for a {name}; 400 for parameters or a body; 413 for a body; the public
// catalog GETs 304 and 503 (load shedding). There is no default response, so an
// undocumented status fails apicheck.
func TestEveryOperationHasItsErrors(t *testing.T) {
	for r, op := range specRoutes(load(t).Model()) {
		has := func(code string) bool { return op.Responses.Codes.GetOrZero(code) != nil }
		var want []string
		want = append(want, "500")
		if len(op.Security) > 0 {
			want = append(want, "401", "403")
		}
		named := strings.Contains(r.path, "{name}")
		if named {
			want = append(want, "404")
		}
		if op.RequestBody != nil || hasQuery(op) || named && strings.HasPrefix(r.path, "/v1/integrations/") {
			want = append(want, "400") // the catalog checks {name} itself
		}
		if op.RequestBody != nil {
			want = append(want, "413")
		}
		if r.method == "GET" && strings.HasPrefix(r.path, "/v1/integrations") {
			want = append(want, "304", "503")
		}
		for _, code := range want {
			if !has(code) {
				t.Errorf("%s documents no %s", r, code)
			}
		}
		if op.Responses.Default != nil {
			t.Errorf("%s has a default response: undocumented statuses would pass", r)
		}
		success := false
		for code, resp := range op.Responses.Codes.FromOldest() {
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response %q is not a status code", r, code)
				continue
			}
			if n < 400 {
				success = success || n < 300 || n == http.StatusSeeOther // a browser redirect's success
				continue
			}
			if resp.Content == nil || resp.Content.Len() != 1 || resp.Content.GetOrZero("application/problem+json") == nil {
				t.Errorf("%s %s: an error must be application/problem+json and nothing else", r, code)
				continue
			}
			mt := resp.Content.GetOrZero("application/problem+json")
			if mt.Schema == nil || !strings.HasSuffix(mt.Schema.GetReference(), "/schemas/Problem") {
				t.Errorf("%s %s: the problem schema is not #/components/schemas/Problem", r, code)
			}
		}
		if !success {
			t.Errorf("%s documents no success", r)
		}
	}
}

func hasQuery(op *v3.Operation) bool {
	for _, p := range op.Parameters {
		if p.In == "query" {
			return true
		}
	}
	return false
}

// The Problem component is schemas/json/problem.json, the shape every function sends.
func TestProblemIsTheJSONSchema(t *testing.T) {
	b, err := schemas.JSON.ReadFile("json/problem.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	delete(want, "$schema")
	delete(want, "$id")
	got := component(t, specJSON(t), "Problem")
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("components.schemas.Problem drifted from schemas/json/problem.json:\n%s\nwant\n%s", g, w)
	}
}

func component(t testing.TB, spec map[string]any, name string) map[string]any {
	t.Helper()
	s, _ := spec["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
	if s == nil {
		t.Fatalf("no component schema %s", name)
	}
	return s
}

// Which component schema describes which Go struct a handler encodes or decodes. A response
// struct's fields without omitempty are required in its schema, and the others are not.
var structSchemas = []struct {
	dir, goType, schema string
	request             bool
}{
	{"registry", "Integration", "Integration", false},
	{"registry", "Deprecation", "Deprecation", false},
	{"registry", "Verification", "Verification", false},
	{"registry", "Version", "Version", false},
	{"registry", "Check", "Check", false},
	{"registry", "Stats", "Stats", false},
	{"registry", "DayCount", "DayCount", false},
	{"registry", "Uptime", "Uptime", false},
	{"registry", "IntegrationList", "IntegrationList", false},
	{"registry", "Registered", "Registered", false},
	{"registry", "IntegrationClient", "IntegrationClient", false},
	{"registry", "SecretRotated", "SecretRotated", false},
	{"registry", "Queue", "Queue", false},
	{"registry", "QueueItem", "QueueItem", false},
	{"registry", "TierChanged", "TierChanged", false},
	{"registry", "ResolvedRequest", "ResolvedRequest", false},
	{"registry", "DeprecateRequest", "DeprecateRequest", true},
	{"registry", "UnpublishRequest", "UnpublishRequest", true},
	{"registry", "VerificationRequest", "VerificationRequest", true},
	{"registry", "TierRequest", "TierRequest", true},
	{"catalog", "Listing", "ListingFields", false},
	{"catalog", "Detail", "Detail", false},
	{"catalog", "Deprecation", "Deprecation", false},
	{"catalog", "Pricing", "Pricing", false},
	{"catalog", "Health", "Health", false},
	{"catalog", "Rating", "Rating", false},
	{"catalog", "Page", "Page", false},
	{"catalog", "Review", "Review", false},
	{"catalog", "ReviewsPage", "ReviewsPage", false},
	{"catalog", "ReviewInput", "ReviewInput", true},
	{"catalog", "MyReview", "MyReview", false},
	{"ingest", "Results", "IngestResults", false},
	{"ingest", "Result", "IngestResult", false},
	{"install", "StartRequest", "StartRequest", true},
	{"install", "StartResponse", "StartResponse", false},
	{"install", "Install", "Install", false},
	{"install", "InstallList", "InstallList", false},
	{"install", "ClaimResponse", "ClaimResponse", false},
	{"notify", "DeliveryPage", "DeliveryPage", false},
	{"notify", "Delivery", "Delivery", false},
	{"notify", "EventPage", "EventPage", false},
	{"webhook", "KeySet", "KeySet", false},
	{"webhook", "PublishedKey", "PublishedKey", false},
	{"poll", "RejectionsPage", "RejectionsPage", false},
	{"poll", "SourceStatus", "SourceStatus", false},
	{"poll", "Rejection", "Rejection", false},
}

// goField is a JSON member of a Go struct.
type goField struct {
	name      string
	omitempty bool
}

// goStructs reads the struct types of a function's non-test files: type name -> JSON members,
// embedded structs flattened.
func goStructs(t *testing.T, dir string) map[string][]goField {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	types := map[string]*ast.StructType{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					types[ts.Name.Name] = st
				}
			}
			return true
		})
	}
	var fields func(name string) []goField
	fields = func(name string) []goField {
		st := types[name]
		if st == nil {
			return nil
		}
		var out []goField
		for _, f := range st.Fields.List {
			tag := ""
			if f.Tag != nil {
				tag = reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("json")
			}
			if len(f.Names) == 0 && tag == "" { // embedded: its fields are promoted
				if id, ok := f.Type.(*ast.Ident); ok {
					out = append(out, fields(id.Name)...)
				}
				continue
			}
			jsonName, opts, _ := strings.Cut(tag, ",")
			if jsonName == "-" || len(f.Names) > 0 && !f.Names[0].IsExported() {
				continue
			}
			if jsonName == "" {
				jsonName = f.Names[0].Name
			}
			out = append(out, goField{name: jsonName, omitempty: strings.Contains(","+opts+",", ",omitempty,")})
		}
		return out
	}
	out := map[string][]goField{}
	for name := range types {
		out[name] = fields(name)
	}
	return out
}

// schemaMembers are the properties and required members of a component, through allOf.
func schemaMembers(t *testing.T, spec map[string]any, name string) (props, required map[string]bool) {
	t.Helper()
	props, required = map[string]bool{}, map[string]bool{}
	var walk func(s map[string]any)
	walk = func(s map[string]any) {
		if ref, ok := s["$ref"].(string); ok {
			walk(component(t, spec, strings.TrimPrefix(ref, "#/components/schemas/")))
		}
		for _, sub := range asList(s["allOf"]) {
			walk(sub.(map[string]any))
		}
		for p := range asMap(s["properties"]) {
			props[p] = true
		}
		for _, r := range asList(s["required"]) {
			required[r.(string)] = true
		}
	}
	walk(component(t, spec, name))
	return props, required
}

func asList(v any) []any { l, _ := v.([]any); return l }

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// The schemas have exactly the JSON members of the Go structs the handlers encode and decode,
// and the response schemas require exactly the members that are always sent: a field added,
// renamed, dropped or made optional in a handler fails here, before any request is made.
func TestSchemasMatchTheGoStructs(t *testing.T) {
	spec := specJSON(t)
	structs := map[string]map[string][]goField{}
	for _, dir := range structDirs {
		structs[filepath.Base(dir)] = goStructs(t, dir)
	}
	for _, s := range structSchemas {
		fields, ok := structs[s.dir][s.goType]
		if !ok {
			t.Errorf("functions/%s has no struct %s any more; update structSchemas and the description", s.dir, s.goType)
			continue
		}
		props, required := schemaMembers(t, spec, s.schema)
		goNames := map[string]bool{}
		for _, f := range fields {
			goNames[f.name] = true
			switch {
			case !props[f.name]:
				t.Errorf("%s.%s sends %q; schema %s has no such property", s.dir, s.goType, f.name, s.schema)
			case s.request:
			case f.omitempty && required[f.name]:
				t.Errorf("%s.%s omits an empty %q; schema %s requires it", s.dir, s.goType, f.name, s.schema)
			case !f.omitempty && !required[f.name]:
				t.Errorf("%s.%s always sends %q; schema %s does not require it", s.dir, s.goType, f.name, s.schema)
			}
		}
		for _, p := range slices.Sorted(maps.Keys(props)) {
			if !goNames[p] {
				t.Errorf("schema %s has property %q; %s.%s has no such field", s.schema, p, s.dir, s.goType)
			}
		}
	}
}

// Every object schema of the description is closed, except the few that are open on purpose,
// so a drifted member fails validation instead of passing silently.
func TestObjectsAreClosed(t *testing.T) {
	open := map[string]bool{
		"Problem":        true, // schemas/json/problem.json is open (RFC 9457 allows extension members)
		"Manifest":       true, // validated by the registry against schemas/json/manifest.json
		"ListingFields":  true, // closed by Listing and Detail (unevaluatedProperties)
		"StripeEvent":    true, // Stripe owns the shape and adds members; the endpoint checks what it reads
		"LogtoHookEvent": true, // Logto owns the shape and adds context members freely
	}
	spec := specJSON(t)
	for name, s := range asMap(asMap(spec["components"])["schemas"]) {
		s := s.(map[string]any)
		if open[name] || (s["properties"] == nil && s["allOf"] == nil) {
			continue
		}
		if s["additionalProperties"] != false && s["unevaluatedProperties"] != false {
			t.Errorf("component schema %s is not closed (additionalProperties: false or unevaluatedProperties: false)", name)
		}
	}
}
