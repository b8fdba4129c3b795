package dispatch

import (
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/infra/local/knative"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaEventType is the type of records a KafkaSource wraps, as Knative names it.
const KafkaEventType = "dev.knative.kafka.event"

// sourceEvent is what a KafkaSource delivers for rec: the CloudEvent it carries when it has
// a ce_specversion header and decodes, else KafkaEvent(rec); either way with the source's
// ceOverrides applied.
func sourceEvent(src *knative.KafkaSource, rec *kgo.Record, log *slog.Logger) cloudevents.Event {
	for _, h := range rec.Headers {
		if h.Key == kafkace.HeaderPrefix+"specversion" {
			e, err := kafkace.Decode(rec)
			if err == nil {
				return override(src, e)
			}
			log.Warn("record with ce_ headers is not a valid CloudEvent; delivering it wrapped",
				"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
			break
		}
	}
	return override(src, KafkaEvent(src, rec))
}

// override sets the KafkaSource's ceOverrides extensions on e, replacing any the producer
// wrote, as Knative's KafkaSource does: a receiver may trust them (ingest names the push
// integration by one), since whoever produced the record cannot change them.
func override(src *knative.KafkaSource, e cloudevents.Event) cloudevents.Event {
	for name, v := range src.CEOverrides {
		e.SetExtension(name, v)
	}
	return e
}

// KafkaEvent wraps a plain Kafka record the way Knative's KafkaSource does: type
// dev.knative.kafka.event, source /apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>,
// id partition:<p>/offset:<o>, subject partition:<p>#<o>, time the record timestamp, the
// value as data (datacontenttype from a content-type header), the key as extension "key"
// and each header as extension "kafkaheader<name>" (name lower-cased, letters and digits
// only) when key or value is valid UTF-8.
func KafkaEvent(src *knative.KafkaSource, rec *kgo.Record) cloudevents.Event {
	p, o := strconv.Itoa(int(rec.Partition)), strconv.FormatInt(rec.Offset, 10)
	e := cloudevents.NewEvent()
	e.SetID("partition:" + p + "/offset:" + o)
	e.SetSource("/apis/v1/namespaces/" + src.Namespace + "/kafkasources/" + src.Name + "#" + rec.Topic)
	e.SetType(KafkaEventType)
	e.SetSubject("partition:" + p + "#" + o)
	if !rec.Timestamp.IsZero() {
		e.SetTime(rec.Timestamp)
	}
	if len(rec.Key) > 0 && printable(rec.Key) {
		e.SetExtension("key", string(rec.Key))
	}
	contentType := ""
	for _, h := range rec.Headers {
		if strings.EqualFold(h.Key, "content-type") && printable(h.Value) {
			contentType = string(h.Value)
			continue
		}
		name := extensionName(h.Key)
		if name == "" || !printable(h.Value) {
			continue
		}
		e.SetExtension("kafkaheader"+name, string(h.Value))
	}
	if rec.Value != nil {
		e.DataEncoded = rec.Value
		if contentType != "" {
			e.SetDataContentType(contentType)
		}
	}
	return e
}

func extensionName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// printable reports whether b can be a CloudEvents string: valid UTF-8 without control
// characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
