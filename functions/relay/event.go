package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
)

// Limits on what one outbox row may carry. Kafka's default message limit is 1 MiB; the data
// and the headers must fit under it.
const (
	maxPayloadBytes    = 900 << 10
	maxExtensionsBytes = 32 << 10
	maxAttributeBytes  = 4 << 10
	maxExtensions      = 32
)

// fallbackDLQ receives rows whose topic itself is unusable.
const fallbackDLQ = "connect.relay.dlq"

// row is one outbox INSERT as text columns, the way pgoutput sends it.
type row struct {
	cols map[string]*string // nil value: SQL NULL
}

// rowFromTuple pairs the relation's column names with the tuple's values.
func rowFromTuple(rel *pglogrepl.RelationMessage, tup *pglogrepl.TupleData) (row, error) {
	if tup == nil {
		return row{}, errors.New("insert without a tuple")
	}
	if len(tup.Columns) != len(rel.Columns) {
		return row{}, fmt.Errorf("tuple has %d columns, relation %s.%s has %d", len(tup.Columns), rel.Namespace, rel.RelationName, len(rel.Columns))
	}
	r := row{cols: make(map[string]*string, len(rel.Columns))}
	for i, c := range tup.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			r.cols[rel.Columns[i].Name] = nil
		case pglogrepl.TupleDataTypeText:
			s := string(c.Data)
			r.cols[rel.Columns[i].Name] = &s
		default:
			return row{}, fmt.Errorf("column %q: unexpected tuple data kind %q", rel.Columns[i].Name, c.DataType)
		}
	}
	return r, nil
}

func (r row) get(name string) string {
	if v := r.cols[name]; v != nil {
		return *v
	}
	return ""
}

func (r row) isNull(name string) bool { return r.cols[name] == nil }

// rowError says which column of a row is unusable and why.
type rowError struct {
	Column string
	Reason string
}

func (e *rowError) Error() string { return "outbox column " + e.Column + ": " + e.Reason }

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// decoder turns rows into CloudEvents. It is used by one goroutine at a time.
type decoder struct {
	types *pgtype.Map
}

func newDecoder() *decoder { return &decoder{types: pgtype.NewMap()} }

// event builds the CloudEvent and the topic of r. Every error is a *rowError.
func (d *decoder) event(r row) (cloudevents.Event, string, error) {
	fail := func(col, format string, args ...any) (cloudevents.Event, string, error) {
		return cloudevents.Event{}, "", &rowError{Column: col, Reason: fmt.Sprintf(format, args...)}
	}
	for _, col := range []string{"id", "aggregateid", "type", "source", "specversion", "datacontenttype", "dataschema", "subject", "time", "topic"} {
		if n := len(r.get(col)); n > maxAttributeBytes {
			return fail(col, "%d bytes exceeds the limit of %d", n, maxAttributeBytes)
		}
	}
	for _, col := range []string{"id", "aggregateid", "type", "source", "time", "topic"} {
		if r.get(col) == "" {
			return fail(col, "missing or empty")
		}
	}
	topic := r.get("topic")
	if !topicRE.MatchString(topic) || topic == "." || topic == ".." {
		return fail("topic", "%q is not a valid Kafka topic name", topic)
	}
	if sv := r.get("specversion"); sv != "" && sv != "1.0" {
		return fail("specversion", "%q is not supported, only 1.0", sv)
	}
	var t time.Time
	if err := d.types.Scan(pgtype.TimestamptzOID, pgtype.TextFormatCode, []byte(r.get("time")), &t); err != nil {
		return fail("time", "%q is not a timestamp", r.get("time"))
	}

	e := cloudevents.NewEvent()
	e.SetID(r.get("id"))
	e.SetSource(r.get("source"))
	e.SetType(r.get("type"))
	e.SetTime(t.UTC())
	if s := r.get("subject"); s != "" {
		e.SetSubject(s)
	}
	if s := r.get("dataschema"); s != "" {
		e.SetDataSchema(s)
	}
	if ext := r.get("extensions"); ext != "" {
		if len(ext) > maxExtensionsBytes {
			return fail("extensions", "%d bytes exceeds the limit of %d", len(ext), maxExtensionsBytes)
		}
		if err := setExtensions(&e, []byte(ext)); err != nil {
			return fail("extensions", "%v", err)
		}
	}
	e.SetExtension(kafkace.ExtPartitionKey, r.get("aggregateid"))
	ct := r.get("datacontenttype")
	if ct == "" {
		ct = cloudevents.ApplicationJSON
	}
	if r.isNull("payload") {
		e.SetDataContentType(ct)
	} else {
		p := r.get("payload")
		if len(p) > maxPayloadBytes {
			return fail("payload", "%d bytes exceeds the limit of %d", len(p), maxPayloadBytes)
		}
		if err := e.SetData(ct, []byte(p)); err != nil {
			return fail("payload", "%v", err)
		}
	}
	if err := e.Validate(); err != nil {
		return fail("event", "%v", err)
	}
	return e, topic, nil
}

// setExtensions copies the members of the extensions object onto e.
func setExtensions(e *cloudevents.Event, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	if len(m) > maxExtensions {
		return fmt.Errorf("%d members exceeds the limit of %d", len(m), maxExtensions)
	}
	for name, v := range m {
		if name == kafkace.ExtPartitionKey {
			continue // always the aggregate id
		}
		if !validExtensionName(name) {
			return fmt.Errorf("member %q: extension names are lower-case ASCII letters and digits", name)
		}
		switch v := v.(type) {
		case nil:
			continue
		case string, bool:
			e.SetExtension(name, v)
		case json.Number:
			if n, err := v.Int64(); err == nil && n >= math.MinInt32 && n <= math.MaxInt32 {
				e.SetExtension(name, int32(n))
			} else {
				e.SetExtension(name, v.String())
			}
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("member %q: %v", name, err)
			}
			e.SetExtension(name, string(b))
		}
	}
	return nil
}

func validExtensionName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// record turns r into the Kafka record to produce: the event, or a dead letter naming the
// defect. dead reports the latter.
func (d *decoder) record(r row) (rec *kgo.Record, dead bool, err error) {
	e, topic, err := d.event(r)
	if err == nil {
		rec, err = kafkace.Encode(e)
		if err == nil {
			rec.Topic = topic
			return rec, false, nil
		}
		err = &rowError{Column: "event", Reason: err.Error()}
	}
	return deadLetter(r, err), true, err
}

// deadLetter is the record for a row that is not a valid event: a JSON document with the
// defect and the row (the payload only when it is small).
func deadLetter(r row, cause error) *kgo.Record {
	cols := make(map[string]*string, len(r.cols))
	for k, v := range r.cols {
		if v != nil && len(*v) > maxAttributeBytes {
			s := fmt.Sprintf("(%d bytes omitted)", len(*v))
			v = &s
		}
		cols[k] = v
	}
	value, _ := json.Marshal(map[string]any{"error": cause.Error(), "row": cols})
	topic := r.get("topic")
	if !topicRE.MatchString(topic) || len(topic) > 245 {
		topic = fallbackDLQ
	} else {
		topic += ".dlq"
	}
	key := r.get("aggregateid")
	if len(key) > maxAttributeBytes {
		key = key[:maxAttributeBytes]
	}
	return &kgo.Record{
		Topic:   topic,
		Key:     []byte(key),
		Value:   value,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}},
	}
}
