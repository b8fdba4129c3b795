package conformance

import (
	"bytes"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/myscrollr/connect/schemas"
)

// The widget manifest contract compiles with the manifest contract it refers to, its examples
// are valid, and each rule fails with a reason pointed at the member.
func TestWidgetManifestContract(t *testing.T) {
	raw, err := schemas.JSON.ReadFile(WidgetManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	examples, _ := doc.(map[string]any)["examples"].([]any)
	if len(examples) == 0 {
		t.Fatal("no examples")
	}
	for i, ex := range examples {
		if ps, err := validateWidgetManifest(ex); err != nil || len(ps) > 0 {
			t.Errorf("example %d: %v %v", i, ps, err)
		}
	}
	for body, want := range map[string]string{
		`{"name":"a","version":"1.0.0","element":"a-b"}`:                                                       `/name: must be 2 to 63`,
		`{"name":"ab","version":"1.0","element":"a-b"}`:                                                        `/version: must be a semantic version`,
		`{"name":"ab","version":"1.0.0","element":"ab"}`:                                                       `/element: must be a custom element name`,
		`{"name":"ab","version":"1.0.0","element":"a-b","integrity":"md5-abc"}`:                                `/integrity: must be a Subresource Integrity hash`,
		`{"name":"ab","version":"1.0.0","element":"a-b","config":[{"key":"Bad","label":"x","type":"string"}]}`: `/config/0/key: must be 1 to 63`,
		`{"name":"ab","version":"1.0.0","element":"a-b","config":[{"key":"k","label":"x","type":"select"}]}`:   `/config/0/options: required`,
		`{"name":"ab","version":"1.0.0","element":"a-b","min_size":{"w":0,"h":1}}`:                             `/min_size/w`,
		`{"version":"1.0.0"}`: `/element: required; /name: required`,
		`[]`:                  `got array, want object`,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		ps, err := validateWidgetManifest(v)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, p := range ps {
			parts = append(parts, p.String())
		}
		if got := strings.Join(parts, "; "); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

func TestMatchesIntegrity(t *testing.T) {
	body := []byte("alert(1)")
	for sri, want := range map[string]bool{
		// printf 'alert(1)' | openssl dgst -sha256 -binary | base64
		"sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=": true,
		"sha256-AAAAL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=": false,
		"sha1-abc": false,
		"sha256":   false,
		"sha256-!": false,
	} {
		if got := matchesIntegrity(sri, body); got != want {
			t.Errorf("matchesIntegrity(%s) = %v, want %v", sri, got, want)
		}
	}
}
