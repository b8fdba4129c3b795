package stream_test

import (
	"context"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/stream"
)

// Produce an event and consume it in a group, against an in-process Kafka cluster.
func Example() {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(1, events.TopicEvents, events.DLQ(events.TopicEvents)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()

	p, err := stream.NewProducer(cluster.ListenAddrs())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	e := cloudevents.NewEvent()
	e.SetID("evt-1")
	e.SetSource(events.Source("uninstall"))
	e.SetType(events.TypeInstallRevoked)
	e.SetExtension(events.ExtPartitionKey, "0b7e6f1c-integration")
	_ = e.SetData(events.DataContentType, events.InstallRevoked{UserID: "u_1", Reason: events.RevokeUserRequest})
	if err := p.Produce(context.Background(), events.TopicEvents, e); err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithCancel(context.Background())
	err = stream.Consume(ctx, stream.ConsumerConfig{
		Brokers: cluster.ListenAddrs(),
		Group:   "connect-notify",
		Topics:  []string{events.TopicEvents},
		Handler: func(ctx context.Context, e cloudevents.Event, r *kgo.Record) error {
			var data events.InstallRevoked
			if err := e.DataAs(&data); err != nil {
				return events.Permanent(err) // a payload that does not parse never will
			}
			fmt.Println(e.Type(), e.ID(), data.UserID, data.Reason, "key:", string(r.Key))
			cancel() // one event is enough for the example
			return nil
		},
	})
	fmt.Println("consumer stopped:", err)
	// Output:
	// com.myscrollr.connect.install.revoked evt-1 u_1 user_request key: 0b7e6f1c-integration
	// consumer stopped: <nil>
}
