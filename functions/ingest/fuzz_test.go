package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// FuzzDecodeRequest: whatever the body and content type, the decoder never panics, answers a
// request-level refusal as a 4xx problem, and gives every event of a batch either an event or
// a reason.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(ContentTypeBatch, `[{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}, 7, {"id": 3}]`)
	f.Add(ContentTypeStructured, `{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"x","data":{}}`)
	f.Add(ContentTypeBatch, `[]`)
	f.Add("application/json", `{}`)
	f.Add(ContentTypeBatch, `[{"specversion":"1.0","id":"\u0000","source":"%zz","type":"t","time":"yesterday"}]`)
	f.Fuzz(func(t *testing.T, ct, body string) {
		h := http.Header{"Content-Type": {ct}}
		items, err := decodeRequest(h, []byte(body), 50)
		if err != nil {
			if p := problemStatus(err); p < 400 || p > 499 {
				t.Fatalf("refusal with status %d: %v", p, err)
			}
			return
		}
		if len(items) == 0 || len(items) > 50 {
			t.Fatalf("%d items", len(items))
		}
		for _, it := range items {
			if (it.Event == nil) == (len(it.Problems) == 0) {
				t.Fatalf("item %d: event %v, problems %v", it.Index, it.Event != nil, it.Problems)
			}
			if it.Event != nil {
				if err := it.Event.Validate(); err != nil {
					t.Fatalf("decoded an invalid event: %v", err)
				}
			}
		}
	})
}

// splitReference is how a batch was split before splitArray: json.Unmarshal into
// []json.RawMessage.
func splitReference(body []byte) ([][]byte, bool) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, false
	}
	out := make([][]byte, len(raws))
	for i, r := range raws {
		out[i] = r
	}
	return out, true
}

func TestSplitArraySameAsUnmarshal(t *testing.T) {
	for _, body := range []string{
		`[]`, ` [ ] `, `null`, ` null `, `nul`, `[`, `[1,]`, `{}`, `"x"`, `7`, `true`, ``, ` `,
		`[1, "a\"],[", {"b":[1,{"c":"}"}]}, [], null, true, -1.5e3 ]`, "[\n{\"a\":\"\\\\\"}\t,\r2]",
		`[{"a":1}] x`, `[{"a":1}][]`, "[\"\xff\"]",
	} {
		want, wantOK := splitReference([]byte(body))
		got, gotOK := splitArray([]byte(body))
		if wantOK != gotOK || !slices.EqualFunc(want, got, bytes.Equal) {
			t.Errorf("%q: Unmarshal %v %q, splitArray %v %q", body, wantOK, want, gotOK, got)
		}
	}
}

// FuzzSplitArray: splitArray splits every body as json.Unmarshal into []json.RawMessage does.
func FuzzSplitArray(f *testing.F) {
	f.Add(`[{"specversion":"1.0","id":"1","data":{"a":[1,"]"]}}, 7, "x\"y", null]`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, body string) {
		want, wantOK := splitReference([]byte(body))
		got, gotOK := splitArray([]byte(body))
		if wantOK != gotOK || !slices.EqualFunc(want, got, bytes.Equal) {
			t.Fatalf("%q: Unmarshal %v %q, splitArray %v %q", body, wantOK, want, gotOK, got)
		}
	})
}
