package kafkace

import (
	"encoding/json"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ContentTypeStructuredJSON is the content type of a structured-mode JSON event.
const ContentTypeStructuredJSON = "application/cloudevents+json"

// DecodeStructuredJSON decodes value, one structured-mode JSON event, exactly as [Decoder.Decode]
// decodes a record without key whose content-type is application/cloudevents+json: the same
// events are accepted, equal to what Decode returns, and the same are refused with the same
// [*DecodeError]. The event's data may alias value.
//
// It is the hot path of HTTP ingest, where a batch carries hundreds of small events. The
// common shape (attributes and extensions as JSON strings without escapes, data a JSON object
// or absent, members unique) is read by a single-pass scanner that builds the event with the
// strict decoder's own attribute rules (setAttribute, checkString, required, Validate); on
// anything else (an escape, a number or boolean, null, data_base64, data that is not an
// object, a bad attribute, malformed JSON) it does not decide but hands value to the strict
// decoder, which gives the answer and the reason. So the fast path can only accept, and only
// what the strict decoder accepts: FuzzDecodeStructuredJSON checks both decisions and events
// against Decode.
func (d Decoder) DecodeStructuredJSON(value []byte) (cloudevents.Event, error) {
	if e, ok := d.fastJSON(value); ok {
		return e, nil
	}
	return d.Decode(&kgo.Record{
		Headers: []kgo.RecordHeader{{Key: HeaderContentType, Value: []byte(ContentTypeStructuredJSON)}},
		Value:   value,
	})
}

// fastJSON decodes the common shape of a structured event; ok false means "not decided here".
func (d Decoder) fastJSON(value []byte) (e cloudevents.Event, ok bool) {
	if len(value) > cmpOr(d.MaxValueBytes, DefaultMaxValueBytes) || !utf8.Valid(value) {
		return e, false
	}
	maxAttrs := cmpOr(d.MaxHeaders, DefaultMaxHeaders)
	var (
		seen                 [16]string
		nseen                int
		specSeen, sourceSeen bool
		data                 []byte
		keyBuf               []string
	)
	ec := &event.EventContextV1{}
	i := skipWS(value, 0)
	if i >= len(value) || value[i] != '{' {
		return e, false
	}
	i = skipWS(value, i+1)
	if i < len(value) && value[i] == '}' {
		return e, false // an empty object is refused (no specversion): the strict decoder says so
	}
	for {
		key, j, ok := plainString(value, i)
		if !ok {
			return e, false
		}
		i = skipWS(value, j)
		if i >= len(value) || value[i] != ':' {
			return e, false
		}
		i = skipWS(value, i+1)
		// Duplicates and the member bound, as the strict decoder counts them.
		count := nseen + len(keyBuf)
		if count == maxAttrs {
			return e, false
		}
		for _, s := range seen[:nseen] {
			if s == key {
				return e, false
			}
		}
		for _, s := range keyBuf {
			if s == key {
				return e, false
			}
		}
		if nseen < len(seen) {
			seen[nseen] = key
			nseen++
		} else {
			keyBuf = append(keyBuf, key)
		}
		if key == "data" {
			if i >= len(value) || value[i] != '{' {
				return e, false // null, arrays, scalars and strings: the strict decoder's rules
			}
			end, ok := objectEnd(value, i)
			if !ok || !json.Valid(value[i:end]) {
				return e, false
			}
			data, i = value[i:end:end], end
		} else {
			if !validName(key) || key == "data_base64" {
				return e, false
			}
			v, j, ok := plainString(value, i)
			if !ok || checkString(v) != "" {
				return e, false
			}
			i = j
			if err := setAttribute(ec, key, v); err != nil {
				return e, false
			}
			specSeen = specSeen || key == "specversion"
			sourceSeen = sourceSeen || key == "source"
		}
		i = skipWS(value, i)
		if i >= len(value) {
			return e, false
		}
		if value[i] == '}' {
			break
		}
		if value[i] != ',' {
			return e, false
		}
		i = skipWS(value, i+1)
	}
	if skipWS(value, i+1) != len(value) || !specSeen || required(ec, sourceSeen) != nil {
		return e, false
	}
	e = cloudevents.Event{Context: ec}
	if data != nil {
		if ec.DataContentType == nil {
			ct := "application/json" // implied by the JSON format when data is present
			ec.DataContentType = &ct
		}
		e.DataEncoded = data
	}
	if e.Validate() != nil {
		return cloudevents.Event{}, false
	}
	return e, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plainString reads the JSON string starting at b[i] when it has no escapes and no control
// characters (so its bytes are its value); ok false otherwise. j is the index after it.
func plainString(b []byte, i int) (s string, j int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j = i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

// objectEnd returns the index after the JSON object or array starting at b[i], by bracket
// depth outside strings; ok false when it does not close. The caller checks it is valid JSON.
func objectEnd(b []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		}
	}
	return 0, false
}
