package records

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/eventschema"
)

// agree fails unless dataReceived.CheckSchema and the JSON Schema validator give d the same
// verdict; it returns that verdict.
func agree(t testing.TB, d dataReceived) bool {
	t.Helper()
	raw, err := json.Marshal(d)
	if err != nil {
		return false // the outbox refuses what does not marshal before any check
	}
	want := eventschema.Validate(events.TypeDataReceived, raw)
	got := d.CheckSchema(events.TypeDataReceived)
	if (want == nil) != (got == nil) {
		t.Fatalf("%s\nschema: %v\n check: %v", raw, want, got)
	}
	return want == nil
}

func validReceived() dataReceived {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	return dataReceived{IntegrationID: "0190f6c2-7d3e-7a1b-9c2d-3e4f5a6b7c8d", Name: "coins", DeliveryMode: events.DeliveryPush,
		RecordCount: 2, ReceivedAt: at, Records: []events.DataRecord{
			{Stream: "prices", Key: "btc", Data: json.RawMessage(`{"cents":1}`)},
			{Stream: "p_2", Key: "k", User: "u1", ObservedAt: at, SchemaVersion: "1.0.0", Data: json.RawMessage(` {}`)},
		}}
}

func TestDataReceivedCheckEqualsSchema(t *testing.T) {
	if !agree(t, validReceived()) {
		t.Fatal("the valid payload is refused")
	}
	long := func(n int) string { return strings.Repeat("é", n) }
	cases := map[string]func(d *dataReceived){
		"uuid upper":       func(d *dataReceived) { d.IntegrationID = strings.ToUpper(d.IntegrationID) },
		"uuid short":       func(d *dataReceived) { d.IntegrationID = d.IntegrationID[:35] },
		"uuid no dashes":   func(d *dataReceived) { d.IntegrationID = strings.ReplaceAll(d.IntegrationID, "-", "") + "0000" },
		"uuid bad hex":     func(d *dataReceived) { d.IntegrationID = "g" + d.IntegrationID[1:] },
		"uuid moved dash":  func(d *dataReceived) { d.IntegrationID = "0190f6c27-d3e-7a1b-9c2d-3e4f5a6b7c8d" },
		"name one char":    func(d *dataReceived) { d.Name = "c" },
		"name 63":          func(d *dataReceived) { d.Name = "c" + strings.Repeat("-", 62) },
		"name 64":          func(d *dataReceived) { d.Name = "c" + strings.Repeat("-", 63) },
		"name upper":       func(d *dataReceived) { d.Name = "Coins" },
		"name newline":     func(d *dataReceived) { d.Name = "coins\n" },
		"name dash first":  func(d *dataReceived) { d.Name = "-coins" },
		"mode":             func(d *dataReceived) { d.DeliveryMode = "Push" },
		"mode pull":        func(d *dataReceived) { d.DeliveryMode = events.DeliveryPull },
		"count negative":   func(d *dataReceived) { d.RecordCount = -1 },
		"count zero":       func(d *dataReceived) { d.RecordCount = 0 },
		"records nil":      func(d *dataReceived) { d.Records = nil },
		"records empty":    func(d *dataReceived) { d.Records = []events.DataRecord{} },
		"stream upper":     func(d *dataReceived) { d.Records[0].Stream = "Prices" },
		"stream digit":     func(d *dataReceived) { d.Records[0].Stream = "1p" },
		"stream 63":        func(d *dataReceived) { d.Records[0].Stream = "p" + strings.Repeat("_", 62) },
		"stream 64":        func(d *dataReceived) { d.Records[0].Stream = "p" + strings.Repeat("_", 63) },
		"stream empty":     func(d *dataReceived) { d.Records[1].Stream = "" },
		"key empty":        func(d *dataReceived) { d.Records[0].Key = "" },
		"key 256":          func(d *dataReceived) { d.Records[0].Key = long(256) },
		"key 257":          func(d *dataReceived) { d.Records[0].Key = long(257) },
		"key bad utf8":     func(d *dataReceived) { d.Records[0].Key = strings.Repeat("\xff", 256) },
		"key bad utf8 257": func(d *dataReceived) { d.Records[0].Key = strings.Repeat("\xff", 257) },
		"user 128":         func(d *dataReceived) { d.Records[1].User = long(128) },
		"user 129":         func(d *dataReceived) { d.Records[1].User = long(129) },
		"version 128":      func(d *dataReceived) { d.Records[1].SchemaVersion = long(128) },
		"version 129":      func(d *dataReceived) { d.Records[1].SchemaVersion = long(129) },
		"data array":       func(d *dataReceived) { d.Records[0].Data = json.RawMessage(`[1]`) },
		"data string":      func(d *dataReceived) { d.Records[0].Data = json.RawMessage(`"{"`) },
		"data null":        func(d *dataReceived) { d.Records[0].Data = nil },
		"data spaced":      func(d *dataReceived) { d.Records[0].Data = json.RawMessage("\n\t{ \"a\" : [ ] }") },
		"observed year 0":  func(d *dataReceived) { d.Records[1].ObservedAt = time.Date(0, 2, 29, 0, 0, 0, 0, time.UTC) },
		"observed 9999": func(d *dataReceived) {
			d.Records[1].ObservedAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
		},
		"received year 1": func(d *dataReceived) { d.ReceivedAt = time.Time{} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			d := validReceived()
			d.Records = append([]events.DataRecord(nil), d.Records...)
			mutate(&d)
			agree(t, d)
		})
	}
	// The narrowing: a time in another zone is refused by the check (Store writes UTC only).
	d := validReceived()
	d.ReceivedAt = d.ReceivedAt.In(time.FixedZone("x", 3600))
	if d.CheckSchema(events.TypeDataReceived) == nil {
		t.Error("a time outside UTC passed the check")
	}
	if validReceived().CheckSchema(events.TypeIntegrationPublished) == nil {
		t.Error("the check accepted another event type")
	}
}

// FuzzDataReceivedCheck: for any strings in the payload's fields, the check and the schema
// agree.
func FuzzDataReceivedCheck(f *testing.F) {
	f.Add("0190f6c2-7d3e-7a1b-9c2d-3e4f5a6b7c8d", "coins", "push", "prices", "btc", "u1", "1.0.0", `{"a":1}`, int64(0), int64(1))
	f.Add("", "c", "pull", "P", "", "", "", `[]`, int64(-1), int64(-62135596800))
	f.Fuzz(func(t *testing.T, id, name, mode, stream, key, user, version, data string, count, unix int64) {
		d := validReceived()
		d.IntegrationID, d.Name, d.DeliveryMode, d.RecordCount = id, name, mode, int(count)
		d.Records = []events.DataRecord{{Stream: stream, Key: key, User: user, SchemaVersion: version,
			Data: json.RawMessage(data), ObservedAt: time.Unix(unix, 0).UTC()}}
		agree(t, d)
	})
}

// passThrough returns records unchanged, like Identity, but is not Identity: Check takes the
// general path (the normalizer's output checked) for it.
type passThrough struct{}

func (passThrough) Normalize(_ context.Context, _ Source, _ string, rec json.RawMessage) (json.RawMessage, error) {
	return rec, nil
}

// Check with Identity skips re-checking its own output; it must decide as the general path.
func TestCheckIdentitySameAsGeneralPath(t *testing.T) {
	sch, err := CompileSchema([]byte(`{"type":"object","properties":{"k":{"type":"string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	st := &Stream{Name: "s", Key: []string{"k"}, Schema: sch}
	for _, raw := range []string{
		`{"k":"a"}`, `{"k":"a","t":"\\u0000"}`, `{"k":"a","t":"\u0000"}`, `{"k":1}`, `{"k":"a","n":{"m":[1,2]}}`,
		`{"k":"` + strings.Repeat("x", 300) + `"}`, "{\"k\":\"a\",\"t\":\"\xff\"}", `{"k":""}`,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		r1, p1, err1 := Check(context.Background(), Source{}, st, v, json.RawMessage(raw), Identity{})
		r2, p2, err2 := Check(context.Background(), Source{}, st, v, json.RawMessage(raw), passThrough{})
		if err1 != nil || err2 != nil || !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(p1, p2) {
			t.Errorf("%s:\nIdentity %+v %v %v\ngeneral  %+v %v %v", raw, r1, p1, err1, r2, p2, err2)
		}
	}
}
