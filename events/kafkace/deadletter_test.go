package kafkace_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
)

func TestDeadLetterOfAnEvent(t *testing.T) {
	t.Parallel()
	rec, err := kafkace.Encode(fullEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	rec.Topic, rec.Partition, rec.Offset = "connect.events", 3, 42
	// An earlier dead-lettering left its account behind (the event was replayed).
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "ce_dlqattempts", Value: []byte("9")},
		kgo.RecordHeader{Key: "CE_knativeerrorcode", Value: []byte("500")})
	before := len(rec.Headers)
	want := events.DeadLetter{Dest: events.DestGroup("connect-notify"), Data: []byte("boom"), Attempts: 1,
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}

	dead := kafkace.DeadLetter(rec, want)
	if len(rec.Headers) != before {
		t.Fatal("DeadLetter modified the original record")
	}
	if dead.Topic != "" || string(dead.Key) != string(rec.Key) || string(dead.Value) != string(rec.Value) {
		t.Errorf("dead letter %+v is not the original record", dead)
	}
	if n := countHeaders(dead, "dlqattempts") + countHeaders(dead, "knativeerrorcode"); n != 1 {
		t.Errorf("%d old or new attempts/code headers, want only the new attempts", n)
	}
	got, err := kafkace.ParseDeadLetter(dead)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseDeadLetter = %+v, %v; want %+v", got, err, want)
	}
	// Still the same event, now with the extensions.
	e, err := kafkace.Decode(dead)
	if err != nil {
		t.Fatal(err)
	}
	orig := fullEvent(t)
	if e.ID() != orig.ID() || string(e.Data()) != string(orig.Data()) || e.Extensions()[events.ExtDLQOffset] != "42" {
		t.Errorf("dead letter decodes as %s", e)
	}
}

func TestDeadLetterOfARecordThatIsNoEvent(t *testing.T) {
	t.Parallel()
	rec := &kgo.Record{Key: []byte("k"), Value: []byte("not an event"), Headers: []kgo.RecordHeader{{Key: "x-origin", Value: []byte("legacy")}}}
	want := events.DeadLetter{Dest: events.DestTopic("connect.events"), Data: []byte(`kafkace: decode: specversion: missing`)}
	dead := kafkace.DeadLetter(rec, want)
	if _, err := kafkace.Decode(dead); err == nil {
		t.Error("a record that was no event became one")
	}
	if got, err := kafkace.ParseDeadLetter(dead); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDeadLetter = %+v, %v; want %+v", got, err, want)
	}
	if _, err := kafkace.ParseDeadLetter(rec); err == nil || !strings.Contains(err.Error(), events.ExtErrorDest) {
		t.Errorf("a record without the extensions parsed as a dead letter: %v", err)
	}
	dup := kafkace.DeadLetter(rec, want)
	dup.Headers = append(dup.Headers, kgo.RecordHeader{Key: "ce_knativeerrordest", Value: []byte("x")})
	if _, err := kafkace.ParseDeadLetter(dup); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate dead-letter header accepted: %v", err)
	}
}

// A KafkaSink in structured content mode writes the extensions into the JSON event.
func TestParseStructuredDeadLetter(t *testing.T) {
	t.Parallel()
	value, err := json.Marshal(map[string]string{
		"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
		"knativeerrordest": "http://sub/events", "knativeerrorcode": "404",
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Value: value, Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json")}}}
	got, err := kafkace.ParseDeadLetter(rec)
	if want := (events.DeadLetter{Dest: "http://sub/events", Code: 404}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDeadLetter = %+v, %v; want %+v", got, err, want)
	}
}

func countHeaders(r *kgo.Record, name string) int {
	n := 0
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, "ce_"+name) {
			n++
		}
	}
	return n
}
