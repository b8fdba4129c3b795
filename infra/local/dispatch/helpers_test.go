package dispatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/infra/local/knative"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testManifests are the manifests of most tests: a Broker over connect.events whose delivery
// retries 3 times with a tiny exponential backoff, and dead letters to connect.events.dlq.
const testManifests = `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: install, namespace: connect}
spec: {template: {spec: {containers: [{image: "ko://github.com/myscrollr/connect/functions/install"}]}}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: notify, namespace: connect}
spec: {template: {spec: {containers: [{image: "ko://github.com/myscrollr/connect/functions/notify"}]}}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: ingest, namespace: connect}
spec: {template: {spec: {containers: [{image: "ko://github.com/myscrollr/connect/functions/ingest"}]}}}
---
apiVersion: eventing.knative.dev/v1alpha1
kind: KafkaSink
metadata: {name: dlq, namespace: connect}
spec: {topic: connect.events.dlq, bootstrapServers: [x]}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: connect
  namespace: connect
  annotations:
    eventing.knative.dev/broker.class: Kafka
    kafka.eventing.knative.dev/external.topic: connect.events
spec:
  delivery:
    retry: 3
    backoffPolicy: exponential
    backoffDelay: PT0.001S
    deadLetterSink:
      ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: dlq}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: install-paid, namespace: connect}
spec:
  broker: connect
  filter: {attributes: {type: com.myscrollr.connect.payment.succeeded}}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: install}
    uri: /events
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: notify-completed, namespace: connect}
spec:
  broker: connect
  filter: {attributes: {type: com.myscrollr.connect.install.completed}}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: notify}
    uri: /events
`

const (
	typePaid      = "com.myscrollr.connect.payment.succeeded"
	typeCompleted = "com.myscrollr.connect.install.completed"
)

// bundle is a test's Kafka cluster, its clients and the functions' test servers.
type bundle struct {
	t        testing.TB
	addrs    []string
	producer *kgo.Client
	admin    *kadm.Client
	manif    *knative.Manifests
	servers  map[string]*sink
	client   *http.Client
}

func setup(t testing.TB, manifests string, partitions int32, topics ...string) *bundle {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1),
		kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	m, err := knative.Parse("test.yaml", []byte(manifests))
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 128}
	t.Cleanup(transport.CloseIdleConnections)
	return &bundle{t: t, addrs: c.ListenAddrs(), producer: prod, admin: kadm.NewClient(prod), manif: m,
		servers: map[string]*sink{}, client: &http.Client{Transport: transport}}
}

// serve starts a test server for a Service; reply decides each response.
func (b *bundle) serve(service string, reply func(e cloudevents.Event, attempt int) (int, string)) *sink {
	s := &sink{reply: reply, attempts: map[string]int{}, received: make(chan cloudevents.Event, 100000)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	b.t.Cleanup(s.srv.Close)
	b.servers[service] = s
	return s
}

func (b *bundle) config() Config {
	return Config{
		Brokers:   b.addrs,
		Manifests: b.manif,
		Resolve: func(name string) (string, error) {
			s, ok := b.servers[name]
			if !ok {
				return "", errors.New("no server for " + name)
			}
			return s.srv.URL, nil
		},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		HTTPClient: b.client,
		KafkaOpts:  []kgo.Opt{kgo.FetchMaxWait(50 * time.Millisecond)},
	}
}

// start runs the dispatcher; the returned stop cancels it and waits for Run to return.
func (b *bundle) start(cfg Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				b.t.Errorf("Run: %v", err)
			}
		})
	}
	b.t.Cleanup(stop)
	return stop
}

func newEvent(typ, id string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource("/myscrollr/connect/test")
	_ = e.SetData("application/json", map[string]string{"id": id})
	return e
}

func (b *bundle) produce(topic string, events ...cloudevents.Event) {
	b.t.Helper()
	recs := make([]*kgo.Record, 0, len(events))
	for _, e := range events {
		r, err := kafkace.Encode(e)
		if err != nil {
			b.t.Fatal(err)
		}
		r.Topic = topic
		recs = append(recs, r)
	}
	if err := b.producer.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.t.Fatal(err)
	}
}

// readTopic reads n records of topic from the start.
func (b *bundle) readTopic(topic string, n int) []*kgo.Record {
	b.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		b.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(context.Background())
		f.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// committed returns the committed offset of group on topic partition 0 (-1 when none).
func (b *bundle) committed(group, topic string, partition int32) int64 {
	b.t.Helper()
	offs, err := b.admin.FetchOffsets(context.Background(), group)
	if err != nil {
		return -1
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok || o.Err != nil {
		return -1
	}
	return o.At
}

// waitCommitted polls until group's committed offset of topic/partition is at least want
// (bounded by the test timeout, not by a timer).
func (b *bundle) waitCommitted(group, topic string, partition int32, want int64) int64 {
	b.t.Helper()
	for {
		if got := b.committed(group, topic, partition); got >= want {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sink is a function's test server: it records attempts per event id.
type sink struct {
	srv      *httptest.Server
	reply    func(e cloudevents.Event, attempt int) (int, string)
	mu       sync.Mutex
	attempts map[string]int
	binary   bool // every request was binary content mode
	received chan cloudevents.Event
}

func (s *sink) handle(w http.ResponseWriter, r *http.Request) {
	msg := cehttp.NewMessageFromHttpRequest(r)
	isBinary := msg.ReadEncoding() == binding.EncodingBinary
	e, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.attempts[e.ID()]++
	n := s.attempts[e.ID()]
	if n == 1 && len(s.attempts) == 1 {
		s.binary = isBinary
	} else {
		s.binary = s.binary && isBinary
	}
	s.mu.Unlock()
	s.received <- *e
	status, body := http.StatusAccepted, ""
	if s.reply != nil {
		status, body = s.reply(*e, n)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (s *sink) attemptsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[id]
}

// next waits for the next request (received, maybe not yet answered).
func (s *sink) next() cloudevents.Event { return <-s.received }

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func extension(t testing.TB, r *kgo.Record, name string) string {
	t.Helper()
	for _, h := range r.Headers {
		if h.Key == "ce_"+name {
			return string(h.Value)
		}
	}
	return ""
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
