package conformance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/conformance/health"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/records"
)

// health calls GET /health and judges it by the health contract (package health, as the
// health probe does); it passes when the answer is 2xx, healthy, and within the threshold.
func (r *run) health() Result {
	if r.base == nil {
		return notCalled(CheckHealth)
	}
	a, reason, d := r.call(http.MethodGet, health.Path,
		http.Header{"Accept": {"application/health+json, application/json"}}, nil, health.MaxBodyBytes)
	if reason != "" {
		return result(CheckHealth, false, reason, d)
	}
	if !ok2xx(a.status) {
		return result(CheckHealth, false, fmt.Sprintf("GET /health: HTTP status %d", a.status), d)
	}
	status, why := health.Judge(a.body)
	if status != events.HealthHealthy {
		return result(CheckHealth, false, "GET /health: "+why, d)
	}
	if a.elapsed > r.opts.HealthThreshold {
		return result(CheckHealth, false, fmt.Sprintf("GET /health: slow: answered in %s (over %s)",
			a.elapsed.Round(time.Millisecond), r.opts.HealthThreshold), d)
	}
	return result(CheckHealth, true, fmt.Sprintf("answered in %s", a.elapsed.Round(time.Millisecond)), d)
}

// pull checks a pull source: GET /schema by the pull-schema contract (and naming every stream
// the manifest declares), then GET /data by the pull-data contract with every record valid
// against its stream's schema. Both go through shared/records, as the poller does.
func (r *run) pull() []Result {
	if r.base == nil {
		return []Result{notCalled(CheckPullSchema), notCalled(CheckPullData)}
	}
	sch, schemaResult := r.pullSchema(CheckPullSchema)
	if sch == nil {
		return []Result{schemaResult, fail(CheckPullData, "not checked: GET /schema failed")}
	}
	// A usable GET /schema that misses a stream of the manifest failed, but /data can still
	// be checked against it.
	return []Result{schemaResult, r.pullData(sch)}
}

// pullSchema fetches and parses GET /schema. sch is nil when the document is unusable.
func (r *run) pullSchema(name string) (*records.PullSchema, Result) {
	a, reason, d := r.call(http.MethodGet, "schema", http.Header{"Accept": {"application/json"}}, nil,
		min(r.opts.MaxDocumentBytes, records.MaxPullSchemaBytes))
	if reason != "" {
		return nil, result(name, false, reason, d)
	}
	if !ok2xx(a.status) {
		return nil, result(name, false, fmt.Sprintf("GET /schema: HTTP status %d", a.status), d)
	}
	sch, err := records.ParsePullSchema(a.body)
	if err != nil {
		return nil, result(name, false, "GET /schema: "+documentReason(err), d)
	}
	names := make([]string, 0, len(sch.Streams))
	for _, s := range sch.Streams {
		names = append(names, s.Name)
	}
	if ds := r.m.DataSource; ds != nil {
		for i, s := range ds.Streams {
			if sch.Stream(s.Name) == nil {
				return sch, result(name, false, fmt.Sprintf("GET /schema: no stream %q, which the manifest declares at /data_source/streams/%d", s.Name, i), d)
			}
		}
	}
	return sch, result(name, true, "streams: "+strings.Join(names, ", "), d)
}

// pullData fetches GET /data and checks every record against the streams of sch.
func (r *run) pullData(sch *records.PullSchema) Result {
	a, reason, d := r.call(http.MethodGet, "data", http.Header{"Accept": {"application/json"}}, nil, r.opts.MaxDocumentBytes)
	if reason != "" {
		return result(CheckPullData, false, reason, d)
	}
	if !ok2xx(a.status) {
		return result(CheckPullData, false, fmt.Sprintf("GET /data: HTTP status %d", a.status), d)
	}
	items, err := records.ParsePullData(a.body, int(r.opts.MaxDocumentBytes))
	if err != nil {
		return result(CheckPullData, false, "GET /data: "+documentReason(err), d)
	}
	src := records.Source{Name: r.m.Name, DeliveryMode: events.DeliveryPull}
	good, bad, err := records.CheckPull(r.ctx, src, sch, items, records.Identity{})
	if err != nil {
		return result(CheckPullData, false, "GET /data: records could not be checked", d)
	}
	if len(bad) > 0 {
		first := bad[0]
		var ps []string
		for _, p := range first.Problems {
			ps = append(ps, p.String())
		}
		idx := slices.IndexFunc(items, func(it records.PullItem) bool { return string(it.Raw) == first.Sample })
		msg := fmt.Sprintf("GET /data does not match GET /schema: %d of %d records refused; /records/%d: %s",
			len(bad), len(items), idx, strings.Join(ps, "; "))
		return result(CheckPullData, false, msg, d)
	}
	if len(good) == 0 {
		return result(CheckPullData, true, "no records (nothing to check against GET /schema)", d)
	}
	return result(CheckPullData, true, fmt.Sprintf("%d records valid against GET /schema", len(good)), d)
}

// documentReason is a refused document's problems without the Go error's prefix.
func documentReason(err error) string {
	var de *records.DocumentError
	if errors.As(err, &de) {
		return err.Error()
	}
	return "could not be checked"
}

// pushSchema is informative: a push source may serve GET /schema (the same contract as a pull
// source's) to declare its streams; when it does, the document must be valid. Not serving it
// (404) passes.
func (r *run) pushSchema() Result {
	if r.base == nil {
		return notCalled(CheckPushSchema)
	}
	a, reason, d := r.call(http.MethodGet, "schema", http.Header{"Accept": {"application/json"}}, nil,
		min(r.opts.MaxDocumentBytes, records.MaxPullSchemaBytes))
	switch {
	case reason != "":
		return result(CheckPushSchema, false, reason, d)
	case a.status == http.StatusNotFound:
		return result(CheckPushSchema, true, "GET /schema not served (optional for push sources)", d)
	case !ok2xx(a.status):
		return result(CheckPushSchema, false, fmt.Sprintf("GET /schema: HTTP status %d", a.status), d)
	}
	if _, err := records.ParsePullSchema(a.body); err != nil {
		return result(CheckPushSchema, false, "GET /schema: "+documentReason(err), d)
	}
	return result(CheckPushSchema, true, "GET /schema valid", d)
}

// Lifecycle test deliveries: an unsigned POST that an app answers like a real delivery.
const (
	LifecycleTestType = "com.myscrollr.connect.lifecycle.test"
	lifecycleBodyMax  = 4 << 10
)

// lifecycleAccepted are the answers that show a lifecycle endpoint exists and handles
// deliveries: 2xx (it took the delivery), 400, 401 or 403 (it refused it for lacking a valid
// signature, as an app verifying Standard Webhooks signatures must).
func lifecycleAccepted(status int) bool {
	return ok2xx(status) || status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
}

// lifecycle sends a test delivery to POST /lifecycle/install and /lifecycle/uninstall, unless
// the app takes lifecycle events over Kafka.
func (r *run) lifecycle() Result {
	if r.m.App != nil && r.m.App.Lifecycle == manifest.LifecycleKafka {
		return pass(CheckLifecycle, "lifecycle over Kafka: no endpoints to call")
	}
	if r.base == nil {
		return notCalled(CheckLifecycle)
	}
	type outcome struct {
		status int
		reason string
		d      *time.Duration
	}
	var wg sync.WaitGroup
	paths := []string{"lifecycle/install", "lifecycle/uninstall"}
	outs := make([]outcome, len(paths))
	for i, p := range paths {
		wg.Go(func() {
			id := make([]byte, 12)
			_, _ = rand.Read(id)
			msgID := "msg_check_" + hex.EncodeToString(id)
			body := fmt.Sprintf(`{"type":%q,"id":%q,"test":true,"data":{}}`, LifecycleTestType, msgID)
			h := http.Header{
				"Content-Type":      {"application/json"},
				"Webhook-Id":        {msgID},
				"Webhook-Timestamp": {strconv.FormatInt(r.opts.Now().Unix(), 10)},
			}
			a, reason, d := r.call(http.MethodPost, p, h, []byte(body), lifecycleBodyMax)
			outs[i] = outcome{status: a.status, reason: reason, d: d}
		})
	}
	wg.Wait()
	var slowest *time.Duration
	for _, o := range outs {
		if o.d != nil && (slowest == nil || *o.d > *slowest) {
			slowest = o.d
		}
	}
	var seen []string
	for i, o := range outs {
		switch {
		case o.reason != "":
			return result(CheckLifecycle, false, o.reason, slowest)
		case !lifecycleAccepted(o.status):
			return result(CheckLifecycle, false, fmt.Sprintf("POST /%s: HTTP status %d (want 2xx, or 400, 401 or 403 for an unsigned test delivery)", paths[i], o.status), slowest)
		}
		seen = append(seen, fmt.Sprintf("/%s %d", paths[i], o.status))
	}
	reason := "unsigned test delivery: " + strings.Join(seen, ", ")
	if ok2xx(outs[0].status) || ok2xx(outs[1].status) {
		reason += " (accepted without a signature: verify webhook-signature)"
	}
	return result(CheckLifecycle, true, reason, slowest)
}
