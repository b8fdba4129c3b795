package kafkace_test

import (
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
)

// Encode an event as a binary-mode record and decode it back.
func Example() {
	e := cloudevents.NewEvent()
	e.SetID("5a1f7e0c")
	e.SetSource("/myscrollr/connect/install")
	e.SetType("com.myscrollr.connect.install.completed")
	e.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	e.SetExtension("partitionkey", "3f0e2c4d-integration")
	_ = e.SetData("application/json", map[string]string{"user_id": "u_123"})

	r, err := kafkace.Encode(e)
	if err != nil {
		fmt.Println(err)
		return
	}
	r.Topic = "connect.events"
	fmt.Printf("key: %s\n", r.Key)
	for _, h := range r.Headers {
		fmt.Printf("%s: %s\n", h.Key, h.Value)
	}
	fmt.Printf("value: %s\n", r.Value)

	got, err := kafkace.Decode(r)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("decoded:", got.Type(), got.ID(), got.Extensions()["partitionkey"])

	// A record that is not a valid CloudEvent yields a *DecodeError naming the attribute.
	_, err = kafkace.Decode(&kgo.Record{Headers: []kgo.RecordHeader{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte("1")},
		{Key: "ce_source", Value: []byte("/s")},
		{Key: "ce_type", Value: []byte("t")},
		{Key: "ce_time", Value: []byte("yesterday")},
	}})
	fmt.Println(err)
	// Output:
	// key: 3f0e2c4d-integration
	// ce_specversion: 1.0
	// ce_id: 5a1f7e0c
	// ce_source: /myscrollr/connect/install
	// ce_type: com.myscrollr.connect.install.completed
	// ce_time: 2026-01-02T03:04:05Z
	// ce_partitionkey: 3f0e2c4d-integration
	// content-type: application/json
	// value: {"user_id":"u_123"}
	// decoded: com.myscrollr.connect.install.completed 5a1f7e0c 3f0e2c4d-integration
	// kafkace: decode: time: not an RFC 3339 timestamp: "yesterday"
}
