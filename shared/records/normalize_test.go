package records

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// batchFake is a BatchNormalizer that counts its calls, refuses records whose n is odd, and
// answers n = 100 with an array (not storable).
type batchFake struct {
	calls *int
	fail  error
}

func (b batchFake) Normalize(context.Context, Source, string, json.RawMessage) (json.RawMessage, error) {
	return nil, errors.New("the batch path must be used")
}

func (b batchFake) NormalizeBatch(_ context.Context, _ Source, in []BatchInput) ([]BatchOutput, error) {
	*b.calls++
	if b.fail != nil {
		return nil, b.fail
	}
	out := make([]BatchOutput, len(in))
	for i, r := range in {
		var v struct{ N int }
		if err := json.Unmarshal(r.Data, &v); err != nil {
			return nil, err
		}
		switch {
		case v.N == 100:
			out[i].Data = json.RawMessage(`[1]`)
		case v.N%2 == 1:
			out[i].Problems = []Problem{{Field: "/n", Reason: "odd"}}
		default:
			out[i].Data = json.RawMessage(`{"normalized":` + string(r.Data) + `}`)
		}
	}
	return out, nil
}

func TestCheckPullBatch(t *testing.T) {
	sch, err := ParsePullSchema([]byte(`{"streams": [{"name": "s", "key": ["k"], "schema": {"type": "object", "required": ["k", "n"], "properties": {"n": {"type": "integer"}}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	items, err := ParsePullData([]byte(`{"records": [
		{"stream": "s", "data": {"k": "a", "n": 2}},
		{"stream": "s", "data": {"k": "b", "n": 3}},
		{"stream": "s", "data": {"k": "c", "n": "x"}},
		{"stream": "s", "data": {"k": "d", "n": 100}},
		{"stream": "s", "data": {"k": "e", "n": 4}}]}`), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	good, bad, err := CheckPull(context.Background(), Source{Name: "t"}, sch, items, batchFake{calls: &calls})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("%d calls to NormalizeBatch, want one for the batch", calls)
	}
	if len(good) != 2 || good[0].Key != "a" || string(good[0].Data) != `{"normalized":{"k":"a","n":2}}` || good[1].Key != "e" {
		t.Fatalf("good = %+v", good)
	}
	var got []string
	for _, r := range bad {
		for _, p := range r.Problems {
			got = append(got, r.Key+" "+p.String())
		}
	}
	want := "b /data/n: odd\nc /data/n: got string, want integer\nd /data: normalizer output is not a JSON object"
	if strings.Join(got, "\n") != want {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}

	// The normalizer failing as a whole fails the batch; a batch with no valid record does
	// not call it.
	if _, _, err := CheckPull(context.Background(), Source{Name: "t"}, sch, items, batchFake{calls: &calls, fail: errors.New("module trapped")}); err == nil || !strings.Contains(err.Error(), "module trapped") {
		t.Fatalf("batch failure: %v", err)
	}
	calls = 0
	if _, bad, err := CheckPull(context.Background(), Source{Name: "t"}, sch, items[2:3], batchFake{calls: &calls}); err != nil || len(bad) != 1 || calls != 0 {
		t.Fatalf("no valid record: %d rejections, %d calls, %v", len(bad), calls, err)
	}
}

func TestAsBatchKeepsPerRecordNormalizers(t *testing.T) {
	out, err := AsBatch(refuseOdd{}).NormalizeBatch(context.Background(), Source{}, []BatchInput{{"s", json.RawMessage(`{"k":"x","n":1}`)}, {"s", json.RawMessage(`{"k":"x","n":2}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out[0].Problems) != 1 || out[0].Problems[0].Reason != "odd" || string(out[1].Data) != `{"n":2}` {
		t.Fatalf("%+v", out)
	}
	if _, ok := AsBatch(nil).(perRecord); !ok {
		t.Fatal("AsBatch(nil) is not Identity per record")
	}
}

// NormalizeRecords keeps the order, refuses what the normalizer refuses or answers badly, and
// replaces the data of the others; an error changes nothing.
func TestNormalizeRecords(t *testing.T) {
	ctx := context.Background()
	recs := []Record{
		{Stream: "s", Key: "a", Data: json.RawMessage(`{"v":1}`)},
		{Stream: "s", Key: "b", Data: json.RawMessage(`{"v":"refuse"}`)},
		{Stream: "s", Key: "c", Data: json.RawMessage(`{"v":"array"}`)},
		{Stream: "s", Key: "d", Data: json.RawMessage(`{"v":4}`)},
	}
	n := batchFunc(func(in []BatchInput) ([]BatchOutput, error) {
		out := make([]BatchOutput, len(in))
		for i, r := range in {
			switch string(r.Data) {
			case `{"v":"refuse"}`:
				out[i].Problems = []Problem{{Field: "/v", Reason: "no"}}
			case `{"v":"array"}`:
				out[i].Data = json.RawMessage(`[1]`)
			default:
				out[i].Data = json.RawMessage(`{"n":` + string(r.Data) + `}`)
			}
		}
		return out, nil
	})
	ps, err := NormalizeRecords(ctx, Source{Name: "x"}, recs, n)
	if err != nil {
		t.Fatal(err)
	}
	if ps[0] != nil || ps[3] != nil || string(recs[0].Data) != `{"n":{"v":1}}` || string(recs[3].Data) != `{"n":{"v":4}}` {
		t.Fatalf("kept: %+v %+v %s %s", ps[0], ps[3], recs[0].Data, recs[3].Data)
	}
	if len(ps[1]) != 1 || ps[1][0].Field != "/v" || string(recs[1].Data) != `{"v":"refuse"}` {
		t.Fatalf("refused: %+v %s", ps[1], recs[1].Data)
	}
	if len(ps[2]) != 1 || ps[2][0].Reason != "normalizer output is not a JSON object" {
		t.Fatalf("bad output: %+v", ps[2])
	}
	failing := batchFunc(func([]BatchInput) ([]BatchOutput, error) { return nil, errors.New("trap") })
	before := string(recs[0].Data)
	if _, err := NormalizeRecords(ctx, Source{Name: "x"}, recs, failing); err == nil || string(recs[0].Data) != before {
		t.Fatalf("a failing batch: %v, data %s", err, recs[0].Data)
	}
}

type batchFunc func([]BatchInput) ([]BatchOutput, error)

func (f batchFunc) Normalize(context.Context, Source, string, json.RawMessage) (json.RawMessage, error) {
	return nil, errors.New("batches only")
}

func (f batchFunc) NormalizeBatch(_ context.Context, _ Source, in []BatchInput) ([]BatchOutput, error) {
	return f(in)
}
