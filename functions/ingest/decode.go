package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/myscrollr/connect/events/kafkace"
	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/records"
)

// Content types of POST /v1/ingest.
const (
	ContentTypeStructured = "application/cloudevents+json"
	ContentTypeBatch      = "application/cloudevents-batch+json"
)

// item is one event of a request as decoded: its place in the batch, the event when it
// decoded, or the problems that refuse it (pointers into the event, "/id", "/data/price").
type item struct {
	Index    int
	ID       string // as far as it could be read
	Event    *cloudevents.Event
	Problems []records.Problem
}

// decodeRequest reads the events of a POST /v1/ingest whose body (already bounded) is body:
// structured (one event, application/cloudevents+json), batched (a JSON array of structured
// events, application/cloudevents-batch+json, at most maxBatch) or binary (ce-* headers, the
// body is the data). A request that is refused as a whole is a *httpx.Problem; an event of a
// batch that does not decode is an item with its problems, so the others go on.
func decodeRequest(h http.Header, body []byte, maxBatch int) ([]item, error) {
	ct := h.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	mt = strings.ToLower(mt)
	switch {
	case mt == ContentTypeBatch:
		return decodeBatch(body, maxBatch)
	case mt == ContentTypeStructured:
		e, p := decodeStructured(body)
		if p != nil {
			return nil, httpx.BadRequest("malformed CloudEvent: "+p.String(), httpx.FieldError{Field: p.Field, Reason: p.Reason})
		}
		return []item{{ID: e.ID(), Event: e}}, nil
	case strings.HasPrefix(mt, "application/cloudevents"):
		return nil, httpx.BadRequest("unsupported event format", httpx.FieldError{Field: "Content-Type",
			Reason: "must be " + ContentTypeStructured + ", " + ContentTypeBatch + " or binary mode (ce-* headers)"})
	case h.Get("Ce-Specversion") != "":
		e, p := decodeBinary(h, body)
		if p != nil {
			return nil, httpx.BadRequest("malformed CloudEvent: "+p.String(), httpx.FieldError{Field: p.Field, Reason: p.Reason})
		}
		return []item{{ID: e.ID(), Event: e}}, nil
	}
	return nil, httpx.BadRequest("not a CloudEvent", httpx.FieldError{Field: "Content-Type",
		Reason: "must be " + ContentTypeStructured + ", " + ContentTypeBatch + ", or binary mode with a ce-specversion header"})
}

// decodeBatch splits a JSON array into its events, bounded by maxBatch before any event is
// decoded. The body is checked to be JSON once (json.Valid, no allocation) and then split in
// place (splitArray); each event is decoded from its own bytes.
func decodeBatch(body []byte, maxBatch int) ([]item, error) {
	raws, ok := splitArray(body)
	if !ok {
		return nil, httpx.BadRequest("a batch must be a JSON array of CloudEvents", httpx.FieldError{Field: "", Reason: "not a JSON array"})
	}
	if len(raws) == 0 {
		return nil, httpx.BadRequest("empty batch", httpx.FieldError{Field: "", Reason: "must hold at least one event"})
	}
	if len(raws) > maxBatch {
		return nil, httpx.BadRequest("batch too long", httpx.FieldError{Field: "",
			Reason: "holds " + strconv.Itoa(len(raws)) + " events, at most " + strconv.Itoa(maxBatch)})
	}
	out := make([]item, len(raws))
	for i, raw := range raws {
		out[i].Index = i
		e, p := decodeStructured(raw)
		if p != nil {
			out[i].ID = idOf(raw)
			out[i].Problems = []records.Problem{*p}
			continue
		}
		out[i].ID, out[i].Event = e.ID(), e
	}
	return out, nil
}

// splitArray returns the elements of body, a JSON array, as sub-slices of it (each without
// surrounding whitespace), as json.Unmarshal into []json.RawMessage would: ok false when body
// is not valid JSON or not an array; null is an empty array.
func splitArray(body []byte) ([][]byte, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	i := skipSpace(body, 0)
	if bytes.Equal(body[i:skipLiteral(body, i)], []byte("null")) {
		return nil, true
	}
	if body[i] != '[' {
		return nil, false
	}
	var out [][]byte
	i = skipSpace(body, i+1)
	for body[i] != ']' {
		end := valueEnd(body, i)
		out = append(out, body[i:end:end])
		i = skipSpace(body, end)
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return out, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func skipLiteral(b []byte, i int) int {
	for i < len(b) && b[i] >= 'a' && b[i] <= 'z' {
		i++
	}
	return i
}

// valueEnd returns the index after the JSON value starting at b[i], b being valid JSON.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		return i + 1
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			case '"':
				i = valueEnd(b, i) - 1
			}
		}
	}
	for i < len(b) && !strings.ContainsRune(" \t\n\r,]}", rune(b[i])) {
		i++ // a number or a literal
	}
	return i
}

// decodeStructured decodes one structured-mode JSON event with the platform's strict decoder
// (events/kafkace: the same rules as a record on Kafka), through its fast path for the common
// shape (kafkace.Decoder.DecodeStructuredJSON: the same decisions and events, checked by
// its differential fuzz test). The event's data aliases raw.
func decodeStructured(raw []byte) (*cloudevents.Event, *records.Problem) {
	e, err := structured.DecodeStructuredJSON(raw)
	if err != nil {
		return nil, problemOf(err)
	}
	return &e, nil
}

// structured bounds one event as the body already is (the request's limit applies first).
var structured = kafkace.Decoder{MaxValueBytes: 64 << 20}

// decodeBinary decodes a binary-mode event: attributes from ce-* headers, the body as data.
func decodeBinary(h http.Header, body []byte) (*cloudevents.Event, *records.Problem) {
	req := &http.Request{Header: h.Clone(), Body: http.NoBody}
	delete(req.Header, "Ce-") // a header named exactly "ce-" has no attribute name
	if len(body) > 0 {
		req.Body = nopCloser{bytes.NewReader(body)}
	}
	msg := cehttp.NewMessageFromHttpRequest(req)
	if msg.ReadEncoding() != binding.EncodingBinary {
		return nil, &records.Problem{Field: "/specversion", Reason: "not a binary-mode CloudEvent"}
	}
	e, err := binding.ToEvent(context.Background(), msg)
	if err != nil {
		return nil, &records.Problem{Reason: oneLine(err.Error())}
	}
	if err := e.Validate(); err != nil {
		return nil, &records.Problem{Reason: oneLine(err.Error())}
	}
	return e, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// problemOf turns a decoder error into a problem naming the attribute.
func problemOf(err error) *records.Problem {
	var de *kafkace.DecodeError
	if errors.As(err, &de) {
		field := "/" + de.Attribute
		switch de.Attribute {
		case "record", "value", "headers", "content-type":
			field = ""
		}
		return &records.Problem{Field: field, Reason: oneLine(de.Reason)}
	}
	return &records.Problem{Reason: oneLine(err.Error())}
}

// idOf reads the id of an event that did not decode, for its result, when it is a string.
func idOf(raw []byte) string {
	var v struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	s, _ := v.ID.(string)
	return records.Clean(s, 256)
}

func oneLine(s string) string {
	return records.Clean(strings.Join(strings.Fields(s), " "), 300)
}
