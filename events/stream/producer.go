package stream

import (
	"context"
	"errors"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
)

// Producer writes CloudEvents to Kafka in binary content mode. It is safe for concurrent use.
type Producer struct {
	cl *kgo.Client
}

// NewProducer returns an idempotent producer (acks from all in-sync replicas) for brokers.
// opts are added to, and may override, those defaults (TLS, SASL, client id, ...).
func NewProducer(brokers []string, opts ...kgo.Opt) (*Producer, error) {
	if len(brokers) == 0 {
		return nil, errors.New("stream: brokers: at least one seed broker is required (KAFKA_BROKERS)")
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default, stated: idempotence requires it
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("stream: producer: %w", err)
	}
	return &Producer{cl: cl}, nil
}

// Produce writes e to topic and waits until Kafka acknowledged it.
func (p *Producer) Produce(ctx context.Context, topic string, e cloudevents.Event) error {
	r, err := encode(topic, e)
	if err != nil {
		return err
	}
	if err := p.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("stream: produce %s to %s: %w", e.ID(), topic, err)
	}
	return nil
}

// ProduceBatch writes all events to topic and waits until Kafka acknowledged each. Nothing is
// sent if one event does not encode. Otherwise, on error, some events may have been written;
// the error joins the failure of each event that was not.
func (p *Producer) ProduceBatch(ctx context.Context, topic string, es ...cloudevents.Event) error {
	rs := make([]*kgo.Record, len(es))
	for i, e := range es {
		r, err := encode(topic, e)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		rs[i] = r
	}
	var errs []error
	for _, res := range p.cl.ProduceSync(ctx, rs...) {
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("stream: produce to %s: %w", topic, res.Err))
		}
	}
	return errors.Join(errs...)
}

// Client is the underlying franz-go client, for what this type does not cover (flushing,
// metrics hooks, admin requests).
func (p *Producer) Client() *kgo.Client { return p.cl }

// Close closes the client. Produce and ProduceBatch return only once their records are
// acknowledged, so closing loses nothing they reported as written.
func (p *Producer) Close() { p.cl.Close() }

func encode(topic string, e cloudevents.Event) (*kgo.Record, error) {
	if topic == "" {
		return nil, errors.New("stream: topic: required")
	}
	r, err := kafkace.Encode(e)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	r.Topic = topic
	return r, nil
}
