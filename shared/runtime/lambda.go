//go:build !nolambda

package runtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	awsevents "github.com/aws/aws-lambda-go/events"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/shared/logging"
)

// LambdaHandler adapts fn to AWS Lambda. The returned function takes the raw invocation
// payload and dispatches on its shape:
//
//   - API Gateway v2 HTTP events (payload format 2.0) become an *http.Request that runs through
//     the same handler stack as Serve (reserved endpoints, middleware, fn.HTTP, POST /events);
//     the reply is an awsevents.APIGatewayV2HTTPResponse (binary bodies base64-encoded).
//   - Kafka events (MSK "aws:kafka" or "SelfManagedKafka") whose records carry CloudEvents in
//     binary or structured mode are decoded by events/kafkace (the same strict, bounded decoder
//     as every other Kafka path; values bounded by Deps.MaxEventBytes) and passed to fn.Events,
//     each partition in offset order. The reply is a [KafkaBatchResponse] (partial batch
//     response, for an event source mapping with FunctionResponseTypes ReportBatchItemFailures):
//     a record that does not decode or whose handler returns an events.Permanent error can never
//     succeed, so it is logged, counted and dropped (it is not reported); the first record of a
//     partition whose handler fails otherwise is reported, and the rest of that partition is not
//     handled, because Lambda retries a stream from the lowest reported offset of a partition
//     (handlers are idempotent). Other partitions go on.
//
// Anything else is an error naming the problem.
func LambdaHandler(fn Function, d Deps) func(ctx context.Context, raw json.RawMessage) (any, error) {
	d = d.withDefaults()
	s, err := newServer(fn, d)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if err != nil {
			return nil, err
		}
		var shape struct {
			Version        string `json:"version"`
			EventSource    string `json:"eventSource"`
			RequestContext struct {
				HTTP struct {
					Method string `json:"method"`
				} `json:"http"`
			} `json:"requestContext"`
		}
		if err := json.Unmarshal(raw, &shape); err != nil {
			return nil, fmt.Errorf("runtime: lambda payload is not a JSON object: %w", err)
		}
		switch {
		case shape.EventSource == "aws:kafka" || shape.EventSource == "SelfManagedKafka":
			var ke awsevents.KafkaEvent
			if err := json.Unmarshal(raw, &ke); err != nil {
				return nil, fmt.Errorf("runtime: kafka event: %w", err)
			}
			return s.serveKafka(ctx, &ke)
		case shape.Version == "2.0" && shape.RequestContext.HTTP.Method != "":
			var req awsevents.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, fmt.Errorf("runtime: API Gateway v2 event: %w", err)
			}
			return s.serveAPIGateway(ctx, &req)
		}
		return nil, errors.New("runtime: unsupported Lambda event: want an API Gateway v2 HTTP event (version 2.0) or a Kafka event (eventSource aws:kafka or SelfManagedKafka)")
	}
}

func (s *server) serveAPIGateway(ctx context.Context, in *awsevents.APIGatewayV2HTTPRequest) (*awsevents.APIGatewayV2HTTPResponse, error) {
	body := []byte(in.Body)
	if in.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(in.Body)
		if err != nil {
			return nil, fmt.Errorf("runtime: API Gateway v2 event: body: invalid base64: %w", err)
		}
		body = b
	}
	path := in.RawPath
	if path == "" {
		path = in.RequestContext.HTTP.Path
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("runtime: API Gateway v2 event: rawPath %q: %w", path, err)
	}
	u.RawQuery = in.RawQueryString
	r, err := http.NewRequestWithContext(ctx, in.RequestContext.HTTP.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("runtime: API Gateway v2 event: %w", err)
	}
	r.RequestURI = u.RequestURI()
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Body = http.NoBody
	}
	for k, v := range in.Headers {
		r.Header.Set(k, v)
	}
	if len(in.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(in.Cookies, "; "))
	}
	r.Header.Del("Content-Length")
	r.Host = r.Header.Get("Host")
	if r.Host == "" {
		r.Host = in.RequestContext.DomainName
	}
	if r.Header.Get("X-Request-Id") == "" && in.RequestContext.RequestID != "" {
		r.Header.Set("X-Request-Id", in.RequestContext.RequestID)
	}
	if ip := in.RequestContext.HTTP.SourceIP; ip != "" {
		r.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	if p := in.RequestContext.HTTP.Protocol; p != "" {
		if major, minor, ok := http.ParseHTTPVersion(p); ok {
			r.Proto, r.ProtoMajor, r.ProtoMinor = p, major, minor
		}
	}

	w := &bufferedResponse{header: http.Header{}}
	s.ServeHTTP(w, r)
	if w.code == 0 {
		w.code = http.StatusOK
	}
	out := &awsevents.APIGatewayV2HTTPResponse{StatusCode: w.code, Headers: map[string]string{}}
	for k, vs := range w.header {
		if k == "Set-Cookie" {
			out.Cookies = append(out.Cookies, vs...)
			continue
		}
		out.Headers[k] = strings.Join(vs, ",")
	}
	if isTextual(w.header.Get("Content-Type")) || w.body.Len() == 0 {
		out.Body = w.body.String()
	} else {
		out.Body = base64.StdEncoding.EncodeToString(w.body.Bytes())
		out.IsBase64Encoded = true
	}
	return out, nil
}

// isTextual reports whether a body of this content type can travel as a JSON string as is.
func isTextual(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		mt == "application/xml" || strings.HasSuffix(mt, "+xml") || mt == "application/javascript"
}

// bufferedResponse is the http.ResponseWriter of a Lambda invocation.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }
func (w *bufferedResponse) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
}
func (w *bufferedResponse) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(b)
}

// KafkaBatchResponse is the reply to a Kafka event: the records to retry. An empty list means
// the whole batch is done. Lambda reads it only when the event source mapping lists
// ReportBatchItemFailures in FunctionResponseTypes; without that setting a reply is ignored and
// the batch counts as done, so deploy the mapping with it. aws-lambda-go has no type for it.
type KafkaBatchResponse struct {
	BatchItemFailures []KafkaBatchItemFailure `json:"batchItemFailures"`
}

// KafkaBatchItemFailure names one record to retry.
type KafkaBatchItemFailure struct {
	ItemIdentifier KafkaItemIdentifier `json:"itemIdentifier"`
}

// KafkaItemIdentifier identifies a Kafka record in a partial batch response: Partition is
// "<topic>-<partition>", as the keys of the event's records map, and Offset the record's
// offset. This is the shape AWS's Powertools for Lambda (Python, batch utility) returns for
// MSK and self-managed Kafka.
type KafkaItemIdentifier struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (s *server) serveKafka(ctx context.Context, ke *awsevents.KafkaEvent) (*KafkaBatchResponse, error) {
	log := s.d.Logger.With(slog.String("event_source", ke.EventSource))
	if s.fn.Events == nil {
		return nil, errors.New("runtime: kafka event received but the function has no event handler")
	}
	dec := kafkace.Decoder{MaxValueBytes: int(min(s.d.MaxEventBytes, 1<<30))}
	resp := &KafkaBatchResponse{BatchItemFailures: []KafkaBatchItemFailure{}}
	keys := make([]string, 0, len(ke.Records))
	for k := range ke.Records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for i := range ke.Records[k] {
			rec := &ke.Records[k][i]
			rlog := log.With(slog.String("topic", rec.Topic), slog.Int64("partition", rec.Partition), slog.Int64("offset", rec.Offset))
			ev, err := decodeLambdaRecord(rec, dec)
			if err != nil {
				s.m.event("", OutcomeMalformed)
				rlog.Warn("malformed record dropped: it can never be handled", slog.Any("error", err))
				continue
			}
			outcome, err := s.dispatch(logging.With(ctx, rlog), &ev)
			if outcome == OutcomeOK {
				continue
			}
			if outcome == OutcomePermanent {
				rlog.Warn("event rejected permanently; dropped", slog.String("ce_id", ev.ID()), slog.Any("error", err))
				continue
			}
			rlog.Error("event failed; it and the rest of its partition will be retried",
				slog.String("ce_id", ev.ID()), slog.Any("error", err))
			resp.BatchItemFailures = append(resp.BatchItemFailures, KafkaBatchItemFailure{
				ItemIdentifier: KafkaItemIdentifier{Partition: rec.Topic + "-" + strconv.FormatInt(rec.Partition, 10), Offset: rec.Offset},
			})
			break
		}
	}
	return resp, nil
}

// decodeLambdaRecord turns a Lambda Kafka record (base64 key and value, headers as a list of
// one-entry maps) into the record it was and decodes it with kafkace. The value is bounded
// before it is decoded from base64.
func decodeLambdaRecord(rec *awsevents.KafkaRecord, dec kafkace.Decoder) (cloudevents.Event, error) {
	limit := dec.MaxValueBytes
	if base64.StdEncoding.DecodedLen(len(rec.Value)) > limit+3 {
		return cloudevents.Event{}, &kafkace.DecodeError{Attribute: "value", Reason: fmt.Sprintf("exceeds the limit of %d bytes", limit)}
	}
	value, err := base64.StdEncoding.DecodeString(rec.Value)
	if err != nil {
		return cloudevents.Event{}, &kafkace.DecodeError{Attribute: "value", Reason: "invalid base64"}
	}
	if len(rec.Key) > base64.StdEncoding.EncodedLen(kafkace.DefaultMaxHeaderBytes) {
		return cloudevents.Event{}, &kafkace.DecodeError{Attribute: "record", Reason: fmt.Sprintf("key exceeds the limit of %d bytes", kafkace.DefaultMaxHeaderBytes)}
	}
	key, err := base64.StdEncoding.DecodeString(rec.Key)
	if err != nil {
		return cloudevents.Event{}, &kafkace.DecodeError{Attribute: "record", Reason: "key: invalid base64"}
	}
	r := &kgo.Record{Topic: rec.Topic, Partition: int32(rec.Partition), Offset: rec.Offset, Key: key, Value: value}
	for _, h := range rec.Headers {
		names := make([]string, 0, len(h))
		for name := range h {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: name, Value: h[name]})
		}
	}
	return dec.Decode(r)
}
