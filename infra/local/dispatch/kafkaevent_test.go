package dispatch

import (
	"testing"
	"time"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/infra/local/knative"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzKafkaEvent feeds arbitrary pushed records (untrusted: integrations write them) to the
// KafkaSource path: whatever the record, the event is valid and can be dead-lettered.
func FuzzKafkaEvent(f *testing.F) {
	f.Add([]byte("k"), "content-type", []byte("application/json"), []byte(`{"v":1}`), true)
	f.Add([]byte{0xff, 0x00}, "X-Trace-ID-with-a-very-long-name-indeed", []byte("\x01bin"), []byte(nil), false)
	f.Add([]byte(""), "ce_specversion", []byte("1.0"), []byte("x"), true)
	f.Add([]byte("key"), "ce_specversion", []byte("0.3"), []byte("x"), true)
	src := &knative.KafkaSource{Object: knative.Object{Name: "ingest-push", Namespace: "connect"}}
	f.Fuzz(func(t *testing.T, key []byte, hk string, hv, value []byte, ts bool) {
		rec := &kgo.Record{Topic: "integrations.demo-push.data", Partition: 2, Offset: 7, Key: key, Value: value,
			Headers: []kgo.RecordHeader{{Key: hk, Value: hv}}}
		if ts {
			rec.Timestamp = time.Unix(1700000000, 0)
		}
		e := sourceEvent(src, rec, discardLogger())
		if err := e.Validate(); err != nil {
			t.Fatalf("invalid event from record: %v", err)
		}
		dead := e.Clone()
		dead.SetExtension(events.ExtErrorDest, "http://127.0.0.1:1/events")
		dead.SetExtension(events.ExtErrorCode, "400")
		if _, err := kafkace.Encode(dead); err != nil {
			t.Fatalf("event cannot be dead-lettered: %v (%s)", err, e)
		}
	})
}
