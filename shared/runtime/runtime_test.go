package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/myscrollr/connect/shared/logging"
	"github.com/myscrollr/connect/shared/logging/logtest"
	"github.com/myscrollr/connect/shared/runtime"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperMain() // re-exec'd as a function binary by TestSIGTERMDrain; exits
	}
	goleak.VerifyTestMain(m)
}

// bundle is what setup returns besides the running server.
type bundle struct {
	url      string
	logs     *logtest.Buffer
	registry *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error // Serve's result
}

// setup serves fn on a real listener on 127.0.0.1 and stops it at the end of the test.
func setup(t *testing.T, fn runtime.Function, d runtime.Deps) *bundle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{url: "http://" + ln.Addr().String(), logs: &logtest.Buffer{}, done: make(chan error, 1)}
	if d.Logger == nil {
		d.Logger = logging.New(b.logs, fn.Name, slog.LevelDebug)
	}
	if d.Registry == nil {
		d.Registry = runtime.NewRegistry()
	}
	b.registry = d.Registry
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() { b.done <- runtime.Serve(ctx, ln, fn, d) }()
	t.Cleanup(func() {
		cancel()
		if err := <-b.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return b
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json (status %d, body %s)", ct, r.status, r.body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	if p["status"] != float64(r.status) {
		t.Fatalf("problem status %v != response status %d", p["status"], r.status)
	}
	return p
}

// fields returns the "field" of each entry of a problem's errors member.
func fields(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		f, _ := m["field"].(string)
		out = append(out, f)
	}
	return out
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func get(t *testing.T, url string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func metricsText(t *testing.T, b *bundle) string {
	t.Helper()
	r := get(t, b.url+"/metrics")
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	return string(r.body)
}

func TestReservedEndpoints(t *testing.T) {
	t.Parallel()
	var ready error
	var mu sync.Mutex
	b := setup(t, runtime.Function{Name: "catalog", Ready: func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return ready
	}}, runtime.Deps{})

	if r := get(t, b.url+"/healthz"); r.status != 200 {
		t.Fatalf("/healthz: %d", r.status)
	}
	if r := get(t, b.url+"/readyz"); r.status != 200 {
		t.Fatalf("/readyz: %d", r.status)
	}
	mu.Lock()
	ready = errors.New("db: connection refused")
	mu.Unlock()
	r := get(t, b.url+"/readyz")
	if r.status != 503 || strings.Contains(string(r.body), "refused") {
		t.Fatalf("/readyz with failing check: %d %s", r.status, r.body)
	}
	r.problem(t)
	if !strings.Contains(b.logs.String(), "connection refused") {
		t.Error("readiness failure cause not logged")
	}

	req, _ := http.NewRequest(http.MethodPost, b.url+"/healthz", nil)
	r = do(t, req)
	if r.status != 405 || r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /healthz: %d Allow=%q", r.status, r.header.Get("Allow"))
	}
	r.problem(t)

	// No HTTP handler: everything else is a 404 problem; /events without an event handler too.
	r = get(t, b.url+"/v1/nothing")
	if r.status != 404 {
		t.Fatalf("unknown path: %d", r.status)
	}
	r.problem(t)

	m := metricsText(t, b)
	for _, want := range []string{
		`connect_http_requests_total{code="200",function="catalog",method="GET",route="/healthz"} 1`,
		`connect_http_requests_total{code="503",function="catalog",method="GET",route="/readyz"} 1`,
		`connect_http_requests_total{code="405",function="catalog",method="POST",route="/healthz"} 1`,
		`connect_http_request_duration_seconds_bucket{function="catalog",method="GET",route="/readyz"`,
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestHTTPHandlerStack(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		logging.From(r.Context()).Info("in handler")
		_, _ = io.WriteString(w, r.PathValue("id"))
	})
	mux.HandleFunc("GET /v1/panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	b := setup(t, runtime.Function{Name: "catalog", HTTP: mux}, runtime.Deps{})

	req, _ := http.NewRequest(http.MethodGet, b.url+"/v1/items/42", nil)
	req.Header.Set("X-Request-Id", "req-abc.1")
	r := do(t, req)
	if r.status != 200 || string(r.body) != "42" || r.header.Get("X-Request-Id") != "req-abc.1" {
		t.Fatalf("got %d %q id=%q", r.status, r.body, r.header.Get("X-Request-Id"))
	}
	// The handler's logger carries request id, method and path.
	var sawHandlerLine bool
	for _, line := range strings.Split(b.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"in handler"`) {
			sawHandlerLine = strings.Contains(line, `"request_id":"req-abc.1"`) && strings.Contains(line, `"path":"/v1/items/42"`) &&
				strings.Contains(line, `"function":"catalog"`)
		}
	}
	if !sawHandlerLine {
		t.Errorf("handler log line lacks request attributes:\n%s", b.logs.String())
	}

	req, _ = http.NewRequest(http.MethodGet, b.url+"/v1/items/1", nil)
	req.Header.Set("X-Request-Id", "bad id\twith spaces")
	if r := do(t, req); r.header.Get("X-Request-Id") == "" || strings.Contains(r.header.Get("X-Request-Id"), " ") {
		t.Fatalf("request id not replaced: %q", r.header.Get("X-Request-Id"))
	}

	r = get(t, b.url+"/v1/unknown")
	if r.status != 404 {
		t.Fatalf("unknown path: %d %s", r.status, r.body)
	}
	r.problem(t)
	req, _ = http.NewRequest(http.MethodDelete, b.url+"/v1/items/1", nil)
	r = do(t, req)
	if r.status != 405 || !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Fatalf("DELETE: %d Allow=%q", r.status, r.header.Get("Allow"))
	}
	r.problem(t)

	r = get(t, b.url+"/v1/panic")
	if r.status != 500 {
		t.Fatalf("panic: %d", r.status)
	}
	if p := r.problem(t); p["detail"] != "internal error" {
		t.Fatalf("panic problem: %v", p)
	}
	if r := get(t, b.url+"/v1/items/7"); r.status != 200 {
		t.Fatalf("after panic: %d", r.status)
	}
	if !strings.Contains(b.logs.String(), "panic serving request") {
		t.Error("panic not logged")
	}
	m := metricsText(t, b)
	for _, want := range []string{
		`connect_http_requests_total{code="200",function="catalog",method="GET",route="GET /v1/items/{id}"} 3`,
		`connect_http_requests_total{code="500",function="catalog",method="GET",route="GET /v1/panic"} 1`,
		`connect_http_requests_total{code="404",function="catalog",method="GET",route="other"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := runtime.ConfigFromEnv(env(nil))
	if err != nil || c.Port != 8080 || c.DrainQuiet.String() != "30s" || c.Lambda {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = runtime.ConfigFromEnv(env(map[string]string{"PORT": "9000", "DRAIN_TIMEOUT": "10ms", "LOG_LEVEL": "debug", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}))
	if err != nil || c.Port != 9000 || c.DrainQuiet.String() != "10ms" || c.LogLevel != slog.LevelDebug || !c.Lambda {
		t.Fatalf("set: %+v %v", c, err)
	}
	for k, v := range map[string]string{"PORT": "http", "DRAIN_TIMEOUT": "5", "LOG_LEVEL": "chatty", "MAX_EVENT_BYTES": "-1", "SHUTDOWN_TIMEOUT": "-1s"} {
		if _, err := runtime.ConfigFromEnv(env(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: error %v should name the variable", k, v, err)
		}
	}
}
