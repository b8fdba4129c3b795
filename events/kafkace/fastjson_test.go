package kafkace

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// strictJSON is the reference: the strict decoder on a structured-mode record without key.
func strictJSON(d Decoder, value []byte) (cloudevents.Event, error) {
	return d.Decode(&kgo.Record{
		Headers: []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte(ContentTypeStructuredJSON)}},
		Value:   value,
	})
}

// sameDecision fails unless DecodeStructuredJSON and the strict decoder accept and refuse
// value alike, with equal events or equal errors; it reports whether the fast path decided.
func sameDecision(t testing.TB, d Decoder, value []byte) bool {
	t.Helper()
	want, wantErr := strictJSON(d, value)
	got, gotErr := d.DecodeStructuredJSON(value)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: strict %v, fast path %v", value, wantErr, gotErr)
	}
	if wantErr != nil {
		var w, g *DecodeError
		if !errors.As(wantErr, &w) || !errors.As(gotErr, &g) || *w != *g {
			t.Fatalf("%q: strict %v, fast path %v", value, wantErr, gotErr)
		}
		if _, ok := d.fastJSON(value); ok {
			t.Fatalf("%q: the fast path accepted what the strict decoder refuses (%v)", value, wantErr)
		}
		return false
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%q: events differ:\nstrict %#v\n  fast %#v", value, want, got)
	}
	_, fast := d.fastJSON(value)
	return fast
}

// common is the shape ingest receives: the fast path must decide it (else it is no faster).
const common = `{"specversion":"1.0","id":"e1","source":"/coins","type":"com.myscrollr.connect.record.pushed",` +
	`"subject":"prices","time":"2026-01-02T03:04:05.123+01:00","user":"u1","datacontenttype":"application/json",` +
	`"data":{"coin":"btc","cents":12,"tags":["a","\"}"],"n":{"x":null}}}`

func TestDecodeStructuredJSONFastPathDecidesTheCommonShape(t *testing.T) {
	for _, v := range []string{
		common,
		" \n{ \"specversion\" : \"1.0\" , \"id\":\"1\",\"source\":\"s\",\"type\":\"t\" }\t",
		`{"specversion":"1.0","id":"1","source":"https://x.example/a?b=c","type":"t","data":{}}`,
		`{"data":{"a":1},"type":"t","source":"/s","id":"1","specversion":"1.0","datacontenttype":"text/plain"}`,
	} {
		if !sameDecision(t, Decoder{}, []byte(v)) {
			t.Errorf("%s: the fast path did not decide", v)
		}
	}
}

// Each case leaves the fast path (or is refused) and must still get the strict answer.
func TestDecodeStructuredJSONSameAsStrict(t *testing.T) {
	base := strings.TrimSuffix(common, "}")
	cases := []string{
		``, `null`, `[]`, `{}`, `{"specversion":"1.0"}`, `"x"`, `{`, common + `x`, common + ` {}`,
		base + `,"id":"again"}`, base + `,"data":{}}`, base + `,"Bad":"x"}`, base + `,"ext":1}`,
		base + `,"ext":true}`, base + `,"ext":null}`, base + `,"ext":"a\u0041"}`, base + `,"ext":"\u007f"}`,
		base + `,"ext":"` + "\x7f" + `"}`, base + `,"ext":"` + "\x01" + `"}`, base + `,"ext":"\ufdd0"}`,
		base + `,"data_base64":"AA=="}`, base + `,}`, base + `,"ext":"x",}`, base + "\xff}",
		strings.Replace(common, `"time":"2026-01-02T03:04:05.123+01:00"`, `"time":"yesterday"`, 1),
		strings.Replace(common, `"specversion":"1.0"`, `"specversion":"0.3"`, 1),
		strings.Replace(common, `"source":"/coins"`, `"source":"%zz"`, 1),
		strings.Replace(common, `"source":"/coins"`, `"source":""`, 1),
		strings.Replace(common, `"id":"e1",`, ``, 1),
		strings.Replace(common, `"subject":"prices"`, `"subject":""`, 1),
		strings.Replace(common, `"datacontenttype":"application/json"`, `"datacontenttype":"a b"`, 1),
		strings.Replace(common, `"datacontenttype":"application/json"`, `"dataschema":"rel/x"`, 1),
		strings.Replace(common, `"data":{`, `"data":[1,{`, 1) + `]`,
		strings.Replace(common, `"data":{`, `"data":"{`, 1),
		strings.Replace(common, `"data":{"coin"`, `"data":{"coin":}`, 1),
		strings.Replace(common, `"data":{"coin":"btc"`, `"data":{"coin":"btc}`, 1),
		strings.Replace(common, `"data":{`, `"data":null,"x":{`, 1),
		strings.Replace(common, `"data":{"coin":"btc",`, `"data":{"coin":"btc"`, 1),
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"x"}`,
	}
	for _, v := range cases {
		sameDecision(t, Decoder{}, []byte(v))
	}
	// The limits: the member bound and the value bound.
	d := Decoder{MaxHeaders: 5, MaxValueBytes: len(common)}
	sameDecision(t, d, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","a":"1"}`))
	sameDecision(t, d, []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","a":"1","b":"2"}`))
	sameDecision(t, d, []byte(common))
	sameDecision(t, d, []byte(common+" "))
	// More members than the fast path keeps on its stack.
	many := base
	for i := range 40 {
		many += `,"x` + strings.Repeat("a", i) + `":"v"`
	}
	if !sameDecision(t, Decoder{}, []byte(many+"}")) {
		t.Error("40 extensions: the fast path did not decide")
	}
	sameDecision(t, Decoder{}, []byte(many+`,"xaaaa":"dup"}`))
}

// FuzzDecodeStructuredJSON: whatever the value, the fast path and the strict decoder make the
// same decision, with equal events or equal errors.
func FuzzDecodeStructuredJSON(f *testing.F) {
	f.Add([]byte(common))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":[1,"]"]}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAE=","n":-3,"b":true}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"x"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		sameDecision(t, Decoder{MaxHeaders: 8}, value)
	})
}
