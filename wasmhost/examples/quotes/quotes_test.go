package quotes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Append (the scanner) and AppendJSON (encoding/json) answer the same on well-formed records,
// good and bad, so the benchmark's pairs compare like with like.
func TestAppendMatchesAppendJSON(t *testing.T) {
	cases := []string{
		`{"symbol":"aapl","price":"187.23","currency":"usd","ts":1700000000,"volume":1234567}`,
		`{"symbol":"BRK.B","price":"1","currency":"USD","ts":0}`,
		` { "ts" : 5 , "currency":"eur", "price":"0.5", "symbol":"x-y", "extra":{"a":[1,"}",{"b":null}]} } `,
		`{"symbol":"msft","price":"12.345","currency":"usd","ts":1700000000}`,
		`{"symbol":"","price":"1.00","currency":"usd","ts":1700000000}`,
		`{"symbol":"goog","price":"1.00","currency":"dollars","ts":1700000000}`,
		`{"symbol":"goog","price":"1.00","currency":"usd","ts":-4}`,
		`{"symbol":"goog","price":"1.","currency":"usd","ts":4}`,
		`{"symbol":"goog","currency":"usd","ts":4}`,
		`{"symbol":"goog","price":null,"currency":"usd","ts":4}`,
		`{"symbol":"goog","price":"1","currency":"usd"}`,
		`{"symbol":"goog","price":"1","currency":"usd","ts":4,"volume":-1}`,
		`{"symbol":"goog","price":"1","currency":"usd","ts":4,"volume":null}`,
		`{"symbol":"a","symbol":"b","price":"1","currency":"usd","ts":4}`,
		`{}`,
	}
	for i := range 50 {
		cases = append(cases, fmt.Sprintf(`{"symbol":"sym%d","price":"%d.%02d","currency":"usd","ts":%d,"volume":%d,"exchange":"nasdaq"}`, i, 100+i, i, 1700000000+i, 1000*i))
	}
	for _, c := range cases {
		a, pa := Append(nil, Stream, []byte(c))
		j, pj := AppendJSON(nil, Stream, []byte(c))
		if string(a) != string(j) || (pa == nil) != (pj == nil) || (pa != nil && *pa != *pj) {
			t.Errorf("%s:\n scan %s %+v\n json %s %+v", c, a, pa, j, pj)
		}
	}
	for _, c := range []string{`[]`, `{"symbol":"a"`, `{"symbol":"a",}`, `nope`, `{"a":1} x`} {
		if _, p := Append(nil, Stream, []byte(c)); p == nil || p.Field != "" {
			t.Errorf("%s: %+v, want the record refused as a whole", c, p)
		}
	}
}

func FuzzAppend(f *testing.F) {
	f.Add([]byte(`{"symbol":"aapl","price":"187.23","currency":"usd","ts":1700000000,"volume":1}`))
	f.Add([]byte(`{"a":[{"b":"\"}"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, p := Append(nil, Stream, b)
		// The host hands a transform valid JSON only (records.Check); the scanner matches
		// member names exactly and does not decode escapes, encoding/json does both.
		var members map[string]json.RawMessage
		if !json.Valid(b) || bytes.IndexByte(b, '\\') >= 0 || json.Unmarshal(b, &members) != nil {
			return
		}
		for k := range members {
			for _, known := range []string{"symbol", "price", "currency", "ts", "volume"} {
				if k != known && strings.EqualFold(k, known) {
					return
				}
			}
		}
		if p == nil {
			// Whatever the scanner accepts, encoding/json accepts with the same answer.
			j, pj := AppendJSON(nil, Stream, b)
			if pj != nil || string(j) != string(out) {
				t.Fatalf("%q: scan %s, json %s %+v", b, out, j, pj)
			}
		}
	})
}
