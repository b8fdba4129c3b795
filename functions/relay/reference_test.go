package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
)

// This file holds the reference the record builder is checked against: the outbox row made
// into a CloudEvent with the CloudEvents SDK and encoded with kafkace.Encode, the way the
// relay did it before it built records directly.

// rowOf builds a row from named columns (nil: NULL), the way decodeInsert fills one.
func rowOf(cols map[string]*string) *row {
	names := make([]string, 0, len(cols))
	for k := range cols {
		names = append(names, k)
	}
	slices.Sort(names)
	r := &row{rel: newRelation("public", "outbox", names)}
	for _, n := range names {
		v := cols[n]
		r.null = append(r.null, v == nil)
		if v == nil {
			r.vals = append(r.vals, nil)
		} else {
			r.vals = append(r.vals, []byte(*v))
		}
	}
	return r
}

var referenceTopicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// referenceRecord is the record (or the column of the defect) of the SDK path.
func referenceRecord(cols map[string]*string) (*kgo.Record, *rowError) {
	get := func(c string) string {
		if v := cols[c]; v != nil {
			return *v
		}
		return ""
	}
	fail := func(col, format string, args ...any) (*kgo.Record, *rowError) {
		return nil, &rowError{Column: col, Reason: fmt.Sprintf(format, args...)}
	}
	for _, col := range []string{"id", "aggregateid", "type", "source", "specversion", "datacontenttype", "dataschema", "subject", "time", "topic"} {
		if n := len(get(col)); n > maxAttributeBytes {
			return fail(col, "%d bytes exceeds the limit of %d", n, maxAttributeBytes)
		}
	}
	for _, col := range []string{"id", "aggregateid", "type", "source", "time", "topic"} {
		if get(col) == "" {
			return fail(col, "missing or empty")
		}
	}
	topic := get("topic")
	if !referenceTopicRE.MatchString(topic) || topic == "." || topic == ".." {
		return fail("topic", "%q is not a valid Kafka topic name", topic)
	}
	if sv := get("specversion"); sv != "" && sv != "1.0" {
		return fail("specversion", "%q is not supported, only 1.0", sv)
	}
	var t time.Time
	if err := pgtype.NewMap().Scan(pgtype.TimestamptzOID, pgtype.TextFormatCode, []byte(get("time")), &t); err != nil {
		return fail("time", "%q is not a timestamp", get("time"))
	}
	e := cloudevents.NewEvent()
	e.SetID(get("id"))
	e.SetSource(get("source"))
	e.SetType(get("type"))
	e.SetTime(t.UTC())
	if s := get("subject"); s != "" {
		e.SetSubject(s)
	}
	if s := get("dataschema"); s != "" {
		e.SetDataSchema(s)
	}
	if ext := get("extensions"); ext != "" {
		if len(ext) > maxExtensionsBytes {
			return fail("extensions", "%d bytes exceeds the limit of %d", len(ext), maxExtensionsBytes)
		}
		if err := referenceExtensions(&e, []byte(ext)); err != nil {
			return fail("extensions", "%v", err)
		}
	}
	e.SetExtension(kafkace.ExtPartitionKey, get("aggregateid"))
	ct := get("datacontenttype")
	if ct == "" {
		ct = cloudevents.ApplicationJSON
	}
	if cols["payload"] == nil {
		e.SetDataContentType(ct)
	} else {
		p := get("payload")
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
	rec, err := kafkace.Encode(e)
	if err != nil {
		return fail("event", "%v", err)
	}
	rec.Topic = topic
	return rec, nil
}

func referenceExtensions(e *cloudevents.Event, raw []byte) error {
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
			continue
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

// assertMatchesReference checks that the builder treats cols exactly as the reference does:
// the same record byte for byte, or a dead letter naming the same column.
func assertMatchesReference(t *testing.T, cols map[string]*string) {
	t.Helper()
	want, wantErr := referenceRecord(cols)
	got, dead, err := newDecoder().record(rowOf(cols))
	if wantErr != nil {
		re, ok := err.(*rowError)
		if !dead || !ok || re.Column != wantErr.Column {
			t.Fatalf("reference rejects (%v); builder: dead=%v err=%v", wantErr, dead, err)
		}
		return
	}
	if dead {
		t.Fatalf("reference accepts; builder rejects: %v", err)
	}
	if got.Topic != want.Topic || !bytes.Equal(got.Key, want.Key) || (got.Key == nil) != (want.Key == nil) ||
		!bytes.Equal(got.Value, want.Value) || (got.Value == nil) != (want.Value == nil) {
		t.Fatalf("record %q %q %q, want %q %q %q", got.Topic, got.Key, got.Value, want.Topic, want.Key, want.Value)
	}
	if !slices.EqualFunc(got.Headers, want.Headers, func(a, b kgo.RecordHeader) bool {
		return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
	}) {
		t.Fatalf("headers\n%v\nwant\n%v", got.Headers, want.Headers)
	}
}
