package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/runtime"
)

func sampleEvent(t testing.TB, eventType string) cloudevents.Event {
	t.Helper()
	e := cloudevents.New()
	e.SetID("evt-1")
	e.SetSource("/connect/install")
	e.SetType(eventType)
	e.SetTime(time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC))
	e.SetExtension("partitionkey", "int-7")
	if err := e.SetData(cloudevents.ApplicationJSON, map[string]any{"install_id": "i-1"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// eventRequest encodes e with the SDK's own HTTP writer, in binary or structured mode.
func eventRequest(t testing.TB, url string, e cloudevents.Event, structured bool) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if structured {
		ctx = binding.WithForceStructured(ctx)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	return req
}

// recorder is an event handler whose behaviour depends on the event type.
type recorder struct {
	mu  sync.Mutex
	got []cloudevents.Event
}

func (rc *recorder) handle(ctx context.Context, e cloudevents.Event) error {
	rc.mu.Lock()
	rc.got = append(rc.got, e)
	rc.mu.Unlock()
	switch e.Type() {
	case "com.myscrollr.connect.test.permanent":
		return events.Permanent(errors.New("unknown integration int-7"))
	case "com.myscrollr.connect.test.retry":
		return errors.New("database unavailable")
	case "com.myscrollr.connect.test.panic":
		panic("handler bug")
	}
	return nil
}

func (rc *recorder) last() cloudevents.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[len(rc.got)-1]
}

func TestEventReplyCodes(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	b := setup(t, runtime.Function{Name: "notify", Events: rc.handle}, runtime.Deps{InsecureEvents: true})
	cases := []struct {
		eventType string
		status    int
	}{
		{"com.myscrollr.connect.install.completed", 200},
		{"com.myscrollr.connect.test.permanent", 400},
		{"com.myscrollr.connect.test.retry", 500},
		{"com.myscrollr.connect.test.panic", 500},
	}
	for _, mode := range []string{"binary", "structured"} {
		for _, tc := range cases {
			r := do(t, eventRequest(t, b.url, sampleEvent(t, tc.eventType), mode == "structured"))
			if r.status != tc.status {
				t.Fatalf("%s %s: status %d, want %d (%s)", mode, tc.eventType, r.status, tc.status, r.body)
			}
			if tc.status != 200 {
				p := r.problem(t)
				if tc.status == 500 && strings.Contains(string(r.body), "database unavailable") {
					t.Errorf("retry cause leaked: %v", p)
				}
				if tc.status == 400 && !strings.Contains(p["detail"].(string), "unknown integration") {
					t.Errorf("permanent reason missing from dead-letter reply: %v", p)
				}
			}
			got := rc.last()
			want := sampleEvent(t, tc.eventType)
			if got.ID() != want.ID() || got.Source() != want.Source() || got.Type() != tc.eventType ||
				!got.Time().Equal(want.Time()) || got.Extensions()["partitionkey"] != "int-7" ||
				got.DataContentType() != cloudevents.ApplicationJSON || !bytes.Equal(got.Data(), want.Data()) {
				t.Fatalf("%s: handler got %s\nwant %s", mode, got, want)
			}
		}
	}
	m := metricsText(t, b)
	for _, want := range []string{
		`connect_events_total{function="notify",outcome="ok",type="com.myscrollr.connect.install.completed"} 2`,
		`connect_events_total{function="notify",outcome="permanent",type="com.myscrollr.connect.test.permanent"} 2`,
		`connect_events_total{function="notify",outcome="retry",type="com.myscrollr.connect.test.retry"} 2`,
		`connect_events_total{function="notify",outcome="retry",type="com.myscrollr.connect.test.panic"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(b.logs.String(), "panic handling event") || !strings.Contains(b.logs.String(), "database unavailable") {
		t.Error("panic or retry cause not logged")
	}
}

func TestMalformedEvents(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	b := setup(t, runtime.Function{Name: "notify", Events: rc.handle}, runtime.Deps{MaxEventBytes: 512, InsecureEvents: true})
	binary := func(mutate func(h http.Header)) *http.Request {
		req := eventRequest(t, b.url, sampleEvent(t, "com.myscrollr.connect.install.completed"), false)
		mutate(req.Header)
		return req
	}
	structured := func(body string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, b.url+"/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		return req
	}
	cases := []struct {
		name   string
		req    *http.Request
		status int
		field  string
	}{
		{"not a cloudevent", func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, b.url+"/events", strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			return req
		}(), 400, "specversion"},
		{"missing id", binary(func(h http.Header) { h.Del("Ce-Id") }), 400, "id"},
		{"missing source and type", binary(func(h http.Header) { h.Del("Ce-Source"); h.Del("Ce-Type") }), 400, "source"},
		{"bad time", binary(func(h http.Header) { h.Set("Ce-Time", "yesterday") }), 400, "time"},
		{"old spec version", binary(func(h http.Header) { h.Set("Ce-Specversion", "0.3") }), 400, "specversion"},
		{"unknown spec version", binary(func(h http.Header) { h.Set("Ce-Specversion", "2.0") }), 400, "specversion"},
		{"bad extension name", binary(func(h http.Header) { h.Set("Ce-Bad_Name", "x") }), 400, "bad_name"},
		{"batch", func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, b.url+"/events", strings.NewReader(`[]`))
			req.Header.Set("Content-Type", "application/cloudevents-batch+json")
			return req
		}(), 400, "Content-Type"},
		{"structured malformed JSON", structured(`{"specversion":"1.0",`), 400, "body"},
		{"structured missing type", structured(`{"specversion":"1.0","id":"1","source":"/s"}`), 400, "type"},
		{"structured xml", func() *http.Request {
			r := structured(`<e/>`)
			r.Header.Set("Content-Type", "application/cloudevents+xml")
			return r
		}(), 400, "Content-Type"},
		{"oversized binary", func() *http.Request {
			req := binary(func(http.Header) {})
			req.Body = http.NoBody
			big := bytes.Repeat([]byte("x"), 600)
			req, _ = http.NewRequest(http.MethodPost, b.url+"/events", bytes.NewReader(big))
			for k, v := range binary(func(http.Header) {}).Header {
				req.Header[k] = v
			}
			return req
		}(), 413, ""},
		{"oversized structured, chunked", func() *http.Request {
			body := `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"` + strings.Repeat("x", 600) + `"}`
			req := structured(body)
			req.ContentLength = -1 // chunked: the limit is enforced while reading
			req.Body = struct {
				*strings.Reader
				closer
			}{strings.NewReader(body), closer{}}
			return req
		}(), 413, ""},
	}
	for _, tc := range cases {
		r := do(t, tc.req)
		if r.status != tc.status {
			t.Fatalf("%s: status %d, want %d (%s)", tc.name, r.status, tc.status, r.body)
		}
		p := r.problem(t)
		if tc.field != "" && !slices.Contains(fields(p), tc.field) {
			t.Fatalf("%s: problem fields %v do not name %q (%v)", tc.name, fields(p), tc.field, p)
		}
	}
	if len(rc.got) != 0 {
		t.Fatalf("handler called for malformed events: %v", rc.got)
	}
	req, _ := http.NewRequest(http.MethodGet, b.url+"/events", nil)
	if r := do(t, req); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET /events: %d", r.status)
	}
	if m := metricsText(t, b); !strings.Contains(m, `connect_events_total{function="notify",outcome="malformed",type="none"} 13`) {
		t.Errorf("malformed events not counted:\n%s", m)
	}
}

type closer struct{}

func (closer) Close() error { return nil }

// FuzzEvents sends arbitrary headers and bodies to /events: the reply is never a 5xx (the
// handler always succeeds), and every non-2xx reply is problem+json.
func FuzzEvents(f *testing.F) {
	f.Add("1.0", "id-1", "/src", "com.myscrollr.connect.x", "application/json", "ce-partitionkey", "k", []byte(`{"a":1}`))
	f.Add("", "", "", "", "application/cloudevents+json", "", "", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AA=="}`))
	f.Add("", "", "", "", "application/cloudevents+json", "", "", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"x"}`))
	f.Add("1.0", "1", "%%", "t", "text/plain", "ce-", "x", []byte("hello"))
	f.Add("0.3", "1", "/s", "t", "", "ce-time", "2020-13-45", []byte{})
	f.Add("", "", "", "", "application/cloudevents-batch+json", "ce-x", "", []byte(`[{}]`))
	f.Add("1.0", "1", "/s", "t", "application/json; charset=", "ce-Ünicode", "\x00", []byte{0xff})
	srv, err := runtime.NewHandler(runtime.Function{Name: "fuzz", Events: func(context.Context, cloudevents.Event) error { return nil }},
		runtime.Deps{Logger: discard(), MaxEventBytes: 4096, InsecureEvents: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, specversion, id, source, typ, contentType, extraKey, extraValue string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
		set := func(k, v string) {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		set("Ce-Specversion", specversion)
		set("Ce-Id", id)
		set("Ce-Source", source)
		set("Ce-Type", typ)
		set("Content-Type", contentType)
		if extraKey != "" {
			req.Header[http.CanonicalHeaderKey(extraKey)] = []string{extraValue}
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for headers %v body %q: %s", w.Code, req.Header, body, w.Body)
		}
		if w.Code >= 300 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d without problem+json", w.Code)
		}
	})
}
