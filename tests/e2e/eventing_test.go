package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/shared/outbox"
)

// An event written through the outbox travels relay -> Kafka -> dispatcher -> function over
// HTTP as a binary-mode CloudEvent; a poison event lands in the dead-letter topic after the
// configured retries, carrying the Knative error extensions.
func TestOutboxToFunctionAndDeadLetter(t *testing.T) {
	type delivery struct {
		id, typ, source, partitionKey, contentMode string
		data                                       map[string]any
	}
	var (
		mu         sync.Mutex
		received   []delivery
		gotOne     = make(chan struct{}, 16)
		failerHits atomic.Int32
	)
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" || r.Method != http.MethodPost {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var data map[string]any
		json.Unmarshal(body, &data)
		mode := "structured"
		if r.Header.Get("Ce-Specversion") != "" {
			mode = "binary"
		}
		mu.Lock()
		received = append(received, delivery{id: r.Header.Get("Ce-Id"), typ: r.Header.Get("Ce-Type"),
			source: r.Header.Get("Ce-Source"), partitionKey: r.Header.Get("Ce-Partitionkey"), contentMode: mode, data: data})
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		gotOne <- struct{}{}
	}))
	defer recorder.Close()
	failer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failerHits.Add(1)
		http.Error(w, "poisoned", http.StatusInternalServerError)
	}))
	defer failer.Close()

	cfg := testConfig(t, "relay")
	cfg.ManifestsDir = filepath.Join("testdata", "knative")
	cfg.ExtraServices = map[string]string{"recorder": recorder.URL, "failer": failer.URL}
	cfg.DisablePings = true
	s := startStack(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	write := func(typ, aggregate string, data any) string {
		t.Helper()
		ce, err := outbox.New(events.Source("e2e"), typ, data)
		if err != nil {
			t.Fatal(err)
		}
		var id string
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			id, err = outbox.Write(ctx, tx, outbox.Event{AggregateType: "install", AggregateID: aggregate, CloudEvent: ce})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	goodID := write(events.TypeInstallCompleted, "integration-1", events.InstallCompleted{
		InstallID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a90", IntegrationID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a91",
		Name: "crypto-ticker", UserID: "u_1", Scopes: []string{"dashboard:write"}, InstalledAt: time.Now().UTC()})
	select {
	case <-gotOne:
	case <-ctx.Done():
		t.Fatal("the event never reached the subscribed function")
	}
	mu.Lock()
	got := received[0]
	mu.Unlock()
	if got.id != goodID || got.typ != events.TypeInstallCompleted || got.source != events.Source("e2e") ||
		got.partitionKey != "integration-1" || got.contentMode != "binary" || got.data["user_id"] != "u_1" {
		t.Fatalf("delivered %+v; want id %s, binary mode, partitionkey integration-1", got, goodID)
	}

	poisonID := write(events.TypeHealthChanged, "integration-2", events.HealthChanged{
		IntegrationID: "0193a1c2-7d4e-7c3b-9a2f-3e5d6c7b8a92", Name: "league-scores", Status: events.HealthOffline,
		PreviousStatus: events.HealthHealthy, Uptime30d: 99.5, CheckedAt: time.Now().UTC()})
	dlq := readDeadLetter(t, ctx, s.Brokers, poisonID)
	if n := failerHits.Load(); n != 3 {
		t.Errorf("failer saw %d attempts; want 3 (1 + retry 2)", n)
	}
	ext := dlq.Extensions()
	if code, _ := ext["knativeerrorcode"].(string); code != "500" {
		t.Errorf("knativeerrorcode = %v; want 500 (extensions %v)", ext["knativeerrorcode"], ext)
	}
	if dest, _ := ext["knativeerrordest"].(string); dest != failer.URL+"/events" {
		t.Errorf("knativeerrordest = %v; want %s/events", ext["knativeerrordest"], failer.URL)
	}
	if _, ok := ext["knativeerrordata"]; !ok {
		t.Errorf("knativeerrordata missing (extensions %v)", ext)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 1 {
		t.Errorf("recorder got %d events; the poison event must not reach it", len(received))
	}
}

func readDeadLetter(t *testing.T, ctx context.Context, brokers []string, id string) cloudevents.Event {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(events.DLQ(events.TopicEvents)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("event %s never reached %s", id, events.DLQ(events.TopicEvents))
		}
		for _, r := range fetches.Records() {
			e, err := kafkace.Decode(r)
			if err != nil {
				t.Fatalf("dead letter does not decode: %v", err)
			}
			if e.ID() == id {
				return e
			}
		}
	}
}
