package events_test

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/myscrollr/connect/events"
)

func TestDeadLetterRoundTrip(t *testing.T) {
	t.Parallel()
	for _, dl := range []events.DeadLetter{
		{Dest: "http://install.connect.svc/events", Code: 503, Data: []byte(`{"title":"database down"}`), Attempts: 4,
			Topic: "connect.events", Partition: 2, Offset: 1 << 40},
		{Dest: events.DestGroup("connect-notify"), Data: []byte("bad\x00bytes\xff"), Attempts: 1, Topic: "t"},
		{Dest: events.DestTopic("connect.events"), Data: []byte("outbox row: column \"time\": missing")},
	} {
		ext := maps.Collect(dl.Extensions())
		got, err := events.ParseDeadLetter(ext)
		if err != nil {
			t.Fatalf("%+v: %v", dl, err)
		}
		if !reflect.DeepEqual(got, dl) {
			t.Errorf("round trip of %+v = %+v (extensions %v)", dl, got, ext)
		}
	}
}

func TestDeadLetterExtensions(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 3000)
	ext := maps.Collect(events.DeadLetter{Dest: "http://a/\n\xff" + long, Code: 42, Data: []byte(long), Attempts: -3}.Extensions())
	for name, v := range ext {
		if !events.IsDeadLetterExtension(name) {
			t.Errorf("%s is not a dead-letter extension", name)
		}
		for _, r := range v {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
				t.Errorf("%s = %.40q: control character, not a CloudEvents string", name, v)
			}
		}
	}
	if _, ok := ext[events.ExtErrorCode]; ok {
		t.Errorf("code 42 written as %q; only HTTP statuses are", ext[events.ExtErrorCode])
	}
	if _, ok := ext[events.ExtDLQTopic]; ok {
		t.Error("origin written without a topic")
	}
	if ext[events.ExtDLQAttempts] != "0" || len(ext[events.ExtErrorDest]) > 2048 || !strings.HasPrefix(ext[events.ExtErrorDest], "http://a/ \uFFFD") {
		t.Errorf("extensions %.80v", ext)
	}
	dl, err := events.ParseDeadLetter(ext)
	if err != nil || len(dl.Data) != events.MaxErrorData {
		t.Errorf("data not cut to %d bytes: %d (%v)", events.MaxErrorData, len(dl.Data), err)
	}
}

// Knative writes only its three extensions; a dead letter from the real Broker parses.
func TestParseKnativeDeadLetter(t *testing.T) {
	t.Parallel()
	dl, err := events.ParseDeadLetter(map[string]string{
		"knativeerrordest": "http://sub.ns.svc.cluster.local/events", "knativeerrorcode": "500",
		"knativeerrordata": "eyJ0aXRsZSI6ImRvd24ifQ==", "partitionkey": "int-7",
	})
	want := events.DeadLetter{Dest: "http://sub.ns.svc.cluster.local/events", Code: 500, Data: []byte(`{"title":"down"}`)}
	if err != nil || !reflect.DeepEqual(dl, want) {
		t.Fatalf("ParseDeadLetter = %+v, %v; want %+v", dl, err, want)
	}
}

func TestParseDeadLetterRejects(t *testing.T) {
	t.Parallel()
	valid := map[string]string{"knativeerrordest": "d", "dlqtopic": "t", "dlqpartition": "1", "dlqoffset": "2", "dlqattempts": "3"}
	for _, c := range []struct {
		name, ext, value string // value "-" deletes ext
	}{
		{"no dest", "knativeerrordest", "-"},
		{"empty dest", "knativeerrordest", ""},
		{"long dest", "knativeerrordest", strings.Repeat("d", 2049)},
		{"code text", "knativeerrorcode", "five hundred"},
		{"code range", "knativeerrorcode", "600"},
		{"code sign", "knativeerrorcode", "+500"},
		{"data base64", "knativeerrordata", "%%%"},
		{"data size", "knativeerrordata", strings.Repeat("QUFB", 400)},
		{"attempts negative", "dlqattempts", "-1"},
		{"attempts leading zero", "dlqattempts", "03"},
		{"partition range", "dlqpartition", "2147483648"},
		{"offset text", "dlqoffset", "x"},
		{"topic empty", "dlqtopic", ""},
		{"topic without offset", "dlqoffset", "-"},
		{"offset without topic", "dlqtopic", "-"},
	} {
		ext := maps.Clone(valid)
		if c.value == "-" {
			delete(ext, c.ext)
		} else {
			ext[c.ext] = c.value
		}
		_, err := events.ParseDeadLetter(ext)
		field := c.ext
		if c.name == "topic without offset" || c.name == "offset without topic" {
			field = "dlqtopic"
		}
		if err == nil || !strings.Contains(err.Error(), `"`+field+`"`) {
			t.Errorf("%s: error %v does not name %s", c.name, err, field)
		}
	}
}

func FuzzParseDeadLetter(f *testing.F) {
	f.Add("http://x/events", "500", "YWJj", "2", "t", "0", "7")
	f.Add("", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, dest, code, data, attempts, topic, partition, offset string) {
		ext := map[string]string{}
		for k, v := range map[string]string{events.ExtErrorDest: dest, events.ExtErrorCode: code, events.ExtErrorData: data,
			events.ExtDLQAttempts: attempts, events.ExtDLQTopic: topic, events.ExtDLQPartition: partition, events.ExtDLQOffset: offset} {
			if v != "" {
				ext[k] = v
			}
		}
		dl, err := events.ParseDeadLetter(ext)
		if err != nil {
			return
		}
		// What parses writes back to what parses to the same value (Dest and Topic are cleaned).
		dl.Dest, dl.Topic = "d", strings.Map(func(r rune) rune { return 'x' }, dl.Topic)
		if len(dl.Topic) > 255 {
			dl.Topic = dl.Topic[:255]
		}
		again, err := events.ParseDeadLetter(maps.Collect(dl.Extensions()))
		if err != nil {
			t.Fatalf("%+v does not parse back: %v", dl, err)
		}
		if dl.Data == nil {
			dl.Data = again.Data
		}
		if !reflect.DeepEqual(again, dl) {
			t.Fatalf("round trip %+v != %+v", again, dl)
		}
	})
}
