package kafkace_test

import (
	"bytes"
	"maps"
	"net/url"
	"slices"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"
)

// canonical is an event as the binary mode sees it: each attribute and extension in its
// canonical string form, and the data bytes. Two events are equal for the binding when their
// canonical forms are equal.
type canonical struct {
	attrs map[string]string
	data  []byte
}

func canon(t testing.TB, e cloudevents.Event) canonical {
	t.Helper()
	c := canonical{attrs: map[string]string{
		"specversion": e.SpecVersion(),
		"id":          e.ID(),
		"source":      e.Source(),
		"type":        e.Type(),
	}, data: e.Data()}
	if s := e.Subject(); s != "" {
		c.attrs["subject"] = s
	}
	if s := e.DataContentType(); s != "" {
		c.attrs["datacontenttype"] = s
	}
	if s := e.DataSchema(); s != "" {
		c.attrs["dataschema"] = s
	}
	if tm := e.Time(); !tm.IsZero() {
		c.attrs["time"] = types.FormatTime(tm)
	}
	for name, v := range e.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			t.Fatalf("extension %q: %v", name, err)
		}
		c.attrs["ext:"+name] = s
	}
	return c
}

func assertEqualEvents(t testing.TB, want, got cloudevents.Event) {
	t.Helper()
	w, g := canon(t, want), canon(t, got)
	if !maps.Equal(w.attrs, g.attrs) {
		t.Errorf("attributes differ:\nwant %v\n got %v", w.attrs, g.attrs)
	}
	if !bytes.Equal(w.data, g.data) {
		t.Errorf("data differs:\nwant %q\n got %q", w.data, g.data)
	}
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func headerKeys(r *kgo.Record) []string {
	keys := make([]string, 0, len(r.Headers))
	for _, h := range r.Headers {
		keys = append(keys, h.Key)
	}
	slices.Sort(keys)
	return keys
}

// fullEvent has every context attribute and one extension of each CloudEvents type.
func fullEvent(t testing.TB) cloudevents.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID("8f0c3c1e-5b7d-4a7e-9d1e-2f6a1b0c9d8e")
	e.SetSource("/myscrollr/connect/install")
	e.SetType("com.myscrollr.connect.install.completed")
	e.SetSubject("integrations/weather")
	e.SetDataSchema("https://schemas.myscrollr.com/connect/install.completed.json")
	e.SetTime(time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.FixedZone("CET", 3600)))
	if err := e.SetData("application/json", map[string]any{"install_id": "i-1", "amount_cents": 499}); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"partitionkey": "0b7e6f1c-integration",
		"attempt":      int32(-42),
		"sampled":      true,
		"blob":         []byte{0, 1, 2, 0xff},
		"origin":       types.URI{URL: mustURL(t, "https://example.com/a?b=c")},
		"ref":          types.URIRef{URL: mustURL(t, "../relative/path")},
		"seen":         types.Timestamp{Time: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)},
	} {
		e.SetExtension(name, v)
	}
	return e
}
func mustURL(t testing.TB, s string) url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return *u
}
