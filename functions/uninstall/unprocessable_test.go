package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/myscrollr/connect/events"
)

// rawEvent is an event as it may arrive: attributes and data bytes exactly as sent.
type rawEvent struct {
	id, source string
	data       string
}

const aliceData = `{"user_id":"alice","deleted_at":"2026-09-01T12:00:00Z"}`

func (r rawEvent) event() event.Event {
	e := event.New()
	e.SetID(r.id)
	e.SetSource(r.source)
	e.SetType(events.TypeUserDeleted)
	e.SetDataContentType(events.DataContentType)
	e.DataEncoded = []byte(r.data)
	return e
}

// postBinary delivers r in binary content mode (attributes in ce- headers, as Knative does).
func postBinary(t *testing.T, srv *httptest.Server, r rawEvent) int {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL+"/events", strings.NewReader(r.data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", r.id)
	req.Header.Set("Ce-Source", r.source)
	req.Header.Set("Ce-Type", events.TypeUserDeleted)
	req.Header.Set("Content-Type", events.DataContentType)
	return do(t, srv, req)
}

// postStructured delivers r in structured content mode, where attributes are JSON strings and
// may carry bytes (NUL) that no header can.
func postStructured(t *testing.T, srv *httptest.Server, r rawEvent) int {
	t.Helper()
	body, err := json.Marshal(map[string]any{"specversion": "1.0", "id": r.id, "source": r.source,
		"type": events.TypeUserDeleted, "datacontenttype": events.DataContentType, "data": json.RawMessage(r.data)})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", srv.URL+"/events", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	return do(t, srv, req)
}

func do(t *testing.T, srv *httptest.Server, req *http.Request) int {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Events that no redelivery could ever process are permanent: answered 400 (dead-lettered
// after one attempt, not retried), and nothing changes, not even at Logto. Most of them name
// alice, who has installs, reviews and grants, so one processed by mistake would show.
func TestUnprocessableEventsArePermanentAndChangeNothing(t *testing.T) {
	b := setupUninstall(t)
	b.seed(t)
	before := b.snapshot(t)
	grantsBefore := b.grantApps(t, "alice")
	src := events.Source("logto-webhook")

	binary := map[string]rawEvent{
		"user_id with invalid UTF-8": {"e-10", src, "{\"user_id\":\"ali\xffce\",\"deleted_at\":\"2026-09-01T12:00:00Z\"}"},
		"data with invalid UTF-8":    {"e-11", src, "{\"user_id\":\"alice\",\"deleted_at\":\"2026-09-01T12:00:00Z\",\"x\":\"\xfe\"}"},
		"unknown field":              {"e-12", src, `{"user_id":"alice","deleted_at":"2026-09-01T12:00:00Z","purge":true}`},
		"deleted_at not a time":      {"e-13", src, `{"user_id":"alice","deleted_at":"yesterday"}`},
		"no deleted_at":              {"e-14", src, `{"user_id":"alice"}`},
		"data null":                  {"e-15", src, `null`},
		"data an array":              {"e-16", src, `["alice"]`},
		"data not JSON":              {"e-17", src, `user_id=alice`},
		"user_id too long":           {"e-18", src, `{"user_id":"` + strings.Repeat("a", 129) + `","deleted_at":"2026-09-01T12:00:00Z"}`},
		"id with invalid UTF-8":      {"e-\xff", src, aliceData},
		"id too long":                {strings.Repeat("e", 300), src, aliceData},
		"source too long":            {"e-20", "/" + strings.Repeat("s", 2000), aliceData},
	}
	// (A source is a URI reference, which the SDK percent-encodes: invalid UTF-8 in it becomes
	// valid text, and NUL makes it unparsable.)
	structured := map[string]rawEvent{
		"user_id with NUL": {"e-21", src, `{"user_id":"ali\u0000ce","deleted_at":"2026-09-01T12:00:00Z"}`},
		"id with NUL":      {"e-\x0022", src, aliceData},
		"source with NUL":  {"e-23", src + "\x00", aliceData},
	}
	for name, r := range binary {
		t.Run("binary/"+name, func(t *testing.T) {
			if err := b.svc.HandleEvent(context.Background(), r.event()); !events.IsPermanent(err) {
				t.Fatalf("HandleEvent = %v, want a permanent error", err)
			}
			if status := postBinary(t, b.events, r); status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400 (dead letter, no retry)", status)
			}
		})
	}
	for name, r := range structured {
		t.Run("structured/"+name, func(t *testing.T) {
			if err := b.svc.HandleEvent(context.Background(), r.event()); !events.IsPermanent(err) {
				t.Fatalf("HandleEvent = %v, want a permanent error", err)
			}
			if status := postStructured(t, b.events, r); status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400 (dead letter, no retry)", status)
			}
		})
	}
	if after := b.snapshot(t); !reflect.DeepEqual(after, before) {
		t.Fatalf("rows changed: %+v -> %+v", before, after)
	}
	if got := b.grantApps(t, "alice"); !reflect.DeepEqual(got, grantsBefore) {
		t.Fatalf("alice's grants %v -> %v", grantsBefore, got)
	}

	// The same data, well-formed, is processed: the refusals above were not for want of a
	// working function.
	if status := postBinary(t, b.events, rawEvent{"e-ok", src, aliceData}); status != http.StatusOK {
		t.Fatalf("valid event: status %d", status)
	}
	if s := b.snapshot(t); s.Installs != before.Installs-2 || s.Processed != 1 {
		t.Fatalf("valid event: %+v", s)
	}
}
