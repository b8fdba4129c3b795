package dispatch

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stepClock is a Clock the test advances: each Sleep waits for a step from the test, then
// moves the time forward by exactly the requested duration.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	steps chan struct{}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.steps:
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

const pingManifests = testManifests + `---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: tick, namespace: connect}
spec:
  schedule: "*/5 * * * *"
  timezone: Europe/Paris
  contentType: application/json
  data: '{"job":"health-probe"}'
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: notify}
    uri: /events
`

func TestPingSourceTicksOnSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t, pingManifests, 1, "connect.events")
	notify := b.serve("notify", nil)
	b.serve("install", nil)
	clock := &stepClock{now: time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC), steps: make(chan struct{})}
	cfg := b.config()
	cfg.Clock = clock
	b.start(cfg)

	want := []time.Time{
		time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 12, 15, 0, 0, time.UTC),
	}
	for _, at := range want {
		clock.steps <- struct{}{}
		e := notify.next()
		if !e.Time().Equal(at) {
			t.Errorf("tick at %v, want %v", e.Time(), at)
		}
		if e.Type() != PingEventType || e.Source() != "/apis/v1/namespaces/connect/pingsources/tick" ||
			e.DataContentType() != "application/json" || string(e.Data()) != `{"job":"health-probe"}` {
			t.Errorf("ping event = %s", e)
		}
	}
}

const sourceManifests = testManifests + `---
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: ingest-push, namespace: connect}
spec:
  consumerGroup: connect-ingest
  bootstrapServers: [ignored-locally:9092]
  topics: [integrations.demo-push.data, integrations.other-push.data]
  initialOffset: earliest
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: ingest}
    uri: /events
  delivery:
    retry: 1
    backoffDelay: PT0.001S
`

func TestKafkaSourceDeliversRecords(t *testing.T) {
	t.Parallel()
	b := setup(t, sourceManifests, 1, "connect.events", "integrations.demo-push.data", "integrations.other-push.data")
	ingest := b.serve("ingest", func(e cloudevents.Event, _ int) (int, string) {
		if e.ID() == "reject-me" {
			return 400, "schema mismatch"
		}
		return 202, ""
	})
	b.start(b.config())

	ce := newEvent("com.myscrollr.connect.data.received", "pushed-1")
	rec, err := kafkace.Encode(ce)
	if err != nil {
		t.Fatal(err)
	}
	rec.Topic = "integrations.demo-push.data"
	plain := &kgo.Record{Topic: "integrations.other-push.data", Key: []byte("k1"), Value: []byte(`{"v":1}`),
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}, {Key: "Trace-Id", Value: []byte("abc")}}}
	bad, _ := kafkace.Encode(newEvent("com.myscrollr.connect.data.received", "reject-me"))
	bad.Topic = "integrations.demo-push.data"
	if err := b.producer.ProduceSync(context.Background(), rec, plain, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := map[string]cloudevents.Event{}
	for range 3 {
		e := ingest.next()
		got[e.Type()+" "+e.ID()] = e
	}
	if e, ok := got["com.myscrollr.connect.data.received pushed-1"]; !ok || string(e.Data()) != `{"id":"pushed-1"}` {
		t.Errorf("CloudEvent record not delivered as itself: %v", got)
	}
	var wrapped cloudevents.Event
	for k, e := range got {
		if strings.HasPrefix(k, KafkaEventType) {
			wrapped = e
		}
	}
	if wrapped.Source() != "/apis/v1/namespaces/connect/kafkasources/ingest-push#integrations.other-push.data" ||
		!strings.HasPrefix(wrapped.ID(), "partition:0/offset:") || string(wrapped.Data()) != `{"v":1}` ||
		wrapped.DataContentType() != "application/json" || wrapped.Extensions()["key"] != "k1" ||
		wrapped.Extensions()["kafkaheadertraceid"] != "abc" {
		t.Errorf("plain record wrapped as %s", wrapped)
	}
	// The rejected record goes to the default dead-letter topic of its own topic.
	dead := b.readTopic("integrations.demo-push.data.dlq", 1)[0]
	checkDeadLetterOf(t, dead, "reject-me", "400", ingest.srv.URL+"/events", "schema mismatch")
	b.waitCommitted("connect-ingest", "integrations.demo-push.data", 0, 2)
	b.waitCommitted("connect-ingest", "integrations.other-push.data", 0, 1)
}

func checkDeadLetterOf(t *testing.T, r *kgo.Record, id, code, dest, body string) {
	t.Helper()
	e, err := kafkace.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := kafkace.ParseDeadLetter(r)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != id || strconv.Itoa(dl.Code) != code || dl.Dest != dest || !strings.Contains(string(dl.Data), body) {
		t.Errorf("dead letter %s: %+v", e, dl)
	}
}

func TestConfigErrors(t *testing.T) {
	err := Run(context.Background(), Config{MaxInFlight: -1})
	for _, want := range []string{"Config.Brokers (KAFKA_BROKERS)", "Config.Manifests", "Config.Resolve", "Config.MaxInFlight"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestBadPingScheduleIsAnError(t *testing.T) {
	b := setup(t, strings.Replace(pingManifests, `"*/5 * * * *"`, `"every minute"`, 1), 1, "connect.events")
	err := Run(context.Background(), b.config())
	if err == nil || !strings.Contains(err.Error(), `PingSource "tick": field spec.schedule`) {
		t.Fatalf("error = %v", err)
	}
}
