package kafkace_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
)

// packHeaders serialises headers for the fuzzer: per header a 1-byte key length, the key, a
// 2-byte big-endian value length, the value.
func packHeaders(hs []kgo.RecordHeader) []byte {
	var b []byte
	for _, h := range hs {
		b = append(b, byte(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

func unpackHeaders(b []byte) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for len(b) > 0 {
		kl := int(b[0])
		b = b[1:]
		if kl > len(b) {
			kl = len(b)
		}
		key := string(b[:kl])
		b = b[kl:]
		var val []byte
		if len(b) >= 2 {
			vl := int(binary.BigEndian.Uint16(b))
			b = b[2:]
			vl = min(vl, len(b))
			val, b = b[:vl], b[vl:]
		}
		hs = append(hs, kgo.RecordHeader{Key: key, Value: val})
	}
	return hs
}

func FuzzDecode(f *testing.F) {
	full := fullEvent(f)
	r, err := kafkace.Encode(full)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.Key, r.Value, packHeaders(r.Headers))
	structured, err := json.Marshal(full)
	if err != nil {
		f.Fatal(err)
	}
	ctJSON := []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents+json")}}
	f.Add([]byte("k"), structured, packHeaders(ctJSON))
	f.Add([]byte(nil), []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"x","n":-3,"b":true}`), packHeaders(ctJSON))
	f.Add([]byte(nil), []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAE="}`), packHeaders(ctJSON))
	minimal := []kgo.RecordHeader{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte("1")},
		{Key: "ce_source", Value: []byte("/s")},
		{Key: "ce_type", Value: []byte("t")},
	}
	f.Add([]byte(nil), []byte(nil), packHeaders(minimal))
	f.Add([]byte("key"), []byte("data"), packHeaders(append(slices.Clone(minimal),
		kgo.RecordHeader{Key: "ce_time", Value: []byte("2018-04-05T03:56:24.5+02:00")},
		kgo.RecordHeader{Key: "ce_source", Value: []byte("/dup")},
	)))
	f.Add([]byte(nil), []byte("x"), packHeaders(append(slices.Clone(minimal),
		kgo.RecordHeader{Key: "content-type", Value: []byte("text/plain; charset=utf-8")},
		kgo.RecordHeader{Key: "ce_dataschema", Value: []byte("https://example.com/s#frag")},
	)))
	f.Add([]byte(nil), []byte("[]"), packHeaders([]kgo.RecordHeader{{Key: "content-type", Value: []byte("application/cloudevents-batch+json")}}))

	f.Fuzz(func(t *testing.T, key, value, headers []byte) {
		r := &kgo.Record{Key: key, Value: value, Headers: unpackHeaders(headers)}
		e1, err := kafkace.Decode(r)
		if err != nil {
			var de *kafkace.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		r2, err := kafkace.Encode(e1)
		if err != nil {
			t.Fatalf("decoded event does not re-encode: %v\nevent: %v", err, e1)
		}
		e2, err := kafkace.Decode(r2)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\nheaders: %v", err, r2.Headers)
		}
		assertEqualEvents(t, e1, e2)
		r3, err := kafkace.Encode(e2)
		if err != nil {
			t.Fatal(err)
		}
		if !recordsEqual(r2, r3) {
			t.Fatalf("encoding is not stable:\n%v\n%v", r2.Headers, r3.Headers)
		}
	})
}

func recordsEqual(a, b *kgo.Record) bool {
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) &&
		slices.EqualFunc(a.Headers, b.Headers, func(x, y kgo.RecordHeader) bool {
			return x.Key == y.Key && bytes.Equal(x.Value, y.Value)
		})
}
