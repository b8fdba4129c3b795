package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/myscrollr/connect/events/kafkace"
)

func str(s string) *string { return &s }

func validRow() row {
	return row{cols: map[string]*string{
		"id":              str("0193a6f5-7b3c-7d4e-8f00-112233445566"),
		"aggregatetype":   str("install"),
		"aggregateid":     str("i_1"),
		"type":            str("com.myscrollr.connect.install.completed"),
		"payload":         str(`{"user_id": "u_1"}`),
		"source":          str("/myscrollr/connect/install"),
		"specversion":     str("1.0"),
		"datacontenttype": str("application/json"),
		"dataschema":      nil,
		"subject":         nil,
		"time":            str("2026-03-04 05:06:07.123456+00"),
		"extensions":      str(`{"traceparent": "00-abc-01", "attempt": 2, "big": 99999999999, "flag": true, "obj": {"a": 1}, "none": null}`),
		"topic":           str("connect.events"),
		"created_at":      str("2026-03-04 05:06:07.123456+00"),
	}}
}

func TestDecoderBuildsEvent(t *testing.T) {
	rec, dead, err := newDecoder().record(validRow())
	if err != nil || dead {
		t.Fatalf("dead=%v err=%v", dead, err)
	}
	if rec.Topic != "connect.events" || string(rec.Key) != "i_1" || string(rec.Value) != `{"user_id": "u_1"}` {
		t.Fatalf("record = %s %s %s", rec.Topic, rec.Key, rec.Value)
	}
	e, err := kafkace.Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	ext := e.Extensions()
	if ext["attempt"] != "2" || ext["big"] != "99999999999" || ext["flag"] != "true" || ext["obj"] != `{"a":1}` ||
		ext["traceparent"] != "00-abc-01" || ext["partitionkey"] != "i_1" {
		t.Fatalf("extensions = %v", ext)
	}
	if _, ok := ext["none"]; ok {
		t.Fatal("null extension was set")
	}
	if e.Time().UnixMicro() != 1772600767123456 {
		t.Fatalf("time = %v", e.Time())
	}
	if e.Subject() != "" || e.DataSchema() != "" {
		t.Fatalf("NULL subject/dataschema became %q/%q", e.Subject(), e.DataSchema())
	}
}

func TestDecoderDeadLettersInvalidRows(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r row)
		column string
		topic  string
	}{
		{"extension name", func(r row) { r.cols["extensions"] = str(`{"Bad-Name": "x"}`) }, "extensions", "connect.events.dlq"},
		{"extensions not object", func(r row) { r.cols["extensions"] = str(`[1]`) }, "extensions", "connect.events.dlq"},
		{"specversion", func(r row) { r.cols["specversion"] = str("0.3") }, "specversion", "connect.events.dlq"},
		{"time", func(r row) { r.cols["time"] = str("yesterday") }, "time", "connect.events.dlq"},
		{"no source", func(r row) { r.cols["source"] = nil }, "source", "connect.events.dlq"},
		{"topic", func(r row) { r.cols["topic"] = str("no spaces allowed") }, "topic", fallbackDLQ},
		{"payload size", func(r row) { r.cols["payload"] = str(`"` + strings.Repeat("x", maxPayloadBytes) + `"`) }, "payload", "connect.events.dlq"},
		{"dataschema", func(r row) { r.cols["dataschema"] = str("::not a uri") }, "event", "connect.events.dlq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRow()
			tt.mutate(r)
			rec, dead, err := newDecoder().record(r)
			if !dead || err == nil {
				t.Fatalf("dead=%v err=%v", dead, err)
			}
			re, ok := err.(*rowError)
			if !ok || re.Column != tt.column {
				t.Fatalf("error %v (%T), want column %s", err, err, tt.column)
			}
			if rec.Topic != tt.topic || string(rec.Key) != "i_1" {
				t.Fatalf("dead letter to %s key %s", rec.Topic, rec.Key)
			}
			var doc struct {
				Error string             `json:"error"`
				Row   map[string]*string `json:"row"`
			}
			if err := json.Unmarshal(rec.Value, &doc); err != nil || doc.Error == "" || doc.Row["id"] == nil {
				t.Fatalf("dead letter %s (%v)", rec.Value, err)
			}
			if len(rec.Value) > 64<<10 {
				t.Fatalf("dead letter is %d bytes", len(rec.Value))
			}
		})
	}
}

func TestRowFromTuple(t *testing.T) {
	rel := &pglogrepl.RelationMessage{RelationName: "outbox", Columns: []*pglogrepl.RelationMessageColumn{{Name: "id"}, {Name: "payload"}}}
	r, err := rowFromTuple(rel, &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{
		{DataType: pglogrepl.TupleDataTypeText, Data: []byte("x")}, {DataType: pglogrepl.TupleDataTypeNull},
	}})
	if err != nil || r.get("id") != "x" || !r.isNull("payload") {
		t.Fatalf("row = %v, %v", r, err)
	}
	if _, err := rowFromTuple(rel, &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{{DataType: 't'}}}); err == nil {
		t.Fatal("column count mismatch accepted")
	}
	if _, err := rowFromTuple(rel, &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{{DataType: 'u'}, {DataType: 'n'}}}); err == nil {
		t.Fatal("unchanged-TOAST column accepted in an insert")
	}
}

// FuzzDecoder feeds arbitrary column values (as any writer bypassing shared/outbox could
// store them) through the decoder: it never panics, and what it accepts encodes and decodes.
func FuzzDecoder(f *testing.F) {
	f.Add("0193a6f5-7b3c-7d4e-8f00-112233445566", "/src", "com.x.y", "2026-03-04 05:06:07+00", `{"a":"b"}`, `{"k":1}`, "connect.events", "subj", "application/json")
	f.Add("", "", "", "", "", "", "", "", "")
	f.Add("id", "::", "t", "infinity", `{"partitionkey":"x","A":1}`, "null", "..", "\x00", "text/plain")
	f.Add("id", "s", "t", "2026-03-04 05:06:07.999999-07:30", `{"n":-2147483649,"f":1.5,"l":[1,2]}`, `"x"`, "a.dlq", "", "")
	f.Fuzz(func(t *testing.T, id, source, typ, ts, ext, payload, topic, subject, ct string) {
		r := validRow()
		r.cols["id"], r.cols["source"], r.cols["type"], r.cols["time"] = str(id), str(source), str(typ), str(ts)
		r.cols["extensions"], r.cols["payload"], r.cols["topic"], r.cols["subject"] = str(ext), str(payload), str(topic), str(subject)
		r.cols["datacontenttype"] = str(ct)
		rec, dead, err := newDecoder().record(r)
		if rec == nil {
			t.Fatal("no record")
		}
		if dead {
			if err == nil || !json.Valid(rec.Value) {
				t.Fatalf("dead letter without a reason or not JSON: %v %s", err, rec.Value)
			}
			return
		}
		e, derr := kafkace.Decode(rec)
		if derr != nil {
			t.Fatalf("accepted row does not decode: %v", derr)
		}
		if e.ID() != id || string(rec.Key) != "i_1" || rec.Topic != topic {
			t.Fatalf("event %s key %s topic %s", e.ID(), rec.Key, rec.Topic)
		}
	})
}
