package stream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/events/stream"
)

const (
	topic = "connect.events"
	group = "test-consumer"
)

type bundle struct {
	brokers  []string
	producer *stream.Producer
	admin    *kadm.Client
}

// setup starts an in-process Kafka cluster (kfake, real wire protocol on 127.0.0.1) with the
// topic and its dead-letter topic, and a producer.
func setup(t *testing.T) *bundle { return setupPartitions(t, 1) }

func setupPartitions(t *testing.T, partitions int32) *bundle {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic, events.DLQ(topic)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	p, err := stream.NewProducer(brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	adminClient, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adminClient.Close)
	return &bundle{brokers: brokers, producer: p, admin: kadm.NewClient(adminClient)}
}

func newEvent(id string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource(events.Source("test"))
	e.SetType(events.TypeInstallCompleted)
	e.SetExtension(events.ExtPartitionKey, "integration-1")
	_ = e.SetData(events.DataContentType, events.InstallCompleted{InstallID: id, UserID: "u_1"})
	return e
}

// run starts Consume in a goroutine; stop cancels it and returns its result.
func run(t *testing.T, cfg stream.ConsumerConfig) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- stream.Consume(ctx, cfg) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (b *bundle) config(h stream.Handler) stream.ConsumerConfig {
	return stream.ConsumerConfig{
		Brokers: b.brokers,
		Group:   group,
		Topics:  []string{topic},
		Handler: h,
		Backoff: func(int) time.Duration { return 0 },
	}
}

// committed returns the group's committed offset of partition 0 of topic, -1 if none.
func (b *bundle) committed(t *testing.T) int64 {
	t.Helper()
	offsets, err := b.admin.FetchOffsets(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offsets.Lookup(topic, 0)
	if !ok {
		return -1
	}
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	return o.At
}

// receive waits for the next value on ch, failing the test if the test's context ends first.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-t.Context().Done():
		t.Fatal("test ended while waiting")
		panic("unreachable")
	}
}

func TestProduce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := newEvent("p-1")
	if err := b.producer.Produce(t.Context(), topic, in); err != nil {
		t.Fatal(err)
	}
	if err := b.producer.ProduceBatch(t.Context(), topic, newEvent("p-2"), newEvent("p-3")); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < 3 {
		fs := cl.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}
	for i, r := range got {
		e, err := kafkace.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("p-%d", i+1); e.ID() != want {
			t.Errorf("record %d: id %q, want %q", i, e.ID(), want)
		}
		if string(r.Key) != "integration-1" {
			t.Errorf("record %d: key %q, want the partitionkey", i, r.Key)
		}
	}
}

func TestProduceRejectsInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad := cloudevents.NewEvent() // no id, source, type
	if err := b.producer.Produce(t.Context(), topic, bad); err == nil {
		t.Error("invalid event produced")
	}
	if err := b.producer.Produce(t.Context(), "", newEvent("x")); err == nil || !strings.Contains(err.Error(), "topic") {
		t.Errorf("empty topic: %v", err)
	}
	if err := b.producer.ProduceBatch(t.Context(), topic, newEvent("ok"), bad); err == nil || !strings.Contains(err.Error(), "event 1") {
		t.Errorf("batch with an invalid event: %v", err)
	}
	if _, err := stream.NewProducer(nil); err == nil {
		t.Error("producer without brokers")
	}
}

func TestConsumeConfigValidation(t *testing.T) {
	t.Parallel()
	err := stream.Consume(t.Context(), stream.ConsumerConfig{Topics: []string{""}, MaxAttempts: -1})
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, field := range []string{"Brokers", "Group", "Topics[0]", "Handler", "MaxAttempts"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}

// (a) A consumer that dies while handling a record has not committed it: the next member of
// the group receives it again.
func TestCrashRedelivers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.producer.ProduceBatch(t.Context(), topic, newEvent("e1"), newEvent("e2")); err != nil {
		t.Fatal(err)
	}

	inE2 := make(chan struct{})
	stop := run(t, b.config(func(ctx context.Context, e cloudevents.Event, _ *kgo.Record) error {
		if e.ID() == "e2" {
			close(inE2)
			<-ctx.Done() // the process dies mid-handler
			return ctx.Err()
		}
		return nil
	}))
	receive(t, inE2)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := b.committed(t); got != 1 {
		t.Fatalf("committed offset %d after the crash, want 1 (e1 done, e2 not)", got)
	}

	seen := make(chan string, 10)
	stop = run(t, b.config(func(_ context.Context, e cloudevents.Event, _ *kgo.Record) error {
		seen <- e.ID()
		return nil
	}))
	if id := receive(t, seen); id != "e2" {
		t.Fatalf("after restart got %q first, want e2 redelivered", id)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := b.committed(t); got != 2 {
		t.Errorf("committed offset %d, want 2", got)
	}
}

// (b) Poison records go to the dead-letter topic in the platform's dead-letter shape: an undecodable
// record at once, a failing event after exactly MaxAttempts calls, a permanent failure after
// one; the records behind them are handled.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	poison := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("not an event"),
		Headers: []kgo.RecordHeader{{Key: "x-origin", Value: []byte("legacy")}}}
	if err := b.producer.Client().ProduceSync(ctx, poison).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := b.producer.ProduceBatch(ctx, topic, newEvent("fails"), newEvent("permanent"), newEvent("good")); err != nil {
		t.Fatal(err)
	}

	const maxAttempts = 3
	var mu sync.Mutex
	calls := map[string]int{}
	good := make(chan struct{})
	cfg := b.config(func(_ context.Context, e cloudevents.Event, _ *kgo.Record) error {
		mu.Lock()
		calls[e.ID()]++
		mu.Unlock()
		switch e.ID() {
		case "fails":
			return errors.New("backend unavailable:\nline two \xff")
		case "permanent":
			return events.Permanent(errors.New("integration does not exist"))
		}
		close(good)
		return nil
	})
	cfg.MaxAttempts = maxAttempts
	var backoffs []int
	cfg.Backoff = func(attempt int) time.Duration {
		mu.Lock()
		backoffs = append(backoffs, attempt)
		mu.Unlock()
		return 0
	}
	stop := run(t, cfg)
	receive(t, good)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := b.committed(t); got != 4 {
		t.Errorf("committed offset %d, want 4 (every record done)", got)
	}
	mu.Lock()
	if calls["fails"] != maxAttempts || calls["permanent"] != 1 || calls["good"] != 1 {
		t.Errorf("handler calls = %v, want fails:%d permanent:1 good:1", calls, maxAttempts)
	}
	if fmt.Sprint(backoffs) != "[1 2]" {
		t.Errorf("backoff called for attempts %v, want [1 2]", backoffs)
	}
	mu.Unlock()

	dlq := readAll(t, b.brokers, events.DLQ(topic), 3)
	// The undecodable record: original key, value and headers kept, attempts 0.
	if string(dlq[0].Value) != "not an event" || string(dlq[0].Key) != "k" {
		t.Errorf("poison record changed: key %q value %q", dlq[0].Key, dlq[0].Value)
	}
	assertHeaders(t, dlq[0], map[string]string{"x-origin": "legacy"})
	dl := parseDeadLetter(t, dlq[0])
	if dl.Dest != events.DestGroup(group) || dl.Code != 0 || dl.Attempts != 0 || dl.Topic != topic || dl.Partition != 0 || dl.Offset != 0 ||
		!strings.Contains(string(dl.Data), "specversion") {
		t.Errorf("poison dead letter = %+v, want the decode error, attempts 0, origin %s/0@0", dl, topic)
	}
	// The failing events are still the same events, with the dead-letter extensions.
	for i, want := range []struct {
		id       string
		attempts int
		offset   int64
		data     string
	}{
		{"fails", 3, 1, "backend unavailable:\nline two \xff"},
		{"permanent", 1, 2, "integration does not exist"},
	} {
		e, err := kafkace.Decode(dlq[i+1])
		if err != nil {
			t.Fatalf("dead letter %d does not decode: %v", i+1, err)
		}
		dl := parseDeadLetter(t, dlq[i+1])
		if e.ID() != want.id || dl.Attempts != want.attempts || dl.Offset != want.offset || string(dl.Data) != want.data ||
			dl.Topic != topic || dl.Partition != 0 || dl.Dest != events.DestGroup(group) {
			t.Errorf("dead letter %d: id %q %+v, want %+v", i+1, e.ID(), dl, want)
		}
		var data events.InstallCompleted
		if err := e.DataAs(&data); err != nil || data.InstallID != want.id {
			t.Errorf("dead letter %d data = %+v (%v)", i+1, data, err)
		}
	}
}

func parseDeadLetter(t *testing.T, r *kgo.Record) events.DeadLetter {
	t.Helper()
	dl, err := kafkace.ParseDeadLetter(r)
	if err != nil {
		t.Fatalf("offset %d: not a dead letter: %v", r.Offset, err)
	}
	return dl
}

// (c) Committed records are not delivered again after a restart.
func TestCommittedNotRedelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.producer.ProduceBatch(t.Context(), topic, newEvent("c1"), newEvent("c2"), newEvent("c3")); err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 10)
	handler := func(_ context.Context, e cloudevents.Event, _ *kgo.Record) error {
		seen <- e.ID()
		return nil
	}
	stop := run(t, b.config(handler))
	for _, want := range []string{"c1", "c2", "c3"} {
		if got := receive(t, seen); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := b.committed(t); got != 3 {
		t.Fatalf("committed offset %d, want 3", got)
	}

	if err := b.producer.Produce(t.Context(), topic, newEvent("c4")); err != nil {
		t.Fatal(err)
	}
	stop = run(t, b.config(handler))
	if got := receive(t, seen); got != "c4" {
		t.Fatalf("after restart got %q, want only the new c4", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 0 {
		t.Errorf("unexpected deliveries after c4: %d", len(seen))
	}
}

// A member joining the group takes partitions over from a running member without losing
// records, and, since offsets are committed before a rebalance is allowed, without handling
// any record twice.
func TestRebalanceHandsOverCommitted(t *testing.T) {
	t.Parallel()
	b := setupPartitions(t, 4)
	produce := func(from, to int) {
		var es []cloudevents.Event
		for i := from; i < to; i++ {
			e := newEvent(fmt.Sprintf("r%d", i))
			e.SetExtension(events.ExtPartitionKey, fmt.Sprintf("integration-%d", i))
			es = append(es, e)
		}
		if err := b.producer.ProduceBatch(t.Context(), topic, es...); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	handled := map[string][]string{} // id -> members that handled it
	seen := make(chan string, 100)
	handler := func(member string) stream.Handler {
		return func(_ context.Context, e cloudevents.Event, _ *kgo.Record) error {
			mu.Lock()
			handled[e.ID()] = append(handled[e.ID()], member)
			mu.Unlock()
			seen <- e.ID()
			return nil
		}
	}
	produce(0, 20)
	stopA := run(t, b.config(handler("a")))
	for range 20 {
		receive(t, seen)
	}
	assigned := make(chan struct{}, 10)
	cfgB := b.config(handler("b"))
	cfgB.Opts = []kgo.Opt{kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		if len(m[topic]) > 0 {
			assigned <- struct{}{}
		}
	})}
	stopB := run(t, cfgB)
	receive(t, assigned) // the group has rebalanced: a's revoked partitions are b's
	produce(20, 60)
	for range 40 {
		receive(t, seen)
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 60 {
		t.Errorf("%d distinct events handled, want 60", len(handled))
	}
	byMember := map[string]int{}
	for id, members := range handled {
		if len(members) != 1 {
			t.Errorf("%s handled by %v, want once", id, members)
		}
		byMember[members[0]]++
	}
	if byMember["a"] < 20 || byMember["b"] == 0 {
		t.Errorf("events handled per member: %v, want a to hand partitions over to b", byMember)
	}
}

func TestHandlerPanicIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.producer.Produce(t.Context(), topic, newEvent("boom")); err != nil {
		t.Fatal(err)
	}
	cfg := b.config(func(context.Context, cloudevents.Event, *kgo.Record) error { panic("nil map") })
	cfg.MaxAttempts = 2
	stop := run(t, cfg)
	dlq := readAll(t, b.brokers, events.DLQ(topic), 1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if dl := parseDeadLetter(t, dlq[0]); dl.Attempts != 2 || string(dl.Data) != "handler panicked: nil map" {
		t.Errorf("dead letter %+v, want 2 attempts and the panic", dl)
	}
}

func TestDeadLetterFailureStopsWithoutCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := b.producer.Produce(t.Context(), topic, newEvent("x")); err != nil {
		t.Fatal(err)
	}
	cfg := b.config(func(context.Context, cloudevents.Event, *kgo.Record) error {
		return events.Permanent(errors.New("bad"))
	})
	cfg.DLQTopic = func(string) string { return "" }
	err := stream.Consume(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "DLQTopic") {
		t.Fatalf("Consume = %v, want the dead-letter failure", err)
	}
	if got := b.committed(t); got != -1 {
		t.Errorf("committed offset %d, want none", got)
	}
}

func TestExponential(t *testing.T) {
	t.Parallel()
	b := stream.Exponential(100*time.Millisecond, time.Second)
	var got []string
	for attempt := 1; attempt <= 6; attempt++ {
		got = append(got, b(attempt).String())
	}
	if s := strings.Join(got, " "); s != "100ms 200ms 400ms 800ms 1s 1s" {
		t.Errorf("backoff = %s", s)
	}
}

func readAll(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for len(rs) < n {
		fs := cl.PollFetches(t.Context())
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, fs.Records()...)
	}
	return rs
}

func headerValue(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func assertHeaders(t *testing.T, r *kgo.Record, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := headerValue(r, k); !ok || got != v {
			t.Errorf("offset %d: header %s = %q (present %v), want %q", r.Offset, k, got, ok, v)
		}
	}
}
