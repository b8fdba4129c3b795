// Package manifesttest holds what tests of the manifest contract share: a complete, valid
// manifest of each integration type (Examples), and for every member of the schema an invalid
// value (Mutations), from which Generate makes invalid manifests whose wrong members are known.
// The manifest package's tests prove that the mutations cover every member of
// schemas/json/manifest.json and that the examples together use every member; the registry's
// tests send generated manifests through its HTTP handler.
package manifesttest

import (
	"embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

//go:embed examples/*.json
var examples embed.FS

// Example returns the complete valid manifest of an integration type: "data_source",
// "widget" or "app".
func Example(typ string) []byte {
	b, err := examples.ReadFile("examples/" + typ + ".json")
	if err != nil {
		panic(fmt.Sprintf("manifesttest: no example for type %q", typ))
	}
	return b
}

// Types are the integration types, each with an Example.
var Types = []string{"data_source", "widget", "app"}

// Mutation makes one member of a manifest invalid.
type Mutation struct {
	// Pointer is the member (RFC 6901) the value is written to, and the field the
	// validation must name.
	Pointer string
	// Value is the invalid value.
	Value any
	// Types are the example types it applies to (the member exists there or may be added).
	Types []string
	// Alone marks a mutation Generate never combines with others: one that changes which
	// other rules apply (the type itself), or one only a rule beside the schema reports, which
	// runs once the document fits the manifest's Go types (a config option's default against
	// its type).
	Alone bool
}

var all = []string{"data_source", "widget", "app"}

// Mutations has an invalid value for every member of the manifest schema (array members at
// index 0). Each breaks only its own member's rule.
var Mutations = []Mutation{
	{Pointer: "/name", Value: "Bad Name", Types: all},
	{Pointer: "/display_name", Value: "", Types: all},
	{Pointer: "/version", Value: "1.0", Types: all},
	{Pointer: "/type", Value: "plugin", Types: all, Alone: true},
	{Pointer: "/delivery_mode", Value: "sideways", Types: []string{"data_source"}},
	{Pointer: "/description", Value: 42, Types: all},
	{Pointer: "/author", Value: "Ada", Types: all},
	{Pointer: "/author/name", Value: "", Types: []string{"data_source", "widget"}},
	{Pointer: "/author/url", Value: "http://ada.example.com", Types: []string{"data_source"}},
	{Pointer: "/base_url", Value: "ftp://files.example.com", Types: all},
	{Pointer: "/scopes", Value: "dashboard:read", Types: all},
	{Pointer: "/scopes/0", Value: "integrations:admin", Types: all},
	{Pointer: "/pricing", Value: 299, Types: all},
	{Pointer: "/pricing/model", Value: "barter", Types: []string{"widget"}},
	{Pointer: "/pricing/price_cents", Value: -1, Types: []string{"data_source", "app"}},
	{Pointer: "/pricing/currency", Value: "USD", Types: []string{"data_source", "app"}},
	{Pointer: "/pricing/interval", Value: "week", Types: []string{"data_source"}},
	{Pointer: "/icon", Value: "javascript:alert(1)", Types: all},
	{Pointer: "/screenshots", Value: "https://cdn.example.com/1.png", Types: all},
	{Pointer: "/screenshots/0", Value: "http://cdn.example.com/1.png", Types: []string{"data_source"}},
	{Pointer: "/category", Value: "Finance!", Types: all},
	{Pointer: "/tags", Value: "crypto", Types: all},
	{Pointer: "/tags/0", Value: "Not OK", Types: []string{"data_source", "widget"}},
	{Pointer: "/support_url", Value: "ftp://help.example.com", Types: all},
	{Pointer: "/privacy_url", Value: "//privacy.example.com", Types: all},
	{Pointer: "/redirect_uris", Value: "https://x.example.com/cb", Types: all},
	{Pointer: "/redirect_uris/0", Value: "http://x.example.com/cb", Types: []string{"data_source"}},
	{Pointer: "/widget", Value: 7, Types: []string{"widget"}},
	{Pointer: "/widget/sizes", Value: 7, Types: []string{"widget"}},
	{Pointer: "/widget/sizes/0", Value: 7, Types: []string{"widget"}},
	{Pointer: "/widget/sizes/0/w", Value: "wide", Types: []string{"widget"}},
	{Pointer: "/widget/sizes/0/h", Value: "tall", Types: []string{"widget"}},
	{Pointer: "/widget/min_size", Value: 7, Types: []string{"widget"}},
	{Pointer: "/widget/min_size/w", Value: "one", Types: []string{"widget"}},
	{Pointer: "/widget/min_size/h", Value: "one", Types: []string{"widget"}},
	{Pointer: "/widget/max_size", Value: 7, Types: []string{"widget"}},
	{Pointer: "/widget/max_size/w", Value: "four", Types: []string{"widget"}},
	{Pointer: "/widget/max_size/h", Value: "four", Types: []string{"widget"}},
	{Pointer: "/widget/config", Value: 7, Types: []string{"widget"}},
	{Pointer: "/widget/config/0", Value: 7, Types: []string{"widget"}},
	{Pointer: "/widget/config/1/options/0", Value: 5, Types: []string{"widget"}},
	{Pointer: "/widget/config/0/key", Value: "Bad Key", Types: []string{"widget"}},
	{Pointer: "/widget/config/0/label", Value: "", Types: []string{"widget"}},
	{Pointer: "/widget/config/0/type", Value: "colour", Types: []string{"widget"}},
	{Pointer: "/widget/config/0/required", Value: "yes", Types: []string{"widget"}},
	{Pointer: "/widget/config/0/default", Value: 5, Types: []string{"widget"}, Alone: true},
	{Pointer: "/widget/config/0/options", Value: "paris", Types: []string{"widget"}},
	{Pointer: "/data_source", Value: 7, Types: []string{"data_source"}},
	{Pointer: "/data_source/streams", Value: 7, Types: []string{"data_source"}},
	{Pointer: "/data_source/streams/0", Value: 7, Types: []string{"data_source"}},
	{Pointer: "/data_source/streams/0/name", Value: "Bad Name", Types: []string{"data_source"}},
	{Pointer: "/data_source/streams/0/description", Value: 7, Types: []string{"data_source"}},
	{Pointer: "/data_source/streams/0/key", Value: []any{}, Types: []string{"data_source"}},
	{Pointer: "/data_source/streams/0/key/0", Value: "", Types: []string{"data_source"}},
	{Pointer: "/data_source/streams/0/schema", Value: "any", Types: []string{"data_source"}},
	{Pointer: "/data_source/refresh_interval_seconds", Value: 5, Types: []string{"data_source"}},
	{Pointer: "/app", Value: 7, Types: []string{"app"}},
	{Pointer: "/app/lifecycle", Value: "webhook", Types: []string{"app"}},
	{Pointer: "/deprecation", Value: "soon", Types: all},
	{Pointer: "/deprecation/message", Value: "", Types: []string{"data_source"}},
	{Pointer: "/deprecation/sunset", Value: "2027-13-40", Types: []string{"data_source"}},
	{Pointer: "/deprecation/replacement", Value: "-x", Types: []string{"data_source"}},
	{Pointer: "/colour", Value: "red", Types: all},
}

// Apply writes value at pointer in the JSON document doc (objects and array indexes that exist;
// the last step may add a member).
func Apply(doc []byte, pointer string, value any) ([]byte, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	parts := strings.Split(pointer, "/")[1:]
	cur := root
	for i, p := range parts {
		p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		last := i == len(parts)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[p] = value
				break
			}
			next, ok := c[p]
			if !ok {
				return nil, fmt.Errorf("manifesttest: %s: no member %q", pointer, p)
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(c) {
				return nil, fmt.Errorf("manifesttest: %s: no index %q", pointer, p)
			}
			if last {
				c[n] = value
				break
			}
			cur = c[n]
		default:
			return nil, fmt.Errorf("manifesttest: %s: %q is not inside an object or array", pointer, p)
		}
	}
	return json.Marshal(root)
}

// Generate makes an invalid manifest from one Example with one to five Mutations applied, and
// returns it with the pointers of the members made wrong, sorted. Mutations inside a member
// another mutation replaces are not combined.
func Generate(r *rand.Rand) (doc []byte, wrong []string) {
	typ := Types[r.IntN(len(Types))]
	var candidates []Mutation
	for _, m := range Mutations {
		if slices.Contains(m.Types, typ) {
			candidates = append(candidates, m)
		}
	}
	r.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	n := 1 + r.IntN(5)
	doc = Example(typ)
	for _, m := range candidates {
		if len(wrong) == n {
			break
		}
		if m.Alone && len(wrong) > 0 {
			continue
		}
		if slices.ContainsFunc(wrong, func(w string) bool { return Related(w, m.Pointer) }) {
			continue
		}
		next, err := Apply(doc, m.Pointer, m.Value)
		if err != nil {
			panic(err) // a mutation that does not fit its example: a bug in the table
		}
		doc = next
		wrong = append(wrong, m.Pointer)
		if m.Alone {
			break
		}
	}
	slices.Sort(wrong)
	return doc, wrong
}

// Related reports whether two pointers name the same member or one contains the other.
func Related(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}
