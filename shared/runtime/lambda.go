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
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/myscrollr/connect/shared/logging"
)

// LambdaHandler adapts fn to AWS Lambda. The returned function takes the raw invocation
// payload and dispatches on its shape:
//
//   - API Gateway v2 HTTP events (payload format 2.0) become an *http.Request that runs through
//     the same handler stack as Serve (reserved endpoints, middleware, fn.HTTP, POST /events);
//     the reply is an events.APIGatewayV2HTTPResponse (binary bodies base64-encoded).
//   - Kafka events (MSK "aws:kafka" or "SelfManagedKafka") whose records carry CloudEvents in
//     binary mode (ce_ headers, the record value as data) or structured mode are passed to
//     fn.Events in order. The first retryable failure fails the invocation so Lambda retries
//     the batch (consumers are idempotent); malformed records and Permanent errors are logged
//     and skipped.
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
			var ke events.KafkaEvent
			if err := json.Unmarshal(raw, &ke); err != nil {
				return nil, fmt.Errorf("runtime: kafka event: %w", err)
			}
			return nil, s.serveKafka(ctx, &ke)
		case shape.Version == "2.0" && shape.RequestContext.HTTP.Method != "":
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, fmt.Errorf("runtime: API Gateway v2 event: %w", err)
			}
			return s.serveAPIGateway(ctx, &req)
		}
		return nil, errors.New("runtime: unsupported Lambda event: want an API Gateway v2 HTTP event (version 2.0) or a Kafka event (eventSource aws:kafka or SelfManagedKafka)")
	}
}

func (s *server) serveAPIGateway(ctx context.Context, in *events.APIGatewayV2HTTPRequest) (*events.APIGatewayV2HTTPResponse, error) {
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
	out := &events.APIGatewayV2HTTPResponse{StatusCode: w.code, Headers: map[string]string{}}
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

func (s *server) serveKafka(ctx context.Context, ke *events.KafkaEvent) error {
	log := s.d.Logger.With(slog.String("event_source", ke.EventSource))
	if s.fn.Events == nil {
		return errors.New("runtime: kafka event received but the function has no event handler")
	}
	keys := make([]string, 0, len(ke.Records))
	for k := range ke.Records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, rec := range ke.Records[k] {
			rlog := log.With(slog.String("topic", rec.Topic), slog.Int64("partition", rec.Partition), slog.Int64("offset", rec.Offset))
			ev, err := kafkaRecordEvent(&rec, s.d.MaxEventBytes)
			if err != nil {
				s.m.event("", OutcomeMalformed)
				rlog.Warn("skipping malformed record", slog.Any("error", err))
				continue
			}
			outcome, err := s.dispatch(logging.With(ctx, rlog), ev)
			switch outcome {
			case OutcomeOK:
			case OutcomePermanent:
				rlog.Warn("event rejected permanently; skipped", slog.String("ce_id", ev.ID()), slog.Any("error", err))
			default:
				rlog.Error("event failed; batch will be retried", slog.String("ce_id", ev.ID()), slog.Any("error", err))
				return fmt.Errorf("runtime: event %s (%s/%d@%d): %w", ev.ID(), rec.Topic, rec.Partition, rec.Offset, err)
			}
		}
	}
	return nil
}

// kafkaRecordEvent decodes a CloudEvent from a Kafka record per the CloudEvents Kafka protocol
// binding: structured mode when content-type starts with application/cloudevents, else binary
// mode with ce_ headers (UTF-8 values) and the record value as data.
func kafkaRecordEvent(rec *events.KafkaRecord, limit int64) (*cloudevents.Event, error) {
	if int64(base64.StdEncoding.DecodedLen(len(rec.Value))) > limit+3 {
		return nil, fmt.Errorf("value exceeds %d bytes", limit)
	}
	value, err := base64.StdEncoding.DecodeString(rec.Value)
	if err != nil {
		return nil, fmt.Errorf("value: invalid base64: %w", err)
	}
	if int64(len(value)) > limit {
		return nil, fmt.Errorf("value exceeds %d bytes", limit)
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		for k, v := range h {
			headers[k] = string(v)
		}
	}
	ct := headers["content-type"]
	if strings.HasPrefix(strings.ToLower(ct), "application/cloudevents") {
		ev := cloudevents.New()
		if err := json.Unmarshal(value, &ev); err != nil {
			return nil, fmt.Errorf("structured event: %w", err)
		}
		if p := validateEvent(&ev); p != nil {
			return nil, fmt.Errorf("%s: %+v", p.Detail, p.Errors)
		}
		return &ev, nil
	}
	sv, ok := headers["ce_specversion"]
	if !ok {
		return nil, errors.New("not a CloudEvent: no ce_specversion header")
	}
	if sv != cloudevents.CloudEventsVersionV1 {
		return nil, fmt.Errorf("attribute \"specversion\": unsupported version %q, want 1.0", truncate(sv, 32))
	}
	ev := cloudevents.New()
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		name, ok := strings.CutPrefix(k, "ce_")
		if !ok || name == "specversion" {
			continue
		}
		v := headers[k]
		var err error
		switch name {
		case "id":
			ev.SetID(v)
		case "source":
			ev.SetSource(v)
		case "type":
			ev.SetType(v)
		case "subject":
			ev.SetSubject(v)
		case "dataschema":
			ev.SetDataSchema(v)
		case "datacontenttype": // content-type header wins, below
			ev.SetDataContentType(v)
		case "time":
			var t time.Time
			if t, err = time.Parse(time.RFC3339Nano, v); err == nil {
				ev.SetTime(t)
			}
		default:
			err = ev.Context.SetExtension(name, v)
		}
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", name, err)
		}
	}
	if ct != "" {
		ev.SetDataContentType(ct)
	}
	if len(value) > 0 {
		ev.DataEncoded = value
	}
	if p := validateEvent(&ev); p != nil {
		return nil, fmt.Errorf("%s: %+v", p.Detail, p.Errors)
	}
	return &ev, nil
}
