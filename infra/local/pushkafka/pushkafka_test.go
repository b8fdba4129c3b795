package pushkafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/infra/local/pushkafka"
)

// cluster is a kfake cluster on loopback with SASL and ACLs enforced, its push topics, and an
// admin client acting as the superuser.
func cluster(t *testing.T, names ...string) (*kfake.Cluster, *kadm.Client) {
	t.Helper()
	var topics []string
	for _, n := range names {
		topics = append(topics, events.DataTopic(n))
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", "admin", "admin-secret"), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, kadm.NewClient(cl)
}

func producer(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordRetries(1),
		kgo.RecordDeliveryTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(ctx context.Context, cl *kgo.Client, topic string) error {
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(`{}`)}).FirstErr()
}

// Integration a's credentials produce to a's topic and are refused on b's; b's are refused
// on a's; a wrong password is refused; after Revoke a's are refused everywhere.
func TestGrantAllowsOnlyItsOwnTopic(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, adm := cluster(t, "alpha", "beta")
	a, err := pushkafka.Grant(ctx, adm, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	b, err := pushkafka.Grant(ctx, adm, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if a.User != "push-alpha" || a.Topic != "integrations.alpha.data" || a.Mechanism != "SCRAM-SHA-256" || len(a.Password) < 40 || a.Password == b.Password {
		t.Fatalf("credentials: %+v / %+v", a, b)
	}

	pa := producer(t, c, a.Opts()...)
	if err := produce(ctx, pa, a.Topic); err != nil {
		t.Fatalf("a to its own topic: %v", err)
	}
	if err := produce(ctx, pa, b.Topic); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("a to b's topic: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	pb := producer(t, c, b.Opts()...)
	if err := produce(ctx, pb, a.Topic); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("b to a's topic: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := produce(ctx, pb, b.Topic); err != nil {
		t.Fatalf("b to its own topic: %v", err)
	}
	// Nothing beyond WRITE: a cannot consume its own topic either.
	ca := producer(t, c, append(a.Opts(), kgo.ConsumeTopics(a.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	fs := ca.PollFetches(ctx)
	if err := fs.Err(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("a consuming: %v (%d records), want TOPIC_AUTHORIZATION_FAILED", err, fs.NumRecords())
	}

	wrong := a
	wrong.Password += "x"
	if err := produce(ctx, producer(t, c, wrong.Opts()...), a.Topic); err == nil {
		t.Fatal("a wrong password produced")
	}

	// The superuser sees exactly what a produced: one record on a's topic, one on b's.
	for _, topic := range []string{a.Topic, b.Topic} {
		offs, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := offs.Lookup(topic, 0); o.Err != nil || o.Offset != 1 {
			t.Fatalf("%s end offset %+v, want 1", topic, o)
		}
	}

	if err := pushkafka.Revoke(ctx, adm, "alpha"); err != nil {
		t.Fatal(err)
	}
	if err := produce(ctx, producer(t, c, a.Opts()...), a.Topic); err == nil {
		t.Fatal("revoked credentials produced")
	}
	if err := pushkafka.Revoke(ctx, adm, "alpha"); err != nil {
		t.Fatalf("revoking again: %v", err)
	}
}
