package demo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/myscrollr/connect/events/webhook"
)

// The demo app verifies deliveries with only the published keys (fetched from the keys URL,
// refetched when a rotation brings a key it does not know), dedupes by webhook-id, and shows
// what it accepted at GET /lifecycle/received.
func TestLifecycleVerifiesWithPublishedKeys(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	key := func(id string, b byte) webhook.PrivateKey {
		k, err := webhook.ParsePrivateKeys(id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		return k[0]
	}
	k1, k2, stranger := key("k1", 1), key("k2", 2), key("x", 3)
	var published atomic.Value
	published.Store([]webhook.PrivateKey{k1})
	fetches := new(atomic.Int32)
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		b, _ := json.Marshal(webhook.NewKeySet(published.Load().([]webhook.PrivateKey), nil))
		w.Write(b)
	}))
	defer keys.Close()

	s, err := Start(slog.New(slog.DiscardHandler), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var app Integration
	for _, in := range s.Integrations {
		if in.Type == "app" {
			app = in
		}
	}
	post := func(path, id string, ts time.Time, body string, signers ...webhook.PrivateKey) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, app.BaseURL+path, strings.NewReader(body))
		if err := webhook.SetHeaders(req.Header, id, ts, []byte(body), signers); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	install := `{"specversion":"1.0","id":"e1","type":"com.myscrollr.connect.lifecycle.install","source":"/myscrollr/connect/notify","data":{}}`

	// No keys URL yet: nothing can be verified.
	if status := post("/lifecycle/install", "e1", now, install, k1); status != 401 {
		t.Fatalf("before the keys URL: %d", status)
	}
	s.SetLifecycleKeysURL(keys.URL)
	for _, rc := range s.receivers {
		rc.refetch = 0 // the test's rotation need not wait
	}
	steps := []struct {
		name   string
		want   int
		status func() int
	}{
		{"signed", 204, func() int { return post("/lifecycle/install", "e1", now, install, k1) }},
		{"again, same webhook-id", 204, func() int { return post("/lifecycle/install", "e1", now, install, k1) }},
		{"tampered body", 401, func() int {
			req, _ := http.NewRequest(http.MethodPost, app.BaseURL+"/lifecycle/install", strings.NewReader(install+" "))
			_ = webhook.SetHeaders(req.Header, "e2", now, []byte(install), []webhook.PrivateKey{k1})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}},
		{"301 s old", 401, func() int { return post("/lifecycle/install", "e3", now.Add(-301*time.Second), install, k1) }},
		{"untrusted key", 401, func() int { return post("/lifecycle/install", "e4", now, install, stranger) }},
		{"rotation: signed by a key published since", 204, func() int {
			published.Store([]webhook.PrivateKey{k2, k1})
			return post("/lifecycle/uninstall", "e5", now, install, k2)
		}},
	}
	for _, st := range steps {
		if got := st.status(); got != st.want {
			t.Errorf("%s: %d, want %d", st.name, got, st.want)
		}
	}
	resp, err := http.Get(app.BaseURL + "/lifecycle/received")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Received []Received }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Received) != 2 {
		t.Fatalf("received %+v, want e1 and e5", got.Received)
	}
	e1, e5 := got.Received[0], got.Received[1]
	if e1.WebhookID != "e1" || e1.Deliveries != 2 || e1.KeyID != "k1" || e1.Path != "/lifecycle/install" ||
		e1.Type != "com.myscrollr.connect.lifecycle.install" || string(e1.Event) != install {
		t.Errorf("e1 %+v", e1)
	}
	if e5.WebhookID != "e5" || e5.KeyID != "k2" || e5.Deliveries != 1 {
		t.Errorf("e5 %+v", e5)
	}
	if n := fetches.Load(); n < 2 {
		t.Errorf("%d key set fetches, want a refetch for the rotation", n)
	}
}
