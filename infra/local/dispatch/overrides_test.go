package dispatch

import (
	"context"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/infra/local/knative"
)

// One KafkaSource per push topic, each naming its integration by ceOverrides, as ingest's
// /events expects (functions/ingest: extension pushintegration).
const overrideManifests = testManifests + `---
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: ingest-push-demo, namespace: connect}
spec:
  consumerGroup: connect-ingest-demo
  bootstrapServers: [ignored-locally:9092]
  topics: [integrations.demo-push.data]
  initialOffset: earliest
  ceOverrides:
    extensions: {pushintegration: demo-push}
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: ingest}
    uri: /events
---
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: ingest-push-other, namespace: connect}
spec:
  consumerGroup: connect-ingest-other
  bootstrapServers: [ignored-locally:9092]
  topics: [integrations.other-push.data]
  initialOffset: earliest
  ceOverrides:
    extensions: {pushintegration: other-push}
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: ingest}
    uri: /events
`

// The overrides are set on CloudEvent records and on wrapped plain records, and replace what
// a producer wrote: a record on demo-push's topic claiming to be other-push's arrives as
// demo-push's.
func TestKafkaSourceAppliesCEOverrides(t *testing.T) {
	t.Parallel()
	b := setup(t, overrideManifests, 1, "connect.events", "integrations.demo-push.data", "integrations.other-push.data")
	ingest := b.serve("ingest", nil)
	b.start(b.config())

	forged := newEvent("com.myscrollr.connect.record.pushed", "forged")
	forged.SetExtension("pushintegration", "other-push")
	forged.SetExtension("user", "u1")
	rec, err := kafkace.Encode(forged)
	if err != nil {
		t.Fatal(err)
	}
	rec.Topic = "integrations.demo-push.data"
	honest, err := kafkace.Encode(newEvent("com.myscrollr.connect.record.pushed", "honest"))
	if err != nil {
		t.Fatal(err)
	}
	honest.Topic = "integrations.other-push.data"
	plain := &kgo.Record{Topic: "integrations.demo-push.data", Value: []byte(`{"v":1}`),
		Headers: []kgo.RecordHeader{{Key: "pushintegration", Value: []byte("other-push")}}}
	if err := b.producer.ProduceSync(context.Background(), rec, honest, plain).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := map[string]cloudevents.Event{}
	for range 3 {
		e := ingest.next()
		got[e.ID()] = e
	}
	ext := func(id, name string) any { return got[id].Extensions()[name] }
	if ext("forged", "pushintegration") != "demo-push" || ext("forged", "user") != "u1" {
		t.Errorf("forged record delivered as %s", got["forged"])
	}
	if ext("honest", "pushintegration") != "other-push" {
		t.Errorf("record on other-push's topic delivered as %s", got["honest"])
	}
	var wrapped cloudevents.Event
	for id, e := range got {
		if strings.HasPrefix(id, "partition:") {
			wrapped = e
		}
	}
	if wrapped.Type() != KafkaEventType || wrapped.Extensions()["pushintegration"] != "demo-push" ||
		wrapped.Extensions()["kafkaheaderpushintegration"] != "other-push" {
		t.Errorf("plain record delivered as %s", wrapped)
	}
}

func TestBadCEOverrideIsAnError(t *testing.T) {
	t.Parallel()
	_, err := knative.Parse("test.yaml", []byte(strings.Replace(overrideManifests, "{pushintegration: demo-push}", "{Push-Integration: demo-push}", 1)))
	if err == nil || !strings.Contains(err.Error(), `KafkaSource "ingest-push-demo": field spec.ceOverrides.extensions.Push-Integration`) {
		t.Fatalf("error = %v", err)
	}
	_, err = knative.Parse("test.yaml", []byte(strings.Replace(overrideManifests, "{pushintegration: demo-push}", "{subject: demo-push}", 1)))
	if err == nil || !strings.Contains(err.Error(), "spec.ceOverrides.extensions.subject") {
		t.Fatalf("overriding a spec attribute: error = %v", err)
	}
}
