package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/infra/local/knative"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxErrorData bounds how much of a response body is kept for knativeerrordata.
const maxErrorData = events.MaxErrorData

// maxDrain bounds how much of a response body is read (to reuse the connection).
const maxDrain = 64 << 10

// attempt is the outcome of one HTTP delivery.
type attempt struct {
	status int    // 0 when there was no response
	body   []byte // first maxErrorData bytes of the response body
	err    error  // transport error or timeout
}

func (a attempt) ok() bool { return a.err == nil && a.status >= 200 && a.status < 300 }

// retryable reports whether Knative retries after this outcome.
func (a attempt) retryable() bool {
	if a.err != nil {
		return true
	}
	switch a.status {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return a.status >= 500
}

func (a attempt) String() string {
	if a.err != nil {
		return a.err.Error()
	}
	return "HTTP " + strconv.Itoa(a.status)
}

// sender delivers events over HTTP with retries and dead-letters them.
type sender struct {
	cfg    Config
	log    *slog.Logger
	client *kgo.Client // produces dead letters; nil for PingSources
}

// errAbandoned means the dispatcher is stopping: the event is neither delivered nor
// dead-lettered and must not be committed.
var errAbandoned = errors.New("dispatch: stopping, delivery abandoned")

// deliver sends e to dest following d, and dead-letters it when every attempt failed. It
// returns nil when the event is done (delivered or dead-lettered or dropped by policy), and
// errAbandoned when ctx ended first.
func (s *sender) deliver(ctx context.Context, dest knative.Destination, e cloudevents.Event, d knative.Delivery, dl deadLetter, from *kgo.Record) error {
	var last attempt
	var url string
	tries := 0
	for n := 0; n <= d.Retry; n++ {
		if n > 0 {
			if err := s.cfg.Clock.Sleep(ctx, d.Backoff(n)); err != nil {
				return errAbandoned
			}
		}
		var err error
		url, err = resolve(s.cfg, dest)
		if err != nil {
			last = attempt{err: err}
		} else {
			last = s.send(ctx, url, dest.Audience, e, d.Timeout)
		}
		if ctx.Err() != nil {
			return errAbandoned
		}
		tries++
		if last.ok() {
			return nil
		}
		if !last.retryable() {
			break
		}
		s.log.Debug("delivery failed, will retry", "event_id", e.ID(), "type", e.Type(), "url", url,
			"attempt", n+1, "result", last.String())
	}
	if url == "" {
		url = describeDest(dest)
	}
	return s.deadLetter(ctx, e, url, last, tries, dl, from)
}

func describeDest(d knative.Destination) string {
	if d.Ref != nil {
		return d.Ref.Kind + "/" + d.Ref.Name + d.URI
	}
	return d.URI
}

// send makes one attempt, with a sender token for audience when the destination declares one.
func (s *sender) send(ctx context.Context, url, audience string, e cloudevents.Event, timeout time.Duration) attempt {
	if timeout <= 0 {
		timeout = DefaultAttemptTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, nil)
	if err != nil {
		return attempt{err: fmt.Errorf("request to %q: %w", url, err)}
	}
	if err := cehttp.WriteRequest(actx, binding.ToMessage(&e), req); err != nil {
		return attempt{err: fmt.Errorf("encode event for HTTP: %w", err)}
	}
	if audience != "" && s.cfg.Tokens != nil {
		tok, err := s.cfg.Tokens(actx, audience)
		if err != nil {
			// Like a network failure: retried, then dead-lettered.
			return attempt{err: fmt.Errorf("sender token for audience %q: %w", audience, err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return attempt{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorData))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	return attempt{status: resp.StatusCode, body: body}
}

// deadLetter records e in the dead-letter sink in the platform's dead-letter shape (package
// events, "Dead letters"): the event with Knative's error extensions and dlqattempts.
// from is the Kafka record e was read from (nil for PingSource ticks): the dead letter says
// where it came from (dlqtopic, dlqpartition, dlqoffset), and its topic names the default
// dead-letter topic.
func (s *sender) deadLetter(ctx context.Context, e cloudevents.Event, url string, last attempt, tries int, dl deadLetter, from *kgo.Record) error {
	data := last.body
	if last.err != nil {
		data = []byte(last.err.Error())
	}
	info := events.DeadLetter{Dest: url, Code: last.status, Data: data, Attempts: tries}
	if from != nil {
		info.Topic, info.Partition, info.Offset = from.Topic, from.Partition, from.Offset
	}
	dead := e.Clone()
	for name := range dead.Extensions() {
		if events.IsDeadLetterExtension(name) {
			dead.SetExtension(name, nil) // an earlier failure's account, on a replayed dead letter
		}
	}
	for name, value := range info.Extensions() {
		dead.SetExtension(name, value)
	}

	if dl.http != nil {
		a := s.send(ctx, mustResolve(s, *dl.http), dl.http.Audience, dead, 0)
		if ctx.Err() != nil {
			return errAbandoned
		}
		s.log.Error("event dead-lettered over HTTP", "event_id", e.ID(), "type", e.Type(), "dest", url,
			"result", last.String(), "dead_letter_result", a.String())
		return nil
	}
	if s.client == nil {
		s.log.Warn("event dropped after its retries", "event_id", e.ID(), "type", e.Type(), "dest", url, "result", last.String())
		return nil
	}
	topic := dl.topic
	if topic == "" {
		if from == nil { // not read from Kafka, no sink: nowhere to keep it
			s.log.Warn("event dropped after its retries: no dead-letter sink", "event_id", e.ID(), "type", e.Type(), "dest", url, "result", last.String())
			return nil
		}
		topic = from.Topic + ".dlq"
	}
	rec, err := kafkace.Encode(dead)
	if err != nil {
		// Cannot happen for events that were decoded or built here; keep the data anyway.
		s.log.Error("dead letter cannot be encoded as a CloudEvent; writing the raw data", "event_id", e.ID(), "err", err)
		rec = kafkace.DeadLetter(&kgo.Record{Value: e.Data()}, info)
	}
	rec.Topic = topic
	for n := 1; ; n++ {
		err := s.client.ProduceSync(ctx, rec).FirstErr()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return errAbandoned
		}
		s.log.Error("producing a dead letter failed, retrying", "topic", topic, "event_id", e.ID(), "err", err)
		if err := s.cfg.Clock.Sleep(ctx, min(time.Duration(n)*200*time.Millisecond, 5*time.Second)); err != nil {
			return errAbandoned
		}
	}
	s.log.Warn("event dead-lettered", "event_id", e.ID(), "type", e.Type(), "dest", url,
		"result", last.String(), "dlq", topic)
	return nil
}

func mustResolve(s *sender, d knative.Destination) string {
	url, err := resolve(s.cfg, d)
	if err != nil {
		return describeDest(d)
	}
	return url
}
