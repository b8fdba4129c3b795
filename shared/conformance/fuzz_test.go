package conformance

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/myscrollr/connect/shared/manifest"
)

// FuzzWidgetManifest feeds GET /manifest bodies through the reading the widget_manifest and
// mixed_content checks do: nothing panics, every problem is pointed (a JSON pointer or the
// whole document), an accepted body names the registered widget and a custom element, and
// the reason a Result would carry is valid UTF-8 of bounded length.
func FuzzWidgetManifest(f *testing.F) {
	for _, s := range []string{
		`{"name":"world-clock","version":"1.0.0","element":"world-clock-widget"}`,
		`{"name":"world-clock","version":"1.0.0","element":"a-b","sizes":[{"w":2,"h":1}],"config":[{"key":"k","label":"K","type":"select","options":["x"],"default":"http://x"}]}`,
		`{"name":"world-clock","version":"1.0.0","element":"a-b","integrity":"sha256-AAAA"}`,
		`{"name":"other","version":"2.0.0","element":"A"}`,
		`[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`, `{`, `null`, "\"\xff\"",
	} {
		f.Add([]byte(s))
	}
	r := &run{m: &manifest.Manifest{Name: "world-clock", Version: "1.0.0", Type: manifest.TypeWidget,
		Widget: &manifest.Widget{Sizes: []manifest.Size{{W: 2, H: 1}}}}, opts: Options{AllowLoopbackHTTP: true}.withDefaults()}
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, wm, problems, err := r.readWidgetManifest(body)
		if err != nil {
			t.Fatal(err)
		}
		parts := []string{}
		for _, p := range problems {
			if p.Field != "" && !strings.HasPrefix(p.Field, "/") || p.Reason == "" {
				t.Fatalf("problem %+v", p)
			}
			parts = append(parts, p.String())
		}
		if len(problems) == 0 && (wm.Name != "world-clock" || wm.Version != "1.0.0" || !strings.Contains(wm.Element, "-")) {
			t.Fatalf("accepted %s as %+v", body, wm)
		}
		res := result(CheckWidgetManifest, false, strings.Join(parts, "; "), nil)
		if !utf8.ValidString(res.Reason) || len(res.Reason) > maxReason {
			t.Fatalf("reason %q", res.Reason)
		}
		mixed := r.mixedContent(doc, doc != nil)
		if !utf8.ValidString(mixed.Reason) || len(mixed.Reason) > maxReason {
			t.Fatalf("mixed-content reason %q", mixed.Reason)
		}
	})
}
