package kafkace

import (
	"errors"
	"fmt"
	"slices"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// HeaderPrefix prefixes every CloudEvents attribute header in binary mode.
	HeaderPrefix = "ce_"
	// HeaderContentType carries datacontenttype (binary mode) or the event format (structured).
	HeaderContentType = "content-type"
	// ExtPartitionKey is the Partitioning extension; Encode maps it to the record key.
	ExtPartitionKey = "partitionkey"
)

// Encode maps e to a binary-mode Kafka record. The event is validated first; an invalid event,
// a specversion other than 1.0, or a string attribute that cannot travel in a header (invalid
// UTF-8, control characters) is an error naming the attribute. The returned record has no
// topic: set it before producing.
func Encode(e cloudevents.Event) (*kgo.Record, error) {
	if e.Context == nil {
		return nil, errors.New("kafkace: encode: event has no context")
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("kafkace: encode: invalid event: %w", err)
	}
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return nil, fmt.Errorf("kafkace: encode: specversion %q not supported, only %s", e.SpecVersion(), event.CloudEventsVersionV1)
	}

	n := 5 + len(ec.Extensions)
	if ec.Subject != nil {
		n++
	}
	if ec.DataSchema != nil {
		n++
	}
	if ec.Time != nil {
		n++
	}
	r := &kgo.Record{Headers: make([]kgo.RecordHeader, 0, n)}
	values := make([]string, 0, n) // header values, copied into one buffer at the end
	add := func(name, value string) error {
		if reason := checkString(value); reason != "" {
			return fmt.Errorf("kafkace: encode: attribute %q: %s", name, reason)
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: headerKey(name)})
		values = append(values, value)
		return nil
	}
	if err := add("specversion", event.CloudEventsVersionV1); err != nil {
		return nil, err
	}
	if err := add("id", ec.ID); err != nil {
		return nil, err
	}
	if err := add("source", ec.Source.String()); err != nil {
		return nil, err
	}
	if err := add("type", ec.Type); err != nil {
		return nil, err
	}
	if ec.Subject != nil {
		if err := add("subject", *ec.Subject); err != nil {
			return nil, err
		}
	}
	if ec.DataSchema != nil {
		if err := add("dataschema", ec.DataSchema.String()); err != nil {
			return nil, err
		}
	}
	if ec.Time != nil {
		if err := add("time", types.FormatTime(ec.Time.Time)); err != nil {
			return nil, err
		}
	}
	if len(ec.Extensions) > 0 {
		names := make([]string, 0, len(ec.Extensions))
		for name := range ec.Extensions {
			names = append(names, name)
		}
		slices.Sort(names) // deterministic records: equal events encode to equal bytes
		for _, name := range names {
			if !validName(name) {
				return nil, fmt.Errorf("kafkace: encode: extension %q: name must be lower-case ASCII letters and digits", name)
			}
			s, err := types.Format(ec.Extensions[name])
			if err != nil {
				return nil, fmt.Errorf("kafkace: encode: extension %q: %w", name, err)
			}
			if err := add(name, s); err != nil {
				return nil, err
			}
			if name == ExtPartitionKey {
				r.Key = []byte(s)
			}
		}
	}
	if ec.DataContentType != nil {
		ct := *ec.DataContentType
		if reason := checkString(ct); reason != "" {
			return nil, fmt.Errorf("kafkace: encode: attribute %q: %s", "datacontenttype", reason)
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderContentType})
		values = append(values, ct)
	}
	size := 0
	for _, v := range values {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	for i, v := range values {
		start := len(buf)
		buf = append(buf, v...)
		r.Headers[i].Value = buf[start:len(buf):len(buf)] // capped: appending to one cannot clobber the next
	}
	if data := e.Data(); len(data) > 0 {
		r.Value = data
	}
	return r, nil
}

// headerKey avoids building the keys of the context attributes at run time.
func headerKey(name string) string {
	switch name {
	case "specversion":
		return "ce_specversion"
	case "id":
		return "ce_id"
	case "source":
		return "ce_source"
	case "type":
		return "ce_type"
	case "subject":
		return "ce_subject"
	case "dataschema":
		return "ce_dataschema"
	case "time":
		return "ce_time"
	}
	return HeaderPrefix + name
}
