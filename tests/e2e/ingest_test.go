package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/infra/local/demo"
	"github.com/myscrollr/connect/shared/idp"
)

// The demo push source pushes one record over HTTP (a structured CloudEvent with its
// integration client's data:write token) and produces another to its own Kafka topic
// (integrations.league-scores.data, read by its KafkaSource); both reach connect.data as
// data.received, validated against the stream's schema from its manifest and stored. Another
// integration's token, and a record off the schema, are refused.
func TestPushIngestEndToEnd(t *testing.T) {
	cfg := testConfig(t, "relay", "ingest")
	cfg.Demo = true
	s := startStack(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	byName := map[string]demo.Integration{}
	for _, in := range s.DemoIntegrations() {
		byName[in.Name] = in
	}
	push, pull := byName["league-scores"], byName["crypto-ticker"]
	if push.ClientID == "" || pull.ClientID == "" {
		t.Fatalf("demo integrations without integration clients: %+v", s.DemoIntegrations())
	}

	// Everything on connect.data from the start.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumeTopics(events.TopicData),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	score := func(id string, home int) map[string]any {
		return map[string]any{"match_id": id, "home": "Lions", "away": "Tigers", "home_score": home, "away_score": 1, "minute": 63}
	}
	pushed := map[string]any{"specversion": "1.0", "id": "e2e-http-1", "source": "/league-scores/feed",
		"type": "com.myscrollr.connect.record.pushed", "subject": "scores", "datacontenttype": "application/json",
		"data": score("m-http", 2)}
	client := &http.Client{Timeout: 30 * time.Second, Transport: apiTransport(t)}
	post := func(token string, body any) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/ingest", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	user, err := s.Identity().Mint(idp.TokenRequest{Subject: "u_e2e_pusher", Audience: s.APIResource, Scopes: []string{"dashboard:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := post(user, pushed); code != http.StatusForbidden {
		t.Fatalf("a user's token pushing = %d %s, want 403", code, body)
	}
	if code, body := post("", pushed); code != http.StatusUnauthorized {
		t.Fatalf("pushing without a token = %d %s, want 401", code, body)
	}
	if code, body := post(clientToken(t, s, pull.ClientID, pull.ClientSecret), pushed); code != http.StatusForbidden {
		t.Fatalf("a pull source's token pushing = %d %s, want 403", code, body)
	}
	token := clientToken(t, s, push.ClientID, push.ClientSecret)
	bad := map[string]any{"specversion": "1.0", "id": "e2e-http-bad", "source": "/league-scores/feed",
		"type": "com.myscrollr.connect.record.pushed", "subject": "scores", "data": map[string]any{"match_id": "m-bad", "home_score": -1}}
	if code, body := post(token, bad); code != http.StatusMultiStatus || !strings.Contains(string(body), "refused") {
		t.Fatalf("a record off the schema = %d %s, want 207 with it refused", code, body)
	}
	if code, body := post(token, pushed); code != http.StatusOK || !strings.Contains(string(body), "stored") {
		t.Fatalf("POST /v1/ingest = %d %s", code, body)
	}

	// The Kafka path: a binary-mode CloudEvent on the integration's own topic.
	e := cloudevents.NewEvent()
	e.SetID("e2e-kafka-1")
	e.SetSource("/league-scores/feed")
	e.SetType("com.myscrollr.connect.record.pushed")
	e.SetSubject("scores")
	if err := e.SetData(cloudevents.ApplicationJSON, score("m-kafka", 3)); err != nil {
		t.Fatal(err)
	}
	rec, err := kafkace.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	rec.Topic = events.DataTopic("league-scores")
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{"m-http": false, "m-kafka": false}
	for !want["m-http"] || !want["m-kafka"] {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("connect.data never carried both records: %v", want)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			ev, err := kafkace.Decode(r)
			if err != nil || ev.Type() != events.TypeDataReceived {
				return
			}
			var d events.DataReceived
			if err := json.Unmarshal(ev.Data(), &d); err != nil || d.Name != "league-scores" {
				return
			}
			for _, item := range d.Records {
				if _, ok := want[item.Key]; ok && item.Stream == "scores" {
					want[item.Key] = true
				}
				if item.Key == "m-bad" {
					t.Errorf("the refused record reached connect.data: %s", item.Data)
				}
			}
		})
	}
}
