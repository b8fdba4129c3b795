package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/myscrollr/connect/events/stream"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestSASLFromEnv(t *testing.T) {
	t.Parallel()
	none, err := stream.SASLFromEnv(env(nil))
	if err != nil || none.Opts() != nil || none.String() != "no SASL" {
		t.Fatalf("no settings: %+v %v", none, err)
	}
	ok, err := stream.SASLFromEnv(env(map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "relay", "KAFKA_SASL_PASSWORD": "pw-secret"}))
	if err != nil || ok.Mechanism != stream.SASLScramSHA512 || len(ok.Opts()) != 1 || strings.Contains(ok.String(), "pw-secret") {
		t.Fatalf("SCRAM-SHA-512: %+v %v", ok, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_MECHANISM: required"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_USERNAME: required"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD: required"},
		{map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "top-secret"}, "KAFKA_SASL_MECHANISM: \"GSSAPI\" is not"},
	} {
		_, err := stream.SASLFromEnv(env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "top-secret") {
			t.Errorf("%v: %v, want %q", tc.env, err, tc.want)
		}
	}
}

// A producer with the SASL settings of a user authenticates to a cluster that requires SASL;
// one without them, or with a wrong password, is refused.
func TestSASLProducerAuthenticates(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "relay", "relay-secret"), kfake.SeedTopics(1, "connect.events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := cloudevents.NewEvent()
	e.SetID("1")
	e.SetSource("test")
	e.SetType("com.myscrollr.connect.test")
	produce := func(pw string) error {
		s, err := stream.SASLFromEnv(env(map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "relay", "KAFKA_SASL_PASSWORD": pw}))
		if err != nil {
			t.Fatal(err)
		}
		p, err := stream.NewProducer(c.ListenAddrs(), s.Opts()...)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return p.Produce(pctx, "connect.events", e)
	}
	if err := produce("relay-secret"); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	if err := produce("wrong"); err == nil {
		t.Fatal("a wrong password produced")
	}
}
