package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logging"
)

// Event outcomes, the values of the "outcome" label of connect_events_total.
const (
	OutcomeOK        = "ok"
	OutcomeRetry     = "retry"
	OutcomePermanent = "permanent"
	OutcomeMalformed = "malformed"
	// OutcomeUnauthenticated counts events refused because the sender had no valid token.
	OutcomeUnauthenticated = "unauthenticated"
)

func (s *server) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpx.WriteProblem(w, r, httpx.MethodNotAllowed(r.Method))
		return
	}
	// The sender is checked before the body is read: an unauthenticated caller costs no
	// parsing and reaches no handler.
	if !s.authenticateSender(w, r) {
		return
	}
	ev, p := s.decodeHTTPEvent(w, r)
	if p != nil {
		s.m.event("", OutcomeMalformed)
		httpx.WriteProblem(w, r, p)
		return
	}
	outcome, err := s.dispatch(r.Context(), ev)
	switch outcome {
	case OutcomeOK:
		w.WriteHeader(http.StatusOK)
	case OutcomePermanent:
		p := httpx.BadRequest("event rejected: " + clip.Ellipsis(err.Error(), 512))
		p.Cause = err
		httpx.WriteProblem(w, r, p)
	default:
		p := httpx.Internal(err)
		p.Detail = "event handling failed; it will be redelivered"
		httpx.WriteProblem(w, r, p)
	}
}

// decodeHTTPEvent reads a binary- or structured-mode CloudEvent from r, bounded by
// MaxEventBytes, and validates it. Every failure is a 400 (naming the attribute where there is
// one) or 413 problem.
func (s *server) decodeHTTPEvent(w http.ResponseWriter, r *http.Request) (*cloudevents.Event, *httpx.Problem) {
	limit := s.d.MaxEventBytes
	if r.ContentLength > limit {
		return nil, httpx.TooLarge(limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	// A header named exactly "ce-" has no attribute name; the SDK indexes past its end.
	delete(r.Header, "Ce-")
	msg := cehttp.NewMessageFromHttpRequest(r)
	switch msg.ReadEncoding() {
	case binding.EncodingBatch:
		return nil, httpx.BadRequest("batched content mode is not supported",
			httpx.FieldError{Field: "Content-Type", Reason: "batched content mode is not supported"})
	case binding.EncodingUnknown:
		return nil, unknownEncoding(r.Header)
	}
	ev := cloudevents.New()
	b := &eventBuilder{e: &ev}
	if _, err := binding.DirectWrite(r.Context(), msg, b, b); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, httpx.TooLarge(limit)
		}
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, httpx.BadRequest("malformed CloudEvent: "+fe.Error(), httpx.FieldError{Field: fe.field, Reason: clip.Ellipsis(fe.err.Error(), 200)})
		}
		return nil, httpx.BadRequest("malformed CloudEvent: " + clip.Ellipsis(err.Error(), 200))
	}
	if p := validateEvent(&ev); p != nil {
		return nil, p
	}
	return &ev, nil
}

func unknownEncoding(h http.Header) *httpx.Problem {
	if ct := h.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && strings.HasPrefix(strings.ToLower(mt), "application/cloudevents") {
			return httpx.BadRequest("unsupported structured event format",
				httpx.FieldError{Field: "Content-Type", Reason: fmt.Sprintf("unsupported event format %q", clip.Ellipsis(mt, 64))})
		}
	}
	if sv := h.Get("Ce-Specversion"); sv != "" {
		return httpx.BadRequest("unsupported CloudEvents spec version",
			httpx.FieldError{Field: "specversion", Reason: fmt.Sprintf("unsupported version %q, want 1.0", clip.Ellipsis(sv, 32))})
	}
	return httpx.BadRequest("not a CloudEvent: binary mode needs ce-specversion and the other ce- headers, structured mode Content-Type application/cloudevents+json",
		httpx.FieldError{Field: "specversion", Reason: "missing"})
}

// validateEvent runs the CloudEvents validation and lists each invalid attribute.
func validateEvent(ev *cloudevents.Event) *httpx.Problem {
	err := ev.Validate()
	if err == nil {
		return nil
	}
	var ve cloudevents.ValidationError
	if !errors.As(err, &ve) {
		return httpx.BadRequest("invalid CloudEvent: " + clip.Ellipsis(err.Error(), 200))
	}
	fields := make([]httpx.FieldError, 0, len(ve))
	for name, e := range ve {
		fields = append(fields, httpx.FieldError{Field: name, Reason: clip.Ellipsis(e.Error(), 200)})
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Field
	}
	return httpx.BadRequest("invalid CloudEvent attributes: "+strings.Join(names, ", "), fields...)
}

// dispatch runs the event handler with a logger naming the event, recovers panics (retry),
// counts the outcome and classifies the error.
func (s *server) dispatch(ctx context.Context, ev *cloudevents.Event) (outcome string, err error) {
	log := logging.From(ctx).With(slog.String("ce_id", ev.ID()), slog.String("ce_type", ev.Type()), slog.String("ce_source", ev.Source()))
	ctx = logging.With(ctx, log)
	defer func() {
		if v := recover(); v != nil {
			log.Error("panic handling event", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			outcome, err = OutcomeRetry, fmt.Errorf("panic handling event: %v", v)
		}
		s.m.event(ev.Type(), outcome)
	}()
	err = s.fn.Events(ctx, *ev)
	switch {
	case err == nil:
		return OutcomeOK, nil
	case events.IsPermanent(err):
		return OutcomePermanent, err
	default:
		return OutcomeRetry, err
	}
}

// fieldError names the attribute whose value could not be set.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return fmt.Sprintf("attribute %q: %v", e.field, e.err) }
func (e *fieldError) Unwrap() error { return e.err }

// eventBuilder receives a message's attributes and data (binding.BinaryWriter) or its
// structured form (binding.StructuredWriter) and builds an event, naming the attribute when a
// value is invalid.
type eventBuilder struct{ e *cloudevents.Event }

func (b *eventBuilder) Start(context.Context) error { return nil }
func (b *eventBuilder) End(context.Context) error   { return nil }

func (b *eventBuilder) SetStructuredEvent(_ context.Context, f format.Format, r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := f.Unmarshal(body, b.e); err != nil {
		return &fieldError{field: "body", err: err}
	}
	return nil
}

func (b *eventBuilder) SetAttribute(attr spec.Attribute, value any) error {
	if value == nil {
		_ = attr.Delete(b.e.Context)
		return nil
	}
	if attr.Kind() == spec.SpecVersion {
		if v, _ := value.(string); v != cloudevents.CloudEventsVersionV1 {
			return &fieldError{field: "specversion", err: fmt.Errorf("unsupported version %q, want 1.0", clip.Ellipsis(fmt.Sprint(value), 32))}
		}
		return nil
	}
	if err := attr.Set(b.e.Context, value); err != nil {
		return &fieldError{field: attr.Name(), err: err}
	}
	return nil
}

func (b *eventBuilder) SetExtension(name string, value any) error {
	if err := b.e.Context.SetExtension(name, value); err != nil {
		return &fieldError{field: name, err: err}
	}
	return nil
}

func (b *eventBuilder) SetData(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return err
	}
	if buf.Len() > 0 {
		b.e.DataEncoded = buf.Bytes()
	}
	return nil
}
