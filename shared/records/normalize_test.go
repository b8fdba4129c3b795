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
