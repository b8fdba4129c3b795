package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCompileSchemaRefusesRemoteAndBounds(t *testing.T) {
	for _, tc := range []struct{ schema, want string }{
		{`{"$ref": "https://example.com/s.json"}`, "only local references"},
		{`{"$ref": "file:///etc/passwd"}`, "only local references"},
		{`{"$defs": {"a": {"$id": "https://example.com/a"}}}`, "embedded resources are not supported"},
		{`{"$dynamicRef": "#x"}`, "not supported"},
		{`{"allOf": [{"$ref": "#"}]}`, "never descends"},
		{costly(25), "too costly"},
		{costly(13), "too costly"},
		{`{"$schema": "https://example.com/meta"}`, "remote references are not loaded"},
		{`{"type": "object"`, "not valid JSON"},
		{`[1]`, "must be a JSON Schema object"},
		{`{"type": "nope"}`, "not a valid JSON Schema"},
		{`{"pattern": "("}`, "not a valid JSON Schema"},
		{strings.Repeat(`{"items":`, 40) + `{}` + strings.Repeat(`}`, 40), "nested deeper"},
		{`{"description": "` + strings.Repeat("x", MaxSchemaBytes) + `"}`, "larger than"},
	} {
		if _, err := CompileSchema([]byte(tc.schema)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60s: err = %v, want %q", tc.schema, err, tc.want)
		}
	}
	// Local references, anchors, recursion through members and modest combinators are fine.
	for _, ok := range []string{
		`{"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}`,
		`{"$id": "https://example.com/tree", "properties": {"child": {"$ref": "#"}, "n": {"$ref": "#num"}}, "$defs": {"x": {"$anchor": "num", "type": "number"}}}`,
		costly(8),
	} {
		if _, err := CompileSchema([]byte(ok)); err != nil {
			t.Errorf("%.80s: %v", ok, err)
		}
	}
}

// costly is a chain of n definitions, each an anyOf of two references to the next: 2^n
// evaluations for one value.
func costly(n int) string {
	var defs []string
	for i := range n {
		defs = append(defs, fmt.Sprintf(`"d%d": {"anyOf": [{"$ref": "#/$defs/d%d"}, {"$ref": "#/$defs/d%d"}]}`, i, i+1, i+1))
	}
	defs = append(defs, fmt.Sprintf(`"d%d": {"type": "string"}`, n))
	return `{"$defs": {` + strings.Join(defs, ", ") + `}, "$ref": "#/$defs/d0"}`
}

// refuseOdd refuses records whose "n" is odd and fails outright on n = 13.
type refuseOdd struct{}

func (refuseOdd) Normalize(_ context.Context, _ Source, _ string, rec json.RawMessage) (json.RawMessage, error) {
	var v struct{ N int }
	_ = json.Unmarshal(rec, &v)
	switch {
	case v.N == 13:
		return nil, errors.New("module trapped")
	case v.N%2 == 1:
		return nil, &RecordError{Problems: []Problem{{Field: "/n", Reason: "odd"}}}
	}
	return json.RawMessage(`{"n":` + string(rec[len(`{"k":"x","n":`):])), nil
}

func TestCheckPull(t *testing.T) {
	sch, err := ParsePullSchema([]byte(`{"streams": [
		{"name": "s", "key": ["k"], "schema": {"type": "object", "required": ["k", "n"], "properties": {"n": {"type": "integer"}, "at": {"format": "date-time"}}}},
		{"name": "pair", "key": ["a", "b"], "schema": {"type": "object"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if sch.RefreshInterval != DefaultRefreshInterval {
		t.Errorf("refresh = %s", sch.RefreshInterval)
	}
	items, err := ParsePullData([]byte(`{"records": [
		{"stream": "s", "data": {"k": "x", "n": 2}},
		{"stream": "s", "data": {"k": "y", "n": 3}},
		{"stream": "s", "data": {"k": "z", "n": "2", "at": "yesterday"}},
		{"stream": "s", "data": {"k": "w\u0000", "n": 2}},
		{"stream": "pair", "data": {"a": "p", "b": 7}},
		{"stream": "pair", "data": {"a": 1.5, "b": 7}},
		{"stream": 5, "data": []},
		{"stream": "ghost", "data": {}}]}`), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	good, bad, err := CheckPull(context.Background(), Source{Name: "t"}, sch, items, refuseOdd{})
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 2 || good[0].Key != "x" || good[1].Key != `["p",7]` {
		t.Fatalf("good = %+v", good)
	}
	var got []string
	for _, r := range bad {
		for _, p := range r.Problems {
			got = append(got, r.Key+" "+p.String())
		}
	}
	want := []string{
		"y /data/n: odd",
		"z /data/at: 'yesterday' is not valid date-time: less than 20 characters long",
		"z /data/n: got string, want integer",
		"w\x00 /data/k: contains a NUL character (\\u0000), which cannot be stored",
		" /data/a: key member: must be a string or an integer",
		" /data: got array, want object",
		" /stream: got number, want string",
		` /stream: stream "ghost" is not declared at GET /schema`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A normalizer failing as a whole fails the batch.
	items, _ = ParsePullData([]byte(`{"records": [{"stream": "s", "data": {"k": "x", "n": 13}}]}`), 1<<20)
	if _, _, err := CheckPull(context.Background(), Source{Name: "t"}, sch, items, refuseOdd{}); err == nil || !strings.Contains(err.Error(), "module trapped") {
		t.Errorf("normalizer failure: %v", err)
	}
}

func TestParseDocumentsRefusedWhole(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"records": {}}`, `"/records": got object, want array`},
		{`{"records": [], "more": 1}`, `"/more": unknown field`},
		{`[]`, "got array, want object"},
		{"{\"records\": [\"\xff\"]}", "not valid UTF-8"},
		{`{"records": []}` + strings.Repeat(" ", 100), "larger than 100 bytes"},
	} {
		_, err := ParsePullData([]byte(tc.body), 100)
		var de *DocumentError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a DocumentError with %q", tc.body, err, tc.want)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{`{"streams": [{"name": "a", "key": ["k"], "schema": {}}, {"name": "a", "key": ["k"], "schema": {}}]}`, `"/streams/1/name": duplicate stream "a"`},
		{`{"streams": [{"name": "A", "key": [], "schema": true}]}`, `"/streams/0/key": minItems`},
		{`{"streams": [{"name": "a", "key": ["k"], "schema": {"const": "\u0000"}}]}`, "NUL"},
		{`{"refresh_interval_seconds": 0, "streams": [{"name": "a", "key": ["k"], "schema": {}}]}`, `"/refresh_interval_seconds": minimum`},
	} {
		_, err := ParsePullSchema([]byte(tc.body))
		var de *DocumentError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a DocumentError with %q", tc.body, err, tc.want)
		}
	}
}

func TestChunks(t *testing.T) {
	recs := make([]Record, 7)
	for i := range recs {
		recs[i] = Record{Data: json.RawMessage(strings.Repeat("x", 10))}
	}
	var sizes []int
	for _, c := range chunks(recs, 3, 25) {
		sizes = append(sizes, len(c))
	}
	if len(sizes) != 4 || sizes[0] != 2 || sizes[3] != 1 {
		t.Errorf("chunk sizes = %v, want [2 2 2 1] (25 bytes hold two records of 10)", sizes)
	}
	if got := chunks(recs[:1], 3, 5); len(got) != 1 {
		t.Errorf("a record over the byte bound still gets its own chunk: %v", got)
	}
}

// FuzzParsePull holds the parsers of GET /schema and GET /data to: no panic, and an accepted
// document's records are either stored or rejected, each exactly once, with keys in bounds.
func FuzzParsePull(f *testing.F) {
	f.Add([]byte(`{"streams": [{"name": "s", "key": ["k"], "schema": {"type": "object"}}]}`), []byte(`{"records": [{"stream": "s", "data": {"k": "a"}}]}`))
	f.Add([]byte(`{"streams": [{"name": "s", "key": ["k", "j"], "schema": {"properties": {"k": {"pattern": "^a+$"}}}}]}`), []byte(`{"records": [{"stream": "s", "data": {"k": 1, "j": "x"}}, {"stream": "s"}]}`))
	f.Add([]byte(`{"streams": [{"name": "s", "key": ["k"], "schema": {"$ref": "#/$defs/x", "$defs": {"x": {"$ref": "#/$defs/x"}}}}]}`), []byte(`{"records": []}`))
	f.Fuzz(func(t *testing.T, schemaBody, dataBody []byte) {
		sch, err := ParsePullSchema(schemaBody)
		if err != nil {
			var de *DocumentError
			if !errors.As(err, &de) || len(de.Problems) == 0 {
				t.Fatalf("schema refused without problems: %v", err)
			}
			return
		}
		if len(sch.Streams) == 0 {
			t.Fatal("accepted a schema without streams")
		}
		items, err := ParsePullData(dataBody, 1<<20)
		if err != nil {
			var de *DocumentError
			if !errors.As(err, &de) || len(de.Problems) == 0 {
				t.Fatalf("data refused without problems: %v", err)
			}
			return
		}
		good, bad, err := CheckPull(context.Background(), Source{}, sch, items, Identity{})
		if err != nil {
			t.Fatal(err)
		}
		if len(good)+len(bad) != len(items) {
			t.Fatalf("%d items became %d good + %d bad", len(items), len(good), len(bad))
		}
		for _, r := range good {
			if r.Key == "" || len([]rune(r.Key)) > MaxKeyLen || !StreamName.MatchString(r.Stream) || !json.Valid(r.Data) || checkOutput(r.Data) != "" {
				t.Fatalf("stored record out of bounds: %+v", r)
			}
		}
		for _, r := range bad {
			if len(r.Problems) == 0 || len(r.Problems) > MaxProblems {
				t.Fatalf("rejection with %d problems", len(r.Problems))
			}
		}
	})
}

// FuzzCompileSchema: any input compiles or is refused with an error; a compiled schema
// validates a record without panicking.
func FuzzCompileSchema(f *testing.F) {
	f.Add([]byte(`{"type": "object", "properties": {"a": {"type": "integer"}}}`), []byte(`{"a": 1}`))
	f.Add([]byte(`{"allOf": [{"$ref": "#"}]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, schema, record []byte) {
		s, err := CompileSchema(schema)
		if err != nil {
			return
		}
		var v any
		if json.Unmarshal(record, &v) != nil {
			return
		}
		for _, p := range s.Validate(v) {
			if p.Reason == "" {
				t.Fatalf("problem without a reason at %q", p.Field)
			}
		}
	})
}
