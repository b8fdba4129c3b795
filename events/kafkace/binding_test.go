package kafkace_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
)

func TestEncodeBinaryMode(t *testing.T) {
	t.Parallel()
	e := fullEvent(t)
	r, err := kafkace.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if r.Topic != "" {
		t.Errorf("topic = %q, want empty (the caller's choice)", r.Topic)
	}
	want := map[string]string{
		"ce_specversion":  "1.0",
		"ce_id":           "8f0c3c1e-5b7d-4a7e-9d1e-2f6a1b0c9d8e",
		"ce_source":       "/myscrollr/connect/install",
		"ce_type":         "com.myscrollr.connect.install.completed",
		"ce_subject":      "integrations/weather",
		"ce_dataschema":   "https://schemas.myscrollr.com/connect/install.completed.json",
		"ce_time":         "2026-03-04T04:06:07.123456Z", // UTC, nanos as needed
		"ce_partitionkey": "0b7e6f1c-integration",        // kept: the key mapper must not modify the event
		"ce_attempt":      "-42",
		"ce_sampled":      "true",
		"ce_blob":         "AAEC/w==",
		"ce_origin":       "https://example.com/a?b=c",
		"ce_ref":          "../relative/path",
		"ce_seen":         "2025-12-31T23:59:59Z",
		"content-type":    "application/json",
	}
	for k, v := range want {
		got, ok := header(r, k)
		if !ok || got != v {
			t.Errorf("header %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if len(r.Headers) != len(want) {
		t.Errorf("headers = %v, want exactly %d", headerKeys(r), len(want))
	}
	if string(r.Key) != "0b7e6f1c-integration" {
		t.Errorf("key = %q, want the partitionkey", r.Key)
	}
	var data map[string]any
	if err := json.Unmarshal(r.Value, &data); err != nil || data["install_id"] != "i-1" {
		t.Errorf("value = %s (%v), want the data as-is", r.Value, err)
	}
	// Deterministic: encoding twice gives the same headers in the same order.
	r2, err := kafkace.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(r.Headers, r2.Headers, func(a, b kgo.RecordHeader) bool {
		return a.Key == b.Key && string(a.Value) == string(b.Value)
	}) {
		t.Error("two encodings of one event differ")
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	minimal := func() cloudevents.Event {
		e := cloudevents.NewEvent()
		e.SetID("1")
		e.SetSource("urn:myscrollr:test")
		e.SetType("com.myscrollr.connect.user.deleted")
		return e
	}
	cases := map[string]func() cloudevents.Event{
		"all attributes and extension types": func() cloudevents.Event { return fullEvent(t) },
		"minimal, no data":                   minimal,
		"binary data": func() cloudevents.Event {
			e := minimal()
			if err := e.SetData("application/octet-stream", []byte{0, 0xff, 0x10}); err != nil {
				t.Fatal(err)
			}
			return e
		},
		"time without fraction": func() cloudevents.Event {
			e := minimal()
			e.SetTime(time.Date(2018, 4, 5, 3, 56, 24, 0, time.UTC))
			return e
		},
		"time with nanoseconds": func() cloudevents.Event {
			e := minimal()
			e.SetTime(time.Date(2018, 4, 5, 3, 56, 24, 1, time.UTC))
			return e
		},
		"unicode strings": func() cloudevents.Event {
			e := minimal()
			e.SetSubject("café ☕ 𝄞")
			e.SetExtension("note", "naïve")
			return e
		},
		"content type with parameters": func() cloudevents.Event {
			e := minimal()
			if err := e.SetData("text/plain; charset=utf-8", []byte("hello")); err != nil {
				t.Fatal(err)
			}
			return e
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := mk()
			r, err := kafkace.Encode(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := kafkace.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			assertEqualEvents(t, in, out)
			if in.Data() == nil && r.Value != nil {
				t.Errorf("event without data encoded a value %q, want none (tombstone)", r.Value)
			}
		})
	}
}

func TestDecodeExtensionsAreCanonicalStrings(t *testing.T) {
	t.Parallel()
	r, err := kafkace.Encode(fullEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	e, err := kafkace.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	n, err := types.ToInteger(e.Extensions()["attempt"])
	if err != nil || n != -42 {
		t.Errorf("attempt = %v (%v), want -42", n, err)
	}
	b, err := types.ToBool(e.Extensions()["sampled"])
	if err != nil || !b {
		t.Errorf("sampled = %v (%v), want true", b, err)
	}
	blob, err := types.ToBinary(e.Extensions()["blob"])
	if err != nil || string(blob) != "\x00\x01\x02\xff" {
		t.Errorf("blob = %q (%v)", blob, err)
	}
	if !e.Time().Equal(time.Date(2026, 3, 4, 4, 6, 7, 123456000, time.UTC)) {
		t.Errorf("time = %v", e.Time())
	}
}

func TestKeyMapping(t *testing.T) {
	t.Parallel()
	base := func() *kgo.Record {
		return &kgo.Record{Headers: []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")},
			{Key: "ce_id", Value: []byte("1")},
			{Key: "ce_source", Value: []byte("/s")},
			{Key: "ce_type", Value: []byte("t")},
		}}
	}
	t.Run("key becomes partitionkey", func(t *testing.T) {
		r := base()
		r.Key = []byte("integration-7")
		e, err := kafkace.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Extensions()[kafkace.ExtPartitionKey]; got != "integration-7" {
			t.Errorf("partitionkey = %v", got)
		}
	})
	t.Run("ce_partitionkey wins over the key", func(t *testing.T) {
		r := base()
		r.Key = []byte("other")
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "ce_partitionkey", Value: []byte("pk")})
		e, err := kafkace.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Extensions()[kafkace.ExtPartitionKey]; got != "pk" {
			t.Errorf("partitionkey = %v", got)
		}
	})
	t.Run("binary key is left out", func(t *testing.T) {
		r := base()
		r.Key = []byte{0xff, 0x00}
		e, err := kafkace.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := e.Extensions()[kafkace.ExtPartitionKey]; ok {
			t.Error("a key that is not a CloudEvents string became partitionkey")
		}
	})
	t.Run("no partitionkey, no key", func(t *testing.T) {
		e := cloudevents.NewEvent()
		e.SetID("1")
		e.SetSource("/s")
		e.SetType("t")
		r, err := kafkace.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if r.Key != nil {
			t.Errorf("key = %q, want nil", r.Key)
		}
	})
}

func TestDecodeStructured(t *testing.T) {
	t.Parallel()
	in := fullEvent(t)
	// The SDK writes the JSON event format; a structured record carries it as its value.
	value, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []string{
		"application/cloudevents+json",
		"application/cloudevents+json; charset=UTF-8",
		"Application/CloudEvents+JSON",
	} {
		r := &kgo.Record{Value: value, Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(ct)}}}
		out, err := kafkace.Decode(r)
		if err != nil {
			t.Fatalf("%s: %v", ct, err)
		}
		assertEqualEvents(t, in, out)
	}

	t.Run("typed extensions and data forms", func(t *testing.T) {
		cases := []struct {
			json     string
			wantData string
			wantCT   string
		}{
			{`{"specversion":"1.0","id":"1","source":"/s","type":"t","n":7,"b":false,"data":{"a":1}}`, `{"a":1}`, "application/json"},
			{`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi\n"}`, "hi\n", "text/plain"},
			{`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AP8="}`, "\x00\xff", "application/octet-stream"},
			{`{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,"data":null}`, "", ""},
		}
		for _, c := range cases {
			r := &kgo.Record{Value: []byte(c.json), Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json")}}}
			e, err := kafkace.Decode(r)
			if err != nil {
				t.Fatalf("%s: %v", c.json, err)
			}
			if string(e.Data()) != c.wantData || e.DataContentType() != c.wantCT {
				t.Errorf("%s: data %q type %q, want %q %q", c.json, e.Data(), e.DataContentType(), c.wantData, c.wantCT)
			}
		}
		r := &kgo.Record{Value: []byte(cases[0].json), Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json")}}}
		e, _ := kafkace.Decode(r)
		if e.Extensions()["n"] != int32(7) || e.Extensions()["b"] != false {
			t.Errorf("extensions = %#v, want JSON types kept", e.Extensions())
		}
	})
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	h := func(kv ...string) []kgo.RecordHeader {
		var hs []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	valid := []string{"ce_specversion", "1.0", "ce_id", "1", "ce_source", "/s", "ce_type", "t"}
	with := func(kv ...string) []kgo.RecordHeader { return h(append(slices.Clone(valid), kv...)...) }
	structured := func(body string) *kgo.Record {
		return &kgo.Record{Value: []byte(body), Headers: h("content-type", "application/cloudevents+json")}
	}
	cases := []struct {
		name       string
		record     *kgo.Record
		attr       string
		reasonPart string
	}{
		{"nil record", nil, "record", "nil"},
		{"not a cloudevent", &kgo.Record{Value: []byte("x")}, "specversion", "missing"},
		{"missing id", &kgo.Record{Headers: h("ce_specversion", "1.0", "ce_source", "/s", "ce_type", "t")}, "id", "missing"},
		{"missing source", &kgo.Record{Headers: h("ce_specversion", "1.0", "ce_id", "1", "ce_type", "t")}, "source", "missing"},
		{"missing type", &kgo.Record{Headers: h("ce_specversion", "1.0", "ce_id", "1", "ce_source", "/s")}, "type", "missing"},
		{"empty id", &kgo.Record{Headers: h("ce_specversion", "1.0", "ce_id", "", "ce_source", "/s", "ce_type", "t")}, "id", "non-empty"},
		{"bad specversion", &kgo.Record{Headers: h("ce_specversion", "0.3", "ce_id", "1", "ce_source", "/s", "ce_type", "t")}, "specversion", "unsupported"},
		{"bad time", &kgo.Record{Headers: with("ce_time", "yesterday")}, "time", "RFC 3339"},
		{"time out of range", &kgo.Record{Headers: with("ce_time", "0000-01-01T00:00:00+01:00")}, "time", "out of"},
		{"relative dataschema", &kgo.Record{Headers: with("ce_dataschema", "/schema.json")}, "dataschema", "absolute URI"},
		{"bad source URI", &kgo.Record{Headers: h("ce_specversion", "1.0", "ce_id", "1", "ce_source", "http://[::1", "ce_type", "t")}, "source", "URI-reference"},
		{"empty subject", &kgo.Record{Headers: with("ce_subject", "")}, "subject", "non-empty"},
		{"duplicate header", &kgo.Record{Headers: with("ce_id", "2")}, "id", "duplicate"},
		{"duplicate header other case", &kgo.Record{Headers: with("CE_id", "2")}, "id", "duplicate"},
		{"duplicate content-type", &kgo.Record{Headers: with("content-type", "a/b", "Content-Type", "a/b")}, "content-type", "duplicate"},
		{"invalid extension name", &kgo.Record{Headers: with("ce_my-ext", "x")}, `"my-ext"`, "lower-case"},
		{"upper-case extension name", &kgo.Record{Headers: with("ce_MyExt", "x")}, `"MyExt"`, "lower-case"},
		{"empty extension name", &kgo.Record{Headers: with("ce_", "x")}, `""`, "lower-case"},
		{"data header", &kgo.Record{Headers: with("ce_data", "x")}, "data", "record value"},
		{"invalid UTF-8", &kgo.Record{Headers: with("ce_subject", "a\xffb")}, "subject", "invalid UTF-8"},
		{"control character", &kgo.Record{Headers: with("ce_note", "a\nb")}, "note", "control character"},
		{"bad media type", &kgo.Record{Headers: with("content-type", "not a type")}, "datacontenttype", "media type"},
		{"ce_datacontenttype disagrees", &kgo.Record{Headers: with("ce_datacontenttype", "a/b", "content-type", "c/d")}, "datacontenttype", "disagrees"},
		{"oversized value", &kgo.Record{Value: make([]byte, kafkace.DefaultMaxValueBytes+1), Headers: with()}, "value", "exceeds"},
		{"too many headers", &kgo.Record{Headers: make([]kgo.RecordHeader, kafkace.DefaultMaxHeaders+1)}, "headers", "exceeds"},
		{"oversized headers", &kgo.Record{Headers: with("ce_big", strings.Repeat("x", kafkace.DefaultMaxHeaderBytes))}, "headers", "bytes of headers"},
		{"batch mode", &kgo.Record{Value: []byte("[]"), Headers: h("content-type", "application/cloudevents-batch+json")}, "content-type", "batch"},
		{"other event format", &kgo.Record{Value: []byte("x"), Headers: h("content-type", "application/cloudevents+avro")}, "content-type", "unsupported event format"},
		{"other charset", &kgo.Record{Value: []byte("{}"), Headers: h("content-type", "application/cloudevents+json; charset=latin1")}, "content-type", "charset"},
		{"structured not an object", structured(`[1]`), "value", "JSON object"},
		{"structured truncated", structured(`{"specversion":"1.0",`), "value", "malformed"},
		{"structured trailing data", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t"} {}`), "value", "trailing"},
		{"structured invalid UTF-8", structured("{\"specversion\":\"1.0\",\"id\":\"\xff\"}"), "value", "UTF-8"},
		{"structured duplicate member", structured(`{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}`), "id", "duplicate"},
		{"structured escaped duplicate", structured(`{"specversion":"1.0","id":"1","i\u0064":"2","source":"/s","type":"t"}`), "id", "duplicate"},
		{"structured missing specversion", structured(`{"id":"1","source":"/s","type":"t"}`), "specversion", "missing"},
		{"structured id not a string", structured(`{"specversion":"1.0","id":1,"source":"/s","type":"t"}`), "id", "JSON string"},
		{"structured control char", structured(`{"specversion":"1.0","id":"a\u0000","source":"/s","type":"t"}`), "id", "control character"},
		{"structured bad extension name", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad":"x"}`), `"Bad"`, "lower-case"},
		{"structured float extension", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","n":1.5}`), "n", "integer"},
		{"structured object extension", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","o":{}}`), "o", "string, integer or boolean"},
		{"structured data and data_base64", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}`), "data", "mutually exclusive"},
		{"structured bad base64", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"!!"}`), "data_base64", "base64"},
		{"structured too many members", structured(`{"a0":1,"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1,"b0":1,"b1":1,"b2":1,"b3":1,"b4":1,"b5":1,"b6":1,"b7":1,"b8":1,"b9":1,"c0":1,"c1":1,"c2":1,"c3":1,"c4":1,"c5":1,"c6":1,"c7":1,"c8":1,"c9":1,"d0":1,"d1":1,"d2":1,"d3":1,"d4":1,"d5":1,"d6":1,"d7":1,"d8":1,"d9":1,"e0":1,"e1":1,"e2":1,"e3":1,"e4":1,"e5":1,"e6":1,"e7":1,"e8":1,"e9":1,"f0":1,"f1":1,"f2":1,"f3":1,"f4":1,"f5":1,"f6":1,"f7":1,"f8":1,"f9":1,"g0":1,"g1":1,"g2":1,"g3":1,"g4":1}`), "value", "more than 64 members"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := kafkace.Decode(c.record)
			var de *kafkace.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error = %v, want *DecodeError", err)
			}
			if de.Attribute != c.attr || !strings.Contains(de.Reason, c.reasonPart) {
				t.Errorf("got attribute %q reason %q; want attribute %q reason containing %q", de.Attribute, de.Reason, c.attr, c.reasonPart)
			}
			if !strings.Contains(err.Error(), c.attr) {
				t.Errorf("message %q does not name the attribute", err)
			}
		})
	}
}

func TestDecoderLimits(t *testing.T) {
	t.Parallel()
	r, err := kafkace.Encode(fullEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	d := kafkace.Decoder{MaxValueBytes: 8}
	var de *kafkace.DecodeError
	if _, err := d.Decode(r); !errors.As(err, &de) || de.Attribute != "value" {
		t.Errorf("error = %v, want a value limit error", err)
	}
	d = kafkace.Decoder{MaxHeaders: 3}
	if _, err := d.Decode(r); !errors.As(err, &de) || de.Attribute != "headers" {
		t.Errorf("error = %v, want a header limit error", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	t.Parallel()
	e := cloudevents.NewEvent()
	e.SetSource("/s")
	e.SetType("t")
	if _, err := kafkace.Encode(e); err == nil || !strings.Contains(err.Error(), "id") {
		t.Errorf("missing id: error = %v", err)
	}
	e.SetID("1")
	e.SetSubject("line\nbreak")
	if _, err := kafkace.Encode(e); err == nil || !strings.Contains(err.Error(), "subject") {
		t.Errorf("control character: error = %v", err)
	}
	v03 := cloudevents.NewEvent(cloudevents.VersionV03)
	v03.SetID("1")
	v03.SetSource("/s")
	v03.SetType("t")
	if _, err := kafkace.Encode(v03); err == nil || !strings.Contains(err.Error(), "specversion") {
		t.Errorf("v0.3: error = %v", err)
	}
	if _, err := kafkace.Encode(cloudevents.Event{}); err == nil {
		t.Error("empty event encoded")
	}
}
