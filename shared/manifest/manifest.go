package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
)

// Input bounds, checked before parsing.
const (
	MaxSize  = 64 << 10 // bytes
	MaxDepth = 16       // nested objects and arrays; the schema needs 5
)

// SchemaPath is where the contract lives in [schemas.JSON].
const SchemaPath = "json/manifest.json"

// Types, delivery modes, pricing models and app lifecycle deliveries.
const (
	TypeDataSource = "data_source"
	TypeWidget     = "widget"
	TypeApp        = "app"

	DeliveryPull = "pull"
	DeliveryPush = "push"

	PricingFree         = "free"
	PricingOneTime      = "one_time"
	PricingSubscription = "subscription"

	LifecycleHTTP  = "http"
	LifecycleKafka = "kafka"

	DefaultRefreshIntervalSeconds = 300
)

// Manifest is a validated manifest. Optional members are pointers or empty; the Effective*
// methods apply the defaults.
type Manifest struct {
	Name         string       `json:"name"`
	DisplayName  string       `json:"display_name"`
	Version      string       `json:"version"`
	Type         string       `json:"type"`
	DeliveryMode string       `json:"delivery_mode,omitempty"`
	Description  string       `json:"description,omitempty"`
	Author       *Author      `json:"author,omitempty"`
	BaseURL      string       `json:"base_url"`
	Scopes       []string     `json:"scopes"`
	Pricing      *Pricing     `json:"pricing,omitempty"`
	Icon         string       `json:"icon,omitempty"`
	Screenshots  []string     `json:"screenshots,omitempty"`
	Category     string       `json:"category,omitempty"`
	Tags         []string     `json:"tags,omitempty"`
	SupportURL   string       `json:"support_url,omitempty"`
	PrivacyURL   string       `json:"privacy_url,omitempty"`
	RedirectURIs []string     `json:"redirect_uris,omitempty"`
	Widget       *Widget      `json:"widget,omitempty"`
	DataSource   *DataSource  `json:"data_source,omitempty"`
	App          *App         `json:"app,omitempty"`
	Deprecation  *Deprecation `json:"deprecation,omitempty"`
}

// Author is who publishes the integration.
type Author struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// Pricing is what the integration costs: free (no price), one_time (price_cents > 0 and
// currency) or subscription (also interval).
type Pricing struct {
	Model      string `json:"model"`
	PriceCents int64  `json:"price_cents,omitempty"`
	Currency   string `json:"currency,omitempty"` // ISO 4217, lower case
	Interval   string `json:"interval,omitempty"` // month or year
}

// Widget is a widget's contract.
type Widget struct {
	Sizes   []Size         `json:"sizes,omitempty"`
	MinSize *Size          `json:"min_size,omitempty"`
	MaxSize *Size          `json:"max_size,omitempty"`
	Config  []ConfigOption `json:"config,omitempty"`
}

// Size is a size in dashboard grid cells (1 to 12 each way).
type Size struct {
	W int `json:"w"`
	H int `json:"h"`
}

// ConfigOption is one setting a user fills in when placing the widget.
type ConfigOption struct {
	Key      string   `json:"key"`
	Label    string   `json:"label"`
	Type     string   `json:"type"` // string, number, boolean or select
	Required bool     `json:"required,omitempty"`
	Default  any      `json:"default,omitempty"`
	Options  []string `json:"options,omitempty"` // select only
}

// DataSource is a data source's contract.
type DataSource struct {
	Streams                []Stream `json:"streams,omitempty"`
	RefreshIntervalSeconds int      `json:"refresh_interval_seconds,omitempty"` // pull only
}

// Stream is one named stream of records a data source produces.
type Stream struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Key and Schema declare a push stream's records (ingest validates pushed records against
	// them); a pull source serves them at GET /schema instead.
	Key    []string        `json:"key,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

// App is an app's contract.
type App struct {
	Lifecycle string `json:"lifecycle,omitempty"` // kafka or http
}

// Deprecation says an integration is going away.
type Deprecation struct {
	Message     string `json:"message"`
	Sunset      string `json:"sunset,omitempty"` // YYYY-MM-DD
	Replacement string `json:"replacement,omitempty"`
}

// EffectiveDeliveryMode is the data source's delivery mode (pull unless push), "" for others.
func (m *Manifest) EffectiveDeliveryMode() string {
	if m.Type != TypeDataSource {
		return ""
	}
	if m.DeliveryMode == "" {
		return DeliveryPull
	}
	return m.DeliveryMode
}

// EffectivePricing is the pricing, free when absent.
func (m *Manifest) EffectivePricing() Pricing {
	if m.Pricing == nil {
		return Pricing{Model: PricingFree}
	}
	return *m.Pricing
}

// Options change what Validate accepts.
type Options struct {
	// AllowLoopbackHTTP accepts http URLs whose host is 127.0.0.1, for the local runtime
	// (make dev sets it). Everything else must be https.
	AllowLoopbackHTTP bool
}

// Error is an invalid manifest: every problem found.
type Error struct {
	Fields []httpx.FieldError
}

func (e *Error) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, fmt.Sprintf("%q: %s", f.Field, f.Reason))
	}
	return "invalid manifest: " + strings.Join(parts, "; ")
}

// Problem is the 400 problem+json answer listing every field.
func (e *Error) Problem() *httpx.Problem {
	return httpx.BadRequest("invalid manifest", e.Fields...)
}

// Parse validates data and decodes it. A failure is an *Error listing every problem.
func Parse(data []byte, opts Options) (*Manifest, error) {
	m, fields, err := check(data, opts)
	if err != nil {
		return nil, err
	}
	if len(fields) > 0 {
		return nil, &Error{Fields: fields}
	}
	return m, nil
}

// Validate reports every problem of data as a manifest, sorted by field then reason; none
// means valid. The error is not about data: the embedded schema does not compile (a build
// defect the tests catch).
func Validate(data []byte, opts Options) ([]httpx.FieldError, error) {
	_, fields, err := check(data, opts)
	return fields, err
}

// compiled is the schema and its raw document (to read x-reason annotations).
type compiled struct {
	schema *jsonschema.Schema
	doc    any
}

var (
	once                sync.Once
	strict, loopback    compiled
	loadErr             error
	printer             = message.NewPrinter(language.English)
	loopbackURLPattern  = `^(https://[A-Za-z0-9.-]+|http://127\.0\.0\.1)(:[0-9]{1,5})?([/?#][^\s]*)?$`
	loopbackURLReason   = "must be an https URL (or http on 127.0.0.1) without credentials, at most 2048 characters"
	errSchemaDefsLayout = errors.New("manifest: schema has no $defs.url object")
)

func load() {
	raw, err := schemas.JSON.ReadFile(SchemaPath)
	if err != nil {
		loadErr = fmt.Errorf("manifest: %w", err)
		return
	}
	if strict, err = compile(raw, nil); err != nil {
		loadErr = err
		return
	}
	loopback, loadErr = compile(raw, func(doc any) error {
		root, _ := doc.(map[string]any)
		defs, _ := root["$defs"].(map[string]any)
		u, ok := defs["url"].(map[string]any)
		if !ok {
			return errSchemaDefsLayout
		}
		u["pattern"], u["x-reason"] = loopbackURLPattern, loopbackURLReason
		return nil
	})
}

func compile(raw []byte, patch func(any) error) (compiled, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return compiled{}, fmt.Errorf("manifest: schema: %w", err)
	}
	if patch != nil {
		if err := patch(doc); err != nil {
			return compiled{}, err
		}
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("manifest.json", doc); err != nil {
		return compiled{}, fmt.Errorf("manifest: schema: %w", err)
	}
	s, err := c.Compile("manifest.json")
	if err != nil {
		return compiled{}, fmt.Errorf("manifest: schema: %w", err)
	}
	return compiled{schema: s, doc: doc}, nil
}

func check(data []byte, opts Options) (*Manifest, []httpx.FieldError, error) {
	if len(data) > MaxSize {
		return nil, []httpx.FieldError{{Field: "", Reason: fmt.Sprintf("larger than %d bytes", MaxSize)}}, nil
	}
	if httpx.JSONDepth(data, MaxDepth) > MaxDepth {
		return nil, []httpx.FieldError{{Field: "", Reason: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}}, nil
	}
	once.Do(load)
	if loadErr != nil {
		return nil, nil, loadErr
	}
	c := strict
	if opts.AllowLoopbackHTTP {
		c = loopback
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, []httpx.FieldError{{Field: "", Reason: "not valid JSON"}}, nil
	}
	var fields []httpx.FieldError
	if err := c.schema.Validate(v); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, nil, fmt.Errorf("manifest: %w", err)
		}
		fields = c.collect(ve, fields)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err == nil {
		fields = append(fields, m.rules()...)
	} else if len(fields) == 0 {
		// The schema admits nothing the Go types cannot hold; say so rather than pass.
		fields = append(fields, httpx.FieldError{Field: "", Reason: "does not fit the manifest types"})
	}
	if len(fields) == 0 {
		return &m, nil, nil
	}
	slices.SortFunc(fields, func(a, b httpx.FieldError) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return nil, slices.Compact(fields), nil
}

// collect flattens a validation error tree into its leaves.
func (c compiled) collect(e *jsonschema.ValidationError, out []httpx.FieldError) []httpx.FieldError {
	if len(e.Causes) > 0 {
		for _, cause := range e.Causes {
			out = c.collect(cause, out)
		}
		return out
	}
	at := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, name := range k.Missing {
			out = append(out, httpx.FieldError{Field: at + "/" + escape(name), Reason: "required"})
		}
		return out
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			out = append(out, httpx.FieldError{Field: at + "/" + escape(name), Reason: "unknown field"})
		}
		return out
	}
	reason := c.reason(e.SchemaURL)
	if reason == "" {
		reason = e.ErrorKind.LocalizedString(printer)
	}
	return append(out, httpx.FieldError{Field: at, Reason: reason})
}

// reason is the x-reason annotation of the subschema at schemaURL, if any.
func (c compiled) reason(schemaURL string) string {
	_, frag, ok := strings.Cut(schemaURL, "#")
	if !ok {
		return ""
	}
	return XReason(c.doc, frag)
}

// XReason is the "x-reason" annotation of the subschema at the JSON pointer fragment of a
// schema document (as decoded into any), or "" when there is none. Schemas of this project
// name their failures for developers this way (see the package doc); the validator ignores
// the annotation, so a caller looks it up from the failing keyword's location.
func XReason(doc any, fragment string) string {
	node := doc
	for tok := range strings.SplitSeq(strings.TrimPrefix(fragment, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := node.(type) {
		case map[string]any:
			node = n[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return ""
			}
			node = n[i]
		default:
			return ""
		}
	}
	obj, _ := node.(map[string]any)
	r, _ := obj["x-reason"].(string)
	return r
}

// rules are the checks a schema cannot express: comparisons between members.
func (m *Manifest) rules() []httpx.FieldError {
	var out []httpx.FieldError
	w := m.Widget
	if w == nil {
		return nil
	}
	if w.MinSize != nil && w.MaxSize != nil && (w.MinSize.W > w.MaxSize.W || w.MinSize.H > w.MaxSize.H) {
		out = append(out, httpx.FieldError{Field: "/widget/min_size", Reason: "larger than max_size"})
	}
	for i, s := range w.Sizes {
		if (w.MinSize != nil && (s.W < w.MinSize.W || s.H < w.MinSize.H)) ||
			(w.MaxSize != nil && (s.W > w.MaxSize.W || s.H > w.MaxSize.H)) {
			out = append(out, httpx.FieldError{Field: fmt.Sprintf("/widget/sizes/%d", i), Reason: "outside min_size and max_size"})
		}
	}
	seen := map[string]bool{}
	for i, o := range w.Config {
		at := fmt.Sprintf("/widget/config/%d", i)
		if seen[o.Key] {
			out = append(out, httpx.FieldError{Field: at + "/key", Reason: "duplicate key"})
		}
		seen[o.Key] = true
		if o.Default == nil {
			continue
		}
		ok := true
		switch o.Type {
		case "string":
			_, ok = o.Default.(string)
		case "number":
			_, ok = o.Default.(float64)
		case "boolean":
			_, ok = o.Default.(bool)
		case "select":
			s, isString := o.Default.(string)
			ok = isString && slices.Contains(o.Options, s)
		}
		if !ok {
			out = append(out, httpx.FieldError{Field: at + "/default", Reason: "does not match the option's type"})
		}
	}
	return out
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escape(t))
	}
	return b.String()
}

func escape(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}
