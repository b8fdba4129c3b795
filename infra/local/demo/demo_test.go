package demo

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// Every demo integration answers its health check and lifecycle callbacks, and the pull source
// serves records that its own schema describes.
func TestDemoIntegrationsAnswer(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s, err := Start(slog.New(slog.DiscardHandler), func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if len(s.Integrations) != 4 {
		t.Fatalf("%d demo integrations, want 4", len(s.Integrations))
	}
	types := map[string]bool{}
	for _, in := range s.Integrations {
		types[in.Type+"/"+in.DeliveryMode] = true
		resp, err := http.Get(in.BaseURL + "/health")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /health: %v %v", in.Name, resp, err)
		}
		resp.Body.Close()
		resp, err = http.Post(in.BaseURL+"/lifecycle/install", "application/json", nil)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s /lifecycle/install: %v %v", in.Name, resp, err)
		}
		resp.Body.Close()
	}
	for _, want := range []string{"data_source/pull", "data_source/push", "widget/", "app/"} {
		if !types[want] {
			t.Errorf("no demo integration of kind %s", want)
		}
	}
	resp, err := http.Get(s.Integrations[0].BaseURL + "/data")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Records []struct {
			Symbol     string `json:"symbol"`
			PriceCents int64  `json:"price_cents"`
			Currency   string `json:"currency"`
			At         string `json:"at"`
		} `json:"records"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Records) != 3 {
		t.Fatalf("data = %+v, %v", body, err)
	}
	for _, r := range body.Records {
		if r.PriceCents <= 0 || r.Currency != "usd" || r.At != "2026-11-25T12:00:00Z" {
			t.Errorf("record %+v", r)
		}
	}
}
