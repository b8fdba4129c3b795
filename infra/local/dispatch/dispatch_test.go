package dispatch

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFilterRoutesByType(t *testing.T) {
	t.Parallel()
	b := setup(t, testManifests, 3, "connect.events")
	install := b.serve("install", nil)
	notify := b.serve("notify", nil)
	b.start(b.config())

	b.produce("connect.events",
		newEvent("com.myscrollr.connect.user.deleted", "ignored-1"), // no trigger
		newEvent(typePaid, "paid-1"),
		newEvent(typeCompleted, "done-1"),
		newEvent(typePaid, "paid-2"),
	)
	got := map[string]bool{}
	for range 2 {
		e := install.next()
		if e.Type() != typePaid {
			t.Errorf("install received %s", e.Type())
		}
		got[e.ID()] = true
	}
	if e := notify.next(); e.Type() != typeCompleted || e.ID() != "done-1" {
		t.Errorf("notify received %s %s", e.Type(), e.ID())
	} else if string(e.Data()) != `{"id":"done-1"}` || e.DataContentType() != "application/json" || e.Source() != "/myscrollr/connect/test" {
		t.Errorf("event changed in transit: %s", e)
	}
	if !got["paid-1"] || !got["paid-2"] {
		t.Errorf("install received %v", got)
	}
	// Everything is committed once done, including the event no trigger wanted.
	b.waitCommitted("knative-trigger-connect-install-paid", "connect.events", 0, 1)
	stopAndCheckCommits(t, b, "knative-trigger-connect-notify-completed", 4)
	install.mu.Lock()
	defer install.mu.Unlock()
	if !install.binary {
		t.Error("events were not delivered in binary content mode")
	}
	if install.attempts["ignored-1"] != 0 || notify.attemptsOf("ignored-1") != 0 {
		t.Error("an event without trigger was delivered")
	}
}

// stopAndCheckCommits waits until group has committed all records of the 3 partitions.
func stopAndCheckCommits(t *testing.T, b *bundle, group string, total int64) {
	t.Helper()
	for {
		var sum int64
		for p := range int32(3) {
			if o := b.committed(group, "connect.events", p); o > 0 {
				sum += o
			}
		}
		if sum == total {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMatches(t *testing.T) {
	e := newEvent(typePaid, "1")
	e.SetSubject("integration/42")
	e.SetExtension("partitionkey", "42")
	e.SetExtension("attempt", 3)
	cases := []struct {
		filter map[string]string
		want   bool
	}{
		{nil, true},
		{map[string]string{"type": typePaid}, true},
		{map[string]string{"type": typeCompleted}, false},
		{map[string]string{"type": typePaid, "source": "/myscrollr/connect/test", "subject": "integration/42"}, true},
		{map[string]string{"type": typePaid, "subject": "integration/43"}, false},
		{map[string]string{"partitionkey": "42"}, true},
		{map[string]string{"attempt": "3"}, true},
		{map[string]string{"missing": "x"}, false},
		{map[string]string{"missing": ""}, true},
		{map[string]string{"datacontenttype": "application/json", "specversion": "1.0", "id": "1"}, true},
		{map[string]string{"dataschema": "x"}, false},
		{map[string]string{"TYPE": typePaid}, false},
	}
	for _, c := range cases {
		if got := Matches(c.filter, e); got != c.want {
			t.Errorf("Matches(%v) = %v, want %v", c.filter, got, c.want)
		}
	}
}

func TestServerErrorIsRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t, testManifests, 1, "connect.events", "connect.events.dlq")
	install := b.serve("install", func(cloudevents.Event, int) (int, string) {
		return http.StatusInternalServerError, `{"title":"database down"}`
	})
	b.start(b.config())
	e := newEvent(typePaid, "pay-500")
	e.SetExtension("partitionkey", "integration-7")
	b.produce("connect.events", e)

	dead := b.readTopic("connect.events.dlq", 1)[0]
	if n := install.attemptsOf("pay-500"); n != 4 {
		t.Errorf("attempts = %d, want 1 + 3 retries", n)
	}
	checkDeadLetter(t, dead, "pay-500", "500", install.srv.URL+"/events", `{"title":"database down"}`)
	// The dead letter says where the event was read (the one dead-letter shape, package events).
	if dl, err := kafkace.ParseDeadLetter(dead); err != nil || dl.Topic != "connect.events" || dl.Partition != 0 || dl.Offset != 0 {
		t.Errorf("dead letter origin = %+v (%v), want connect.events/0@0", dl, err)
	}
	if string(dead.Key) != "integration-7" {
		t.Errorf("dead letter key = %q, want the partition key", dead.Key)
	}
	b.waitCommitted("knative-trigger-connect-install-paid", "connect.events", 0, 1)
}

// checkDeadLetter checks that a dead-letter record is the event in the platform's dead-letter
// shape, read through its one parser.
func checkDeadLetter(t *testing.T, r *kgo.Record, id, code, dest, body string) {
	t.Helper()
	e, err := kafkace.Decode(r)
	if err != nil {
		t.Fatalf("dead letter is not a CloudEvent: %v", err)
	}
	if e.ID() != id || e.Type() != typePaid || string(e.Data()) != `{"id":"`+id+`"}` {
		t.Errorf("dead letter is not the original event: %s", e)
	}
	dl, err := kafkace.ParseDeadLetter(r)
	if err != nil {
		t.Fatalf("not a dead letter: %v", err)
	}
	if got := strconv.Itoa(dl.Code); got != code {
		t.Errorf("knativeerrorcode = %q, want %q", got, code)
	}
	if dl.Dest != dest {
		t.Errorf("knativeerrordest = %q, want %q", dl.Dest, dest)
	}
	if string(dl.Data) != body {
		t.Errorf("knativeerrordata = %q, want %q", dl.Data, body)
	}
	if dl.Attempts < 1 {
		t.Errorf("dlqattempts = %d, want the attempts made", dl.Attempts)
	}
}

func TestBadRequestIsDeadLetteredWithoutRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, testManifests, 1, "connect.events", "connect.events.dlq")
	long := strings.Repeat("x", 3000)
	install := b.serve("install", func(e cloudevents.Event, _ int) (int, string) {
		if e.ID() == "long" {
			return http.StatusUnprocessableEntity, long
		}
		return http.StatusBadRequest, `{"title":"bad request","errors":[{"field":"amount_cents","reason":"required"}]}`
	})
	b.start(b.config())
	b.produce("connect.events", newEvent(typePaid, "pay-400"), newEvent(typePaid, "long"))

	dead := b.readTopic("connect.events.dlq", 2)
	byID := map[string]int{}
	for i, r := range dead {
		byID[extension(t, r, "id")] = i
	}
	checkDeadLetter(t, dead[byID["pay-400"]], "pay-400", "400", install.srv.URL+"/events",
		`{"title":"bad request","errors":[{"field":"amount_cents","reason":"required"}]}`)
	checkDeadLetter(t, dead[byID["long"]], "long", "422", install.srv.URL+"/events", long[:1024])
	if n := install.attemptsOf("pay-400"); n != 1 {
		t.Errorf("a 400 was retried: %d attempts", n)
	}
	if n := install.attemptsOf("long"); n != 1 {
		t.Errorf("a 422 was retried: %d attempts", n)
	}
}

func TestRetryableStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict,
		http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, testManifests, 1, "connect.events", "connect.events.dlq")
			install := b.serve("install", func(_ cloudevents.Event, attempt int) (int, string) {
				if attempt <= 2 {
					return status, "not yet"
				}
				return http.StatusOK, ""
			})
			b.start(b.config())
			b.produce("connect.events", newEvent(typePaid, "retry-me"))
			for e := install.next(); install.attemptsOf("retry-me") < 3; e = install.next() {
				_ = e
			}
			b.waitCommitted("knative-trigger-connect-install-paid", "connect.events", 0, 1)
			if n := install.attemptsOf("retry-me"); n != 3 {
				t.Errorf("attempts = %d, want 3 (two %d then 200)", n, status)
			}
		})
	}
}

func TestConnectionErrorIsRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t, testManifests, 1, "connect.events", "connect.events.dlq")
	gone := b.serve("install", nil)
	gone.srv.Close() // nothing listens at its address any more
	b.start(b.config())
	b.produce("connect.events", newEvent(typePaid, "nobody-home"))
	dead := b.readTopic("connect.events.dlq", 1)[0]
	if got := extension(t, dead, events.ExtErrorCode); got != "" {
		t.Errorf("knativeerrorcode = %q without a response", got)
	}
	if got := extension(t, dead, events.ExtErrorDest); got != gone.srv.URL+"/events" {
		t.Errorf("knativeerrordest = %q", got)
	}
	data, _ := base64.StdEncoding.DecodeString(extension(t, dead, events.ExtErrorData))
	if !strings.Contains(string(data), "connect") {
		t.Errorf("knativeerrordata = %q, want the connection error", data)
	}
}

// TestCommitWaitsForSlowEvent checks that the commit point never passes an event still being
// delivered, although later events of the same partition are done (unordered delivery).
func TestCommitWaitsForSlowEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, testManifests, 1, "connect.events", "connect.events.dlq")
	release := make(chan struct{})
	install := b.serve("install", func(e cloudevents.Event, _ int) (int, string) {
		if e.ID() == "e3" {
			<-release
		}
		return http.StatusOK, ""
	})
	stop := b.start(b.config())
	var evs []cloudevents.Event
	for _, id := range ids("e", 10) {
		evs = append(evs, newEvent(typePaid, id))
	}
	b.produce("connect.events", evs...)
	const group = "knative-trigger-connect-install-paid"
	for range 10 {
		install.next() // e3 is delivered (its request received) but its reply is held
	}
	if got := b.waitCommitted(group, "connect.events", 0, 3); got != 3 {
		t.Fatalf("committed %d while the event at offset 3 is in flight", got)
	}
	for _, id := range ids("e", 10) {
		if id != "e3" && install.attemptsOf(id) != 1 {
			t.Fatalf("%s attempts = %d", id, install.attemptsOf(id))
		}
	}
	// The commit point still cannot move: only e3 blocks it.
	if got := b.committed(group, "connect.events", 0); got != 3 {
		t.Fatalf("committed %d while the event at offset 3 is in flight", got)
	}
	close(release)
	b.waitCommitted(group, "connect.events", 0, 10)
	stop()
}

// TestRestartRedeliversUncommitted stops the dispatcher in the middle of a stream and starts
// another: every event is delivered at least once, and what was committed is not redelivered.
func TestRestartRedeliversUncommitted(t *testing.T) {
	t.Parallel()
	const total = 300
	b := setup(t, testManifests, 3, "connect.events", "connect.events.dlq")
	var mu sync.Mutex
	seen := map[string]int{}
	var hold chan struct{} // while set, deliveries after the first 100 wait
	hold = make(chan struct{})
	install := b.serve("install", func(e cloudevents.Event, _ int) (int, string) {
		mu.Lock()
		seen[e.ID()]++
		n := len(seen)
		h := hold
		mu.Unlock()
		if n > 100 && h != nil {
			<-h // in flight when the dispatcher stops
			return http.StatusServiceUnavailable, "stopping"
		}
		return http.StatusOK, ""
	})
	stop := b.start(b.config())
	var evs []cloudevents.Event
	for _, id := range ids("r", total) {
		evs = append(evs, newEvent(typePaid, id))
	}
	b.produce("connect.events", evs...)
	for range 101 {
		install.next()
	}
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	// Stopping abandons the held deliveries; release them so the server can finish.
	mu.Lock()
	close(hold)
	hold = nil
	mu.Unlock()
	<-done

	const group = "knative-trigger-connect-install-paid"
	var committedBefore int64
	for p := range int32(3) {
		if o := b.committed(group, "connect.events", p); o > 0 {
			committedBefore += o
		}
	}
	if committedBefore >= total {
		t.Fatalf("committed %d of %d before all were delivered", committedBefore, total)
	}

	b.start(b.config())
	stopAndCheckCommits(t, b, group, total)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids("r", total) {
		if seen[id] == 0 {
			t.Errorf("%s never delivered", id)
		}
	}
	if len(seen) != total {
		t.Errorf("delivered %d distinct events, want %d", len(seen), total)
	}
	t.Logf("committed before restart: %d of %d", committedBefore, total)
}

// TestServiceDeadLetterSink: a Trigger whose dead-letter sink is a Service gets the failed
// event POSTed there once, with the error extensions; no topic is written.
func TestServiceDeadLetterSink(t *testing.T) {
	t.Parallel()
	manifests := testManifests + `---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: install-linear, namespace: connect}
spec:
  broker: connect
  filter: {attributes: {type: com.myscrollr.connect.payment.failed}}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: install}
    uri: /events
  delivery:
    retry: 2
    backoffPolicy: linear
    backoffDelay: PT0.001S
    deadLetterSink:
      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: notify}
      uri: /dead-letters
`
	b := setup(t, manifests, 1, "connect.events", "connect.events.dlq")
	install := b.serve("install", func(cloudevents.Event, int) (int, string) { return http.StatusTooManyRequests, "slow down" })
	notify := b.serve("notify", nil)
	b.start(b.config())
	b.produce("connect.events", newEvent("com.myscrollr.connect.payment.failed", "failed-1"))
	dead := notify.next()
	if dead.ID() != "failed-1" || dead.Extensions()[events.ExtErrorCode] != "429" || dead.Extensions()[events.ExtErrorDest] != install.srv.URL+"/events" {
		t.Errorf("dead letter = %s", dead)
	}
	if n := install.attemptsOf("failed-1"); n != 3 {
		t.Errorf("attempts = %d, want 1 + 2 retries", n)
	}
	b.waitCommitted("knative-trigger-connect-install-linear", "connect.events", 0, 1)
}
