package conformance

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/records"
)

// WidgetManifestPath is the widget manifest contract (GET /manifest) in [schemas.JSON].
const WidgetManifestPath = "json/widget-manifest.json"

// JavaScript media types a bundle may be served with (RFC 9239 names text/javascript; the
// obsolete application/javascript is still what many servers send).
var javaScriptTypes = []string{"text/javascript", "application/javascript"}

const maxDocumentDepth = 16 // a widget manifest needs 5

var (
	widgetOnce   sync.Once
	widgetSchema *jsonschema.Schema
	widgetDocs   map[string]any // schema documents by URL, for x-reason
	widgetErr    error
	printer      = message.NewPrinter(language.English)
)

// loadWidgetSchema compiles the widget manifest contract with the manifest contract it
// refers to (both embedded; nothing is loaded from the network).
func loadWidgetSchema() {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	widgetDocs = map[string]any{}
	var rootURL string
	for _, p := range []string{manifest.SchemaPath, WidgetManifestPath} {
		raw, err := schemas.JSON.ReadFile(p)
		if err != nil {
			widgetErr = fmt.Errorf("conformance: %w", err)
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			widgetErr = fmt.Errorf("conformance: %s: %w", p, err)
			return
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			widgetErr = fmt.Errorf("conformance: %s has no $id", p)
			return
		}
		if err := c.AddResource(id, doc); err != nil {
			widgetErr = fmt.Errorf("conformance: %s: %w", p, err)
			return
		}
		widgetDocs[id] = doc
		rootURL = id
	}
	widgetSchema, widgetErr = c.Compile(rootURL)
}

// widget checks GET /manifest (the widget manifest contract, agreeing with the registered
// manifest) and GET /bundle (JavaScript, over https, bounded, matching the declared
// integrity). It returns the decoded /manifest for the mixed-content scan, and whether one
// was read.
func (r *run) widget() ([]Result, any, bool) {
	if r.base == nil {
		return []Result{notCalled(CheckWidgetManifest), notCalled(CheckWidgetBundle)}, nil, false
	}
	res, doc, integrity := r.widgetManifest()
	seen := doc != nil
	return []Result{res, r.widgetBundle(integrity)}, doc, seen
}

func (r *run) widgetManifest() (Result, any, string) {
	a, reason, d := r.call(http.MethodGet, "manifest", http.Header{"Accept": {"application/json"}}, nil, r.opts.MaxDocumentBytes)
	if reason != "" {
		return result(CheckWidgetManifest, false, reason, d), nil, ""
	}
	if !ok2xx(a.status) {
		return result(CheckWidgetManifest, false, fmt.Sprintf("GET /manifest: HTTP status %d", a.status), d), nil, ""
	}
	doc, wm, problems, err := r.readWidgetManifest(a.body)
	switch {
	case err != nil:
		return result(CheckWidgetManifest, false, "GET /manifest: contract unavailable", d), doc, ""
	case len(problems) > 0:
		parts := make([]string, 0, len(problems))
		for _, p := range problems {
			parts = append(parts, p.String())
		}
		return result(CheckWidgetManifest, false, "GET /manifest: "+strings.Join(parts, "; "), d), doc, ""
	}
	return result(CheckWidgetManifest, true, fmt.Sprintf("valid; element <%s>", wm.Element), d), doc, wm.Integrity
}

// readWidgetManifest reads a GET /manifest body: bounded nesting, JSON, the contract, and
// agreement with the registered manifest. doc is the decoded body (nil when it is not JSON),
// for the mixed-content scan. The error means the contract itself could not be compiled.
func (r *run) readWidgetManifest(body []byte) (doc any, wm widgetManifest, problems []records.Problem, err error) {
	if httpx.JSONDepth(body, maxDocumentDepth) > maxDocumentDepth {
		return nil, wm, []records.Problem{{Reason: fmt.Sprintf("nested deeper than %d levels", maxDocumentDepth)}}, nil
	}
	doc, jerr := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if jerr != nil {
		return nil, wm, []records.Problem{{Reason: "not valid JSON"}}, nil
	}
	problems, err = validateWidgetManifest(doc)
	if err != nil || len(problems) > 0 {
		return doc, wm, problems, err
	}
	if err := json.Unmarshal(body, &wm); err != nil {
		return doc, wm, []records.Problem{{Reason: "does not fit the contract's types"}}, nil
	}
	return doc, wm, r.agree(wm), nil
}

// widgetManifest is a valid GET /manifest document.
type widgetManifest struct {
	Name      string                  `json:"name"`
	Version   string                  `json:"version"`
	Element   string                  `json:"element"`
	Integrity string                  `json:"integrity"`
	Sizes     []manifest.Size         `json:"sizes"`
	MinSize   *manifest.Size          `json:"min_size"`
	MaxSize   *manifest.Size          `json:"max_size"`
	Config    []manifest.ConfigOption `json:"config"`
}

// agree checks that GET /manifest says what the registered manifest says.
func (r *run) agree(wm widgetManifest) []records.Problem {
	var out []records.Problem
	if wm.Name != r.m.Name {
		out = append(out, records.Problem{Field: "/name", Reason: fmt.Sprintf("is not the manifest's name %q", r.m.Name)})
	}
	if wm.Version != r.m.Version {
		out = append(out, records.Problem{Field: "/version", Reason: fmt.Sprintf("is not the manifest's version %q", r.m.Version)})
	}
	w := r.m.Widget
	if w == nil {
		return out
	}
	differs := func(field string, served, registered any, present bool) {
		if present && !reflect.DeepEqual(served, registered) {
			out = append(out, records.Problem{Field: field, Reason: "differs from the manifest's widget block"})
		}
	}
	differs("/sizes", wm.Sizes, w.Sizes, wm.Sizes != nil)
	differs("/min_size", wm.MinSize, w.MinSize, wm.MinSize != nil)
	differs("/max_size", wm.MaxSize, w.MaxSize, wm.MaxSize != nil)
	differs("/config", wm.Config, w.Config, wm.Config != nil)
	return out
}

// validateWidgetManifest reports every problem of doc by the widget manifest contract.
func validateWidgetManifest(doc any) ([]records.Problem, error) {
	widgetOnce.Do(loadWidgetSchema)
	if widgetErr != nil {
		return nil, widgetErr
	}
	err := widgetSchema.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	out := collect(ve, nil)
	slices.SortFunc(out, func(a, b records.Problem) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return slices.Compact(out), nil
}

// collect flattens a validation error tree into its leaves, a missing member pointed at
// itself, an x-reason annotation preferred to the validator's words.
func collect(e *jsonschema.ValidationError, out []records.Problem) []records.Problem {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			out = collect(c, out)
		}
		return out
	}
	at := records.Pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, name := range k.Missing {
			out = append(out, records.Problem{Field: at + "/" + escape(name), Reason: "required"})
		}
		return out
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			out = append(out, records.Problem{Field: at + "/" + escape(name), Reason: "unknown field"})
		}
		return out
	}
	reason := xReason(e.SchemaURL)
	if reason == "" {
		reason = e.ErrorKind.LocalizedString(printer)
	}
	return append(out, records.Problem{Field: at, Reason: reason})
}

func escape(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// xReason is the x-reason annotation of the subschema at schemaURL, if any.
func xReason(schemaURL string) string {
	base, frag, _ := strings.Cut(schemaURL, "#")
	return manifest.XReason(widgetDocs[base], frag)
}

// widgetBundle checks GET /bundle: 2xx, over https (after redirects; http on 127.0.0.1 with
// AllowLoopbackHTTP), a JavaScript media type, not empty, at most MaxBundleBytes, and
// matching integrity when the widget manifest declares one.
func (r *run) widgetBundle(integrity string) Result {
	a, reason, d := r.call(http.MethodGet, "bundle", http.Header{"Accept": {"text/javascript, application/javascript"}}, nil, r.opts.MaxBundleBytes)
	if reason != "" {
		return result(CheckWidgetBundle, false, reason, d)
	}
	if !ok2xx(a.status) {
		return result(CheckWidgetBundle, false, fmt.Sprintf("GET /bundle: HTTP status %d", a.status), d)
	}
	if a.url.Scheme != "https" && !r.loopbackHTTP(a.url) {
		return result(CheckWidgetBundle, false, "GET /bundle: served over http, not https", d)
	}
	mt, _, err := mime.ParseMediaType(a.header.Get("Content-Type"))
	if err != nil || !slices.Contains(javaScriptTypes, strings.ToLower(mt)) {
		got := strings.ToLower(mt)
		if err != nil || got == "" {
			got = "none"
		}
		return result(CheckWidgetBundle, false, fmt.Sprintf("GET /bundle: Content-Type %s, want text/javascript", records.Clean(got, 100)), d)
	}
	if len(a.body) == 0 {
		return result(CheckWidgetBundle, false, "GET /bundle: empty", d)
	}
	if integrity != "" && !matchesIntegrity(integrity, a.body) {
		return result(CheckWidgetBundle, false, "GET /bundle: does not match the integrity hash of GET /manifest", d)
	}
	return result(CheckWidgetBundle, true, fmt.Sprintf("%d bytes of %s", len(a.body), mt), d)
}

// matchesIntegrity checks a Subresource Integrity value ("sha384-<base64>") against body.
func matchesIntegrity(sri string, body []byte) bool {
	alg, digest, ok := strings.Cut(sri, "-")
	if !ok {
		return false
	}
	var h hash.Hash
	switch alg {
	case "sha256":
		h = sha256.New()
	case "sha384":
		h = sha512.New384()
	case "sha512":
		h = sha512.New()
	default:
		return false
	}
	want, err := base64.StdEncoding.DecodeString(digest)
	if err != nil {
		return false
	}
	h.Write(body)
	return subtle.ConstantTimeCompare(h.Sum(nil), want) == 1
}

// mixedContent scans for http links: the manifest's icon, screenshots, support, privacy and
// author URLs, and every string of the widget's GET /manifest. With AllowLoopbackHTTP, links
// to http://127.0.0.1 are fine. Reasons name where a link is, never the link.
func (r *run) mixedContent(widgetDoc any, widgetSeen bool) Result {
	var at []string
	check := func(where, s string) {
		if r.hasHTTPLink(s) {
			at = append(at, where)
		}
	}
	m := r.m
	check("/icon", m.Icon)
	for i, s := range m.Screenshots {
		check(fmt.Sprintf("/screenshots/%d", i), s)
	}
	check("/support_url", m.SupportURL)
	check("/privacy_url", m.PrivacyURL)
	if m.Author != nil {
		check("/author/url", m.Author.URL)
	}
	if widgetSeen {
		walkStrings(widgetDoc, "", func(ptr, s string) { check("GET /manifest "+ptr, s) })
	}
	if len(at) > 0 {
		return fail(CheckMixedContent, "http links (mixed content) at "+strings.Join(at, ", "))
	}
	scanned := "manifest URLs"
	if widgetSeen {
		scanned += " and GET /manifest"
	} else if m.Type == manifest.TypeWidget {
		scanned += " (GET /manifest could not be read)"
	}
	return pass(CheckMixedContent, "no http links in "+scanned)
}

// hasHTTPLink says whether s holds an http:// link (in any letter case), other than to
// 127.0.0.1 when Options allow it.
func (r *run) hasHTTPLink(s string) bool {
	lower := strings.ToLower(s)
	for {
		i := strings.Index(lower, "http://")
		if i < 0 {
			return false
		}
		rest := lower[i+len("http://"):]
		if !r.opts.AllowLoopbackHTTP || !loopbackHost(rest) {
			return true
		}
		lower = rest
	}
}

// loopbackHost says whether rest (what follows "http://") is the host 127.0.0.1, alone.
func loopbackHost(rest string) bool {
	after, ok := strings.CutPrefix(rest, "127.0.0.1")
	return ok && (after == "" || strings.ContainsAny(after[:1], ":/?#"))
}

// walkStrings calls f with the JSON pointer and value of every string in v, object member
// names included (at the member's pointer).
func walkStrings(v any, ptr string, f func(ptr, s string)) {
	switch x := v.(type) {
	case string:
		f(ptr, x)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := ptr + "/" + escape(k)
			f(p, k)
			walkStrings(x[k], p, f)
		}
	case []any:
		for i, e := range x {
			walkStrings(e, ptr+"/"+strconv.Itoa(i), f)
		}
	}
}
