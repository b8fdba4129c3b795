package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/shared/ssrf"
)

// Check names (Result.Name), stable across versions.
const (
	CheckSchema         = "schema"
	CheckBaseURL        = "base_url"
	CheckHealth         = "health"
	CheckPullSchema     = "pull_schema"
	CheckPullData       = "pull_data"
	CheckPushSchema     = "push_schema"
	CheckWidgetManifest = "widget_manifest"
	CheckWidgetBundle   = "widget_bundle"
	CheckLifecycle      = "lifecycle"
	CheckMixedContent   = "mixed_content"
)

// Required says which checks must pass before a version is published. push_schema is the
// only informative one: a push source need not serve GET /schema.
var Required = map[string]bool{
	CheckSchema: true, CheckBaseURL: true, CheckHealth: true,
	CheckPullSchema: true, CheckPullData: true, CheckPushSchema: false,
	CheckWidgetManifest: true, CheckWidgetBundle: true, CheckLifecycle: true,
	CheckMixedContent: true,
}

// Defaults for the zero fields of Options.
const (
	DefaultHealthThreshold  = 2 * time.Second
	DefaultCallTimeout      = 10 * time.Second
	DefaultMaxDocumentBytes = 1 << 20 // GET /schema, /data, /manifest
	DefaultMaxBundleBytes   = 2 << 20 // GET /bundle
)

// maxReason bounds a Result's reason (the registry's column holds 1000 bytes).
const maxReason = 500

// Options configure Run. The zero value is the production setting.
type Options struct {
	// HealthThreshold is the response time benchmark: GET /health must answer within it
	// (default 2s, the health probe's degraded threshold).
	HealthThreshold time.Duration
	// AllowLoopbackHTTP accepts http on 127.0.0.1 wherever https is required (base_url, the
	// bundle, the links of the mixed-content scan), for the local runtime (make dev) and
	// tests. The client must also allow 127.0.0.1 (ssrf.Config.Allow) to reach it.
	AllowLoopbackHTTP bool
	// CallTimeout bounds each call to the integration, body included (default 10s). Run as
	// a whole is bounded by its ctx too.
	CallTimeout time.Duration
	// MaxDocumentBytes bounds the body of GET /schema, /data and /manifest (default 1 MiB).
	MaxDocumentBytes int64
	// MaxBundleBytes bounds the widget bundle (default 2 MiB).
	MaxBundleBytes int64
	// Now is the clock response times are measured with (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.HealthThreshold <= 0 {
		o.HealthThreshold = DefaultHealthThreshold
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.MaxDocumentBytes <= 0 {
		o.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if o.MaxBundleBytes <= 0 {
		o.MaxBundleBytes = DefaultMaxBundleBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// run is one Run: the integration under check and how to reach it.
type run struct {
	ctx    context.Context
	client *ssrf.Client
	m      *manifest.Manifest
	opts   Options
	base   *url.URL // nil when base_url failed: nothing is called
}

// Run checks the integration m describes, calling it through client (never directly), and
// returns one Result per check that applies to its type, in a fixed order: schema, base_url,
// health, the type's checks, mixed_content. It does not fail: a check that cannot be done is
// a failed Result with its reason. Calls run concurrently where independent; each is bounded
// by Options.CallTimeout and all by ctx.
func Run(ctx context.Context, client *ssrf.Client, m *manifest.Manifest, opts Options) []Result {
	r := &run{ctx: ctx, client: client, m: m, opts: opts.withDefaults()}
	out := []Result{r.schema()}
	if m == nil {
		return out
	}
	baseURL := r.baseURL()
	out = append(out, baseURL)

	var (
		wg         sync.WaitGroup
		health     Result
		typed      []Result
		widgetDoc  any
		widgetSeen bool
	)
	wg.Go(func() { health = r.health() })
	wg.Go(func() {
		switch m.Type {
		case manifest.TypeDataSource:
			if m.EffectiveDeliveryMode() == manifest.DeliveryPush {
				typed = []Result{r.pushSchema()}
				return
			}
			typed = r.pull()
		case manifest.TypeWidget:
			typed, widgetDoc, widgetSeen = r.widget()
		case manifest.TypeApp:
			typed = []Result{r.lifecycle()}
		}
	})
	wg.Wait()
	out = append(out, health)
	out = append(out, typed...)
	return append(out, r.mixedContent(widgetDoc, widgetSeen))
}

// result builds a Result, its reason cleaned and bounded.
func result(name string, passed bool, reason string, elapsed *time.Duration) Result {
	res := Result{Name: name, Required: Required[name], Passed: passed, Reason: records.Clean(reason, maxReason)}
	if elapsed != nil {
		ms := elapsed.Milliseconds()
		res.ResponseTimeMS = &ms
	}
	return res
}

func pass(name, reason string) Result { return result(name, true, reason, nil) }
func fail(name, reason string) Result { return result(name, false, reason, nil) }

// notCalled is the result of a check that calls the integration when base_url failed.
func notCalled(name string) Result {
	return fail(name, "not called: base_url failed its check")
}

// schema re-validates the manifest: the registry validated it already, and this check shows
// the developer that it did.
func (r *run) schema() Result {
	if r.m == nil {
		return fail(CheckSchema, "no manifest")
	}
	raw, err := json.Marshal(r.m)
	if err != nil {
		return fail(CheckSchema, "manifest does not encode")
	}
	fields, err := manifest.Validate(raw, manifest.Options{AllowLoopbackHTTP: r.opts.AllowLoopbackHTTP})
	switch {
	case err != nil:
		return fail(CheckSchema, "manifest contract unavailable")
	case len(fields) > 0:
		return fail(CheckSchema, fmt.Sprintf("%d problems, first %q: %s", len(fields), fields[0].Field, fields[0].Reason))
	}
	return pass(CheckSchema, "valid per schemas/json/manifest.json")
}

// baseURL checks base_url by the SSRF rules without calling it, and requires https (or http
// on 127.0.0.1 with AllowLoopbackHTTP). On success it sets r.base, which the calling checks
// need.
func (r *run) baseURL() Result {
	u, err := url.Parse(r.m.BaseURL)
	if err != nil || u.Host == "" {
		return fail(CheckBaseURL, "not an absolute URL")
	}
	if r.loopbackHTTP(u) {
		r.base = u
		return pass(CheckBaseURL, "http on 127.0.0.1 (local runtime)")
	}
	if err := r.client.CheckURL(u); err != nil {
		return fail(CheckBaseURL, describe(err, r.opts))
	}
	if u.Scheme != "https" {
		return fail(CheckBaseURL, "must be https")
	}
	r.base = u
	return pass(CheckBaseURL, "https, allowed by the SSRF rules")
}

// loopbackHTTP says whether u is http on 127.0.0.1 and Options allow it.
func (r *run) loopbackHTTP(u *url.URL) bool {
	return r.opts.AllowLoopbackHTTP && u.Scheme == "http" && u.Hostname() == "127.0.0.1" && u.User == nil
}
