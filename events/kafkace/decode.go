package kafkace

import (
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Limits applied by [Decode] and by a zero [Decoder].
const (
	// DefaultMaxValueBytes bounds the record value (the data, or the whole structured event).
	DefaultMaxValueBytes = 1 << 20
	// DefaultMaxHeaderBytes bounds the sum of all header key and value lengths.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxHeaders bounds the number of headers.
	DefaultMaxHeaders = 64
)

// DecodeError reports why a record is not a valid CloudEvent.
//
// Attribute is the CloudEvents attribute at fault ("id", "time", an extension name, ...) or,
// for defects of the record itself, one of "record", "value", "headers", "content-type".
type DecodeError struct {
	Attribute string
	Reason    string
}

func (e *DecodeError) Error() string {
	return "kafkace: decode: " + e.Attribute + ": " + e.Reason
}

func decodeErr(attr, format string, args ...any) *DecodeError {
	return &DecodeError{Attribute: attr, Reason: fmt.Sprintf(format, args...)}
}

// Decoder decodes records under configurable limits. The zero value uses the defaults.
type Decoder struct {
	MaxValueBytes  int // 0 means DefaultMaxValueBytes
	MaxHeaderBytes int // 0 means DefaultMaxHeaderBytes
	MaxHeaders     int // 0 means DefaultMaxHeaders; also bounds the members of a structured event
}

// Decode decodes r with the default limits. See [Decoder.Decode].
func Decode(r *kgo.Record) (cloudevents.Event, error) {
	return Decoder{}.Decode(r)
}

// Decode maps a binary- or structured-mode record to an event. Every failure is a
// [*DecodeError]. The event's data aliases r.Value in binary mode.
func (d Decoder) Decode(r *kgo.Record) (cloudevents.Event, error) {
	if r == nil {
		return cloudevents.Event{}, decodeErr("record", "nil record")
	}
	maxValue := cmpOr(d.MaxValueBytes, DefaultMaxValueBytes)
	if len(r.Value) > maxValue {
		return cloudevents.Event{}, decodeErr("value", "%d bytes exceeds the limit of %d bytes", len(r.Value), maxValue)
	}
	maxHeaders := cmpOr(d.MaxHeaders, DefaultMaxHeaders)
	if len(r.Headers) > maxHeaders {
		return cloudevents.Event{}, decodeErr("headers", "%d headers exceeds the limit of %d", len(r.Headers), maxHeaders)
	}
	maxHeaderBytes := cmpOr(d.MaxHeaderBytes, DefaultMaxHeaderBytes)
	total := 0
	ctIndex := -1
	for i, h := range r.Headers {
		total += len(h.Key) + len(h.Value)
		if total > maxHeaderBytes {
			return cloudevents.Event{}, decodeErr("headers", "more than %d bytes of headers", maxHeaderBytes)
		}
		if strings.EqualFold(h.Key, HeaderContentType) {
			if ctIndex >= 0 {
				return cloudevents.Event{}, decodeErr("content-type", "duplicate header %q", h.Key)
			}
			ctIndex = i
		}
	}

	var (
		e   cloudevents.Event
		err error
	)
	if ctIndex >= 0 && hasPrefixFold(r.Headers[ctIndex].Value, "application/cloudevents") {
		e, err = decodeStructured(r, string(r.Headers[ctIndex].Value), maxHeaders)
	} else {
		e, err = decodeBinary(r, ctIndex)
	}
	if err != nil {
		return cloudevents.Event{}, err
	}
	ec := e.Context.(*event.EventContextV1)
	if _, ok := ec.Extensions[ExtPartitionKey]; !ok && len(r.Key) > 0 {
		// The key is out-of-band; one that is not a valid CloudEvents string is left out.
		if key := string(r.Key); checkString(key) == "" {
			if ec.Extensions == nil {
				ec.Extensions = make(map[string]any, 1)
			}
			ec.Extensions[ExtPartitionKey] = key
		}
	}
	if err := e.Validate(); err != nil {
		return cloudevents.Event{}, fromValidation(err)
	}
	return e, nil
}

func decodeBinary(r *kgo.Record, ctIndex int) (cloudevents.Event, error) {
	ec := &event.EventContextV1{}
	var specSeen, sourceSeen bool
	var dataContentType *string
	// One string holds every header value; attributes are substrings of it (one allocation
	// instead of one per attribute).
	var sb strings.Builder
	n := 0
	for _, h := range r.Headers {
		n += len(h.Value)
	}
	sb.Grow(n)
	for _, h := range r.Headers {
		sb.Write(h.Value)
	}
	values := sb.String()
	off := 0
	var ct string
	for i, h := range r.Headers {
		v := values[off : off+len(h.Value)]
		off += len(h.Value)
		if i == ctIndex {
			ct = v
		}
		name, ok := ceName(h.Key)
		if !ok {
			continue // not a CloudEvents header: other metadata travels alongside
		}
		if !validName(name) {
			return cloudevents.Event{}, decodeErr(quote(name), "invalid attribute name in header %s: must be lower-case ASCII letters and digits", quote(h.Key))
		}
		for _, prev := range r.Headers[:i] {
			if pn, ok := ceName(prev.Key); ok && pn == name {
				return cloudevents.Event{}, decodeErr(name, "duplicate header %s", quote(h.Key))
			}
		}
		if reason := checkString(v); reason != "" {
			return cloudevents.Event{}, decodeErr(name, "%s", reason)
		}
		if err := setAttribute(ec, name, v); err != nil {
			return cloudevents.Event{}, err
		}
		switch name {
		case "specversion":
			specSeen = true
		case "source":
			sourceSeen = true
		case "datacontenttype":
			dataContentType = ec.DataContentType
		}
	}
	if !specSeen {
		return cloudevents.Event{}, decodeErr("specversion", "missing: no ce_specversion header, and the content-type is not application/cloudevents (structured mode)")
	}
	if ctIndex >= 0 {
		if reason := checkString(ct); reason != "" {
			return cloudevents.Event{}, decodeErr("datacontenttype", "%s", reason)
		}
		if dataContentType != nil && *dataContentType != ct {
			return cloudevents.Event{}, decodeErr("datacontenttype", "ce_datacontenttype %s disagrees with content-type %s", quote(*dataContentType), quote(ct))
		}
		ec.DataContentType = &ct
	}
	if err := required(ec, sourceSeen); err != nil {
		return cloudevents.Event{}, err
	}
	e := cloudevents.Event{Context: ec}
	if len(r.Value) > 0 {
		e.DataEncoded = r.Value
	}
	return e, nil
}

// setAttribute sets one attribute from its canonical string form.
func setAttribute(ec *event.EventContextV1, name, v string) error {
	switch name {
	case "specversion":
		if v != event.CloudEventsVersionV1 {
			return decodeErr(name, "unsupported specversion %s, want %q", quote(v), event.CloudEventsVersionV1)
		}
	case "id":
		if v == "" {
			return decodeErr(name, "must be a non-empty string")
		}
		ec.ID = v
	case "type":
		if v == "" {
			return decodeErr(name, "must be a non-empty string")
		}
		ec.Type = v
	case "source":
		if v == "" {
			return decodeErr(name, "must be a non-empty URI-reference")
		}
		u, err := url.Parse(v)
		if err != nil {
			return decodeErr(name, "not a URI-reference: %s", quote(v))
		}
		ec.Source = types.URIRef{URL: *u}
	case "subject":
		if v == "" {
			return decodeErr(name, "if present, must be a non-empty string")
		}
		ec.Subject = &v
	case "datacontenttype":
		if _, _, err := mime.ParseMediaType(v); err != nil {
			return decodeErr(name, "not an RFC 2046 media type: %s", quote(v))
		}
		ec.DataContentType = &v
	case "dataschema":
		u, err := url.Parse(v)
		if err != nil || u.Scheme == "" {
			return decodeErr(name, "not an absolute URI: %s", quote(v))
		}
		ec.DataSchema = &types.URI{URL: *u}
	case "time":
		t, err := parseTime(v)
		if err != nil {
			return decodeErr(name, "%s", err)
		}
		ec.Time = &types.Timestamp{Time: t}
	case "data":
		return decodeErr(name, "data is the record value, not a header")
	default:
		if ec.Extensions == nil {
			ec.Extensions = make(map[string]any, 2)
		}
		ec.Extensions[name] = v
	}
	return nil
}

func required(ec *event.EventContextV1, sourceSeen bool) error {
	switch {
	case ec.ID == "":
		return decodeErr("id", "missing")
	case !sourceSeen:
		return decodeErr("source", "missing")
	case ec.Type == "":
		return decodeErr("type", "missing")
	}
	return nil
}

// parseTime parses an RFC 3339 timestamp and keeps it in UTC. Years outside 0000-9999 after
// conversion to UTC are rejected because they could not be written back in RFC 3339.
func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 timestamp: %s", quote(v))
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("year %d out of the RFC 3339 range in %s", y, quote(v))
	}
	return t, nil
}

func fromValidation(err error) error {
	var ve event.ValidationError
	if errors.As(err, &ve) && len(ve) > 0 {
		keys := make([]string, 0, len(ve))
		for k := range ve {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return &DecodeError{Attribute: keys[0], Reason: ve[keys[0]].Error()}
	}
	return &DecodeError{Attribute: "record", Reason: err.Error()}
}

// ceName returns the attribute name of a "ce_" header (prefix matched case-insensitively).
func ceName(key string) (string, bool) {
	if len(key) < len(HeaderPrefix) || !strings.EqualFold(key[:len(HeaderPrefix)], HeaderPrefix) {
		return "", false
	}
	return key[len(HeaderPrefix):], true
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// quote renders untrusted text for an error message: quoted, escaped, at most 64 bytes.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
