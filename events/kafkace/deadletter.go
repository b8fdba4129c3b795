package kafkace

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
)

// DeadLetter returns the dead-letter record of r (see "Dead letters" in package events): r's
// key, value and headers, without any earlier dead-letter headers, plus one ce_ header per
// extension of dl. Its topic is empty; the caller chooses the dead-letter topic. r is not
// modified and the record does not alias r's header slice.
func DeadLetter(r *kgo.Record, dl events.DeadLetter) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+7)
	for _, h := range r.Headers {
		if name, ok := ceName(h.Key); ok && events.IsDeadLetterExtension(strings.ToLower(name)) {
			continue
		}
		headers = append(headers, h)
	}
	for name, value := range dl.Extensions() {
		headers = append(headers, kgo.RecordHeader{Key: HeaderPrefix + name, Value: []byte(value)})
	}
	return &kgo.Record{Key: r.Key, Value: r.Value, Headers: headers}
}

// ParseDeadLetter reads the dead-letter extensions of r with [events.ParseDeadLetter]: from the
// event's extensions when r is a structured-mode CloudEvent, else from its ce_ headers (binary
// mode, or a record that is not a CloudEvent at all). Headers are bounded as [Decode] bounds
// them.
func ParseDeadLetter(r *kgo.Record) (events.DeadLetter, error) {
	if r == nil {
		return events.DeadLetter{}, decodeErr("record", "nil record")
	}
	if len(r.Headers) > DefaultMaxHeaders {
		return events.DeadLetter{}, decodeErr("headers", "%d headers exceeds the limit of %d", len(r.Headers), DefaultMaxHeaders)
	}
	ext := make(map[string]string, 8)
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, HeaderContentType) && hasPrefixFold(h.Value, "application/cloudevents") {
			e, err := Decode(r)
			if err != nil {
				return events.DeadLetter{}, err
			}
			clear(ext)
			for name, v := range e.Extensions() {
				if s, ok := v.(string); ok && events.IsDeadLetterExtension(name) {
					ext[name] = s
				}
			}
			return events.ParseDeadLetter(ext)
		}
		if name, ok := ceName(h.Key); ok && events.IsDeadLetterExtension(name) {
			if _, dup := ext[name]; dup {
				return events.DeadLetter{}, decodeErr(name, "duplicate header %s", quote(h.Key))
			}
			ext[name] = string(h.Value)
		}
	}
	return events.ParseDeadLetter(ext)
}
