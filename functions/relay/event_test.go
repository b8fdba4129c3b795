package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
)

func str(s string) *string { return &s }

func validRow() map[string]*string {
	return map[string]*string{
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
	}
}

func TestDecoderBuildsEvent(t *testing.T) {
	rec, dead, err := newDecoder().record(rowOf(validRow()))
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
		mutate func(r map[string]*string)
		column string
		topic  string
	}{
		{"extension name", func(r map[string]*string) { r["extensions"] = str(`{"Bad-Name": "x"}`) }, "extensions", "connect.events.dlq"},
		{"extensions not object", func(r map[string]*string) { r["extensions"] = str(`[1]`) }, "extensions", "connect.events.dlq"},
		{"specversion", func(r map[string]*string) { r["specversion"] = str("0.3") }, "specversion", "connect.events.dlq"},
		{"time", func(r map[string]*string) { r["time"] = str("yesterday") }, "time", "connect.events.dlq"},
		{"no source", func(r map[string]*string) { r["source"] = nil }, "source", "connect.events.dlq"},
		{"topic", func(r map[string]*string) { r["topic"] = str("no spaces allowed") }, "topic", fallbackDLQ},
		{"payload size", func(r map[string]*string) { r["payload"] = str(`"` + strings.Repeat("x", maxPayloadBytes) + `"`) }, "payload", "connect.events.dlq"},
		{"dataschema", func(r map[string]*string) { r["dataschema"] = str("::not a uri") }, "event", "connect.events.dlq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRow()
			tt.mutate(r)
			rec, dead, err := newDecoder().record(rowOf(r))
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
			dl, err := kafkace.ParseDeadLetter(rec)
			if err != nil {
				t.Fatalf("not in the dead-letter shape: %v", err)
			}
			wantDest := events.DestTopic(*r["topic"])
			if dl.Dest != wantDest || string(dl.Data) != doc.Error || dl.Attempts != 0 || dl.Code != 0 || dl.Topic != "" {
				t.Fatalf("dead letter %+v, want dest %q and the defect", dl, wantDest)
			}
		})
	}
}

// insertMsg encodes a pgoutput Insert body (after the 'I') for relation 7.
func insertMsg(cols ...any) []byte {
	b := []byte{0, 0, 0, 7, 'N', 0, byte(len(cols))}
	for _, c := range cols {
		switch c := c.(type) {
		case nil:
			b = append(b, 'n')
		case string:
			b = append(b, 't', 0, 0, 0, byte(len(c)))
			b = append(b, c...)
		case byte: // a bare kind without a value ('u')
			b = append(b, c)
		}
	}
	return b
}

func TestDecodeInsert(t *testing.T) {
	rel := newRelation("public", "outbox", []string{"id", "payload", "topic"})
	lookup := func(id uint32) (*relation, bool) { return rel, id == 7 }
	var r row
	if err := decodeInsert(insertMsg("x", nil, "connect.events"), lookup, &r); err != nil {
		t.Fatal(err)
	}
	if string(r.get(colID)) != "x" || !r.isNull(colPayload) || string(r.get(colTopic)) != "connect.events" || r.get(colType) != nil {
		t.Fatalf("row = %+v", r)
	}
	var re *rowError
	if err := decodeInsert(insertMsg("x", nil), lookup, &r); !errors.As(err, &re) || r.rel != nil {
		t.Fatalf("column count mismatch: %v", err)
	}
	if err := decodeInsert(insertMsg("x", byte('u'), "t"), lookup, &r); !errors.As(err, &re) || re.Column != "payload" {
		t.Fatalf("unchanged-TOAST column in an insert: %v", err)
	}
	malformed := map[string][]byte{
		"short":            {0, 0, 0, 7},
		"unknown relation": {0, 0, 0, 8, 'N', 0, 0},
		"not a new tuple":  {0, 0, 0, 7, 'K', 0, 0},
		"cut tuple":        {0, 0, 0, 7, 'N', 0, 3, 'n'},
		"long value":       {0, 0, 0, 7, 'N', 0, 1, 't', 0, 0, 1, 0, 'x'},
		"unknown kind":     {0, 0, 0, 7, 'N', 0, 1, 'z'},
	}
	for name, msg := range malformed {
		if err := decodeInsert(msg, lookup, &r); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", name, err)
		}
	}
}

// FuzzDecodeInsert: whatever the bytes, decoding returns a row or an error, never panics,
// and a row's values lie inside the message.
func FuzzDecodeInsert(f *testing.F) {
	f.Add(insertMsg("x", nil, "connect.events"))
	f.Add(insertMsg("x", nil))
	f.Add([]byte{0, 0, 0, 7, 'N', 0, 1, 't', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 7, 'N', 0xff, 0xff})
	rel := newRelation("public", "outbox", []string{"id", "payload", "topic"})
	f.Fuzz(func(t *testing.T, msg []byte) {
		var r row
		err := decodeInsert(msg, func(id uint32) (*relation, bool) { return rel, id == 7 }, &r)
		if err != nil {
			return
		}
		if len(r.vals) != 3 || len(r.null) != 3 {
			t.Fatalf("row of %d values", len(r.vals))
		}
		for _, v := range r.vals {
			if len(v) > len(msg) {
				t.Fatal("value longer than the message")
			}
		}
	})
}

// TestRecordMatchesKafkaceEncode: the record built from the columns is the one the
// CloudEvents SDK and kafkace.Encode make of the same row, byte for byte.
func TestRecordMatchesKafkaceEncode(t *testing.T) {
	cases := map[string]func(r map[string]*string){
		"as written":      func(map[string]*string) {},
		"no extensions":   func(r map[string]*string) { r["extensions"] = str("{}") },
		"null extensions": func(r map[string]*string) { r["extensions"] = nil },
		"subject and schema": func(r map[string]*string) {
			r["subject"], r["dataschema"] = str("u_1"), str("https://s.example/x.json")
		},
		"blank subject":           func(r map[string]*string) { r["subject"] = str("  ") },
		"padded attributes":       func(r map[string]*string) { r["id"], r["type"], r["subject"] = str(" a "), str("\tt\n"), str(" s ") },
		"source needs escaping":   func(r map[string]*string) { r["source"] = str("/a b/ü?x=1#f") },
		"bad source":              func(r map[string]*string) { r["source"] = str("http://[::1") },
		"relative schema":         func(r map[string]*string) { r["dataschema"] = str("/x.json") },
		"reserved extension":      func(r map[string]*string) { r["extensions"] = str(`{"id": "x"}`) },
		"reserved null extension": func(r map[string]*string) { r["extensions"] = str(`{"id": null}`) },
		"control in extension":    func(r map[string]*string) { r["extensions"] = str(`{"x": "a\u0001"}`) },
		"html in extension":       func(r map[string]*string) { r["extensions"] = str(`{"x": {"a": "<&>"}, "n": -0, "e": 1e2}`) },
		"trailing json":           func(r map[string]*string) { r["extensions"] = str(`{"x": 1} junk`) },
		"partitionkey extension":  func(r map[string]*string) { r["extensions"] = str(`{"partitionkey": "other"}`) },
		"null payload":            func(r map[string]*string) { r["payload"] = nil },
		"empty payload":           func(r map[string]*string) { r["payload"] = str("") },
		"content type params":     func(r map[string]*string) { r["datacontenttype"] = str(" application/json; charset=utf-8 ") },
		"blank content type":      func(r map[string]*string) { r["datacontenttype"] = str(" ") },
		"bad content type":        func(r map[string]*string) { r["datacontenttype"] = str("json") },
		"null content type":       func(r map[string]*string) { r["datacontenttype"] = nil },
		"whole seconds":           func(r map[string]*string) { r["time"] = str("2026-03-04 05:06:07+00") },
		"tenths":                  func(r map[string]*string) { r["time"] = str("2026-03-04 05:06:07.1+00") },
		"offset":                  func(r map[string]*string) { r["time"] = str("2026-03-04 05:06:07.5+05:30") },
		"year one":                func(r map[string]*string) { r["time"] = str("0001-01-01 00:00:00+00") },
		"BC":                      func(r map[string]*string) { r["time"] = str("0044-03-15 12:00:00+00 BC") },
		"leap day":                func(r map[string]*string) { r["time"] = str("2028-02-29 23:59:59.999999+00") },
		"no such day":             func(r map[string]*string) { r["time"] = str("2026-02-30 00:00:00+00") },
		"infinity":                func(r map[string]*string) { r["time"] = str("infinity") },
		"invalid utf8 type":       func(r map[string]*string) { r["type"] = str("t\xff") },
		"noncharacter aggregate":  func(r map[string]*string) { r["aggregateid"] = str("a\ufffe") },
		"dot topic":               func(r map[string]*string) { r["topic"] = str(".") },
		"missing topic column":    func(r map[string]*string) { delete(r, "topic") },
		"specversion":             func(r map[string]*string) { r["specversion"] = str("") },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			r := validRow()
			mutate(r)
			assertMatchesReference(t, r)
		})
	}
}

// FuzzDecoder feeds arbitrary column values (as any writer bypassing shared/outbox could
// store them) through the decoder: it never panics, and what it accepts encodes and decodes.
func FuzzDecoder(f *testing.F) {
	f.Add("0193a6f5-7b3c-7d4e-8f00-112233445566", "/src", "com.x.y", "2026-03-04 05:06:07+00", `{"a":"b"}`, `{"k":1}`, "connect.events", "subj", "application/json")
	f.Add("", "", "", "", "", "", "", "", "")
	f.Add("id", "::", "t", "infinity", `{"partitionkey":"x","A":1}`, "null", "..", "\x00", "text/plain")
	f.Add("id", "s", "t", "2026-03-04 05:06:07.999999-07:30", `{"n":-2147483649,"f":1.5,"l":[1,2]}`, `"x"`, "a.dlq", "", "")
	f.Add(" id ", "/a b", " t ", "2026-03-04 05:06:07.1+00", `{"id":"x","n":2}`, `{}`, "t", " ", " text/plain ")
	f.Add("id", "s", "t", "2026-02-29 05:06:07+00", `{"x":"\u0001"}`, `{}`, "t", "s", "bad")
	f.Fuzz(func(t *testing.T, id, source, typ, ts, ext, payload, topic, subject, ct string) {
		r := validRow()
		r["id"], r["source"], r["type"], r["time"] = str(id), str(source), str(typ), str(ts)
		r["extensions"], r["payload"], r["topic"], r["subject"] = str(ext), str(payload), str(topic), str(subject)
		r["datacontenttype"] = str(ct)
		assertMatchesReference(t, r)
		rec, dead, err := newDecoder().record(rowOf(r))
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
		if e.ID() != strings.TrimSpace(id) || string(rec.Key) != "i_1" || rec.Topic != topic {
			t.Fatalf("event %s key %s topic %s", e.ID(), rec.Key, rec.Topic)
		}
	})
}
