package kafkace

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kgo"
)

// decodeStructured decodes a structured-mode record whose content-type starts with
// application/cloudevents. Only the JSON event format is supported.
func decodeStructured(r *kgo.Record, contentType string, maxAttrs int) (cloudevents.Event, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return cloudevents.Event{}, decodeErr("content-type", "malformed media type %s", quote(contentType))
	}
	switch {
	case strings.HasPrefix(mt, "application/cloudevents-batch"):
		return cloudevents.Event{}, decodeErr("content-type", "batch content mode (%s) is not supported by the Kafka protocol binding", mt)
	case mt != "application/cloudevents+json":
		return cloudevents.Event{}, decodeErr("content-type", "unsupported event format %s: only application/cloudevents+json", quote(mt))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return cloudevents.Event{}, decodeErr("content-type", "unsupported charset %s: JSON events must be UTF-8", quote(cs))
	}
	return decodeJSON(r.Value, maxAttrs)
}

// decodeJSON parses the JSON event format strictly: one object, no duplicate members, no
// trailing data, attribute values of the right JSON type, at most maxAttrs members.
func decodeJSON(value []byte, maxAttrs int) (cloudevents.Event, error) {
	if !utf8.Valid(value) {
		return cloudevents.Event{}, decodeErr("value", "structured event is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return cloudevents.Event{}, decodeErr("value", "structured event must be a JSON object")
	}
	ec := &event.EventContextV1{}
	var (
		specSeen, sourceSeen bool
		data, dataBase64     json.RawMessage
		seen                 []string
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return cloudevents.Event{}, decodeErr("value", "malformed JSON: %s", errText(err))
		}
		key, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return cloudevents.Event{}, decodeErr(quote(key), "malformed JSON value: %s", errText(err))
		}
		if len(seen) == maxAttrs {
			return cloudevents.Event{}, decodeErr("value", "more than %d members in the structured event", maxAttrs)
		}
		for _, s := range seen {
			if s == key {
				return cloudevents.Event{}, decodeErr(key, "duplicate member")
			}
		}
		seen = append(seen, key)
		switch key {
		case "data":
			if !isNull(raw) {
				data = raw
			}
			continue
		case "data_base64":
			if !isNull(raw) {
				dataBase64 = raw
			}
			continue
		}
		if !validName(key) {
			return cloudevents.Event{}, decodeErr(quote(key), "invalid attribute name: must be lower-case ASCII letters and digits")
		}
		if isNull(raw) {
			continue // null means absent in the JSON format
		}
		switch key {
		case "specversion", "id", "source", "type", "subject", "datacontenttype", "dataschema", "time":
			s, err := jsonString(key, raw)
			if err != nil {
				return cloudevents.Event{}, err
			}
			if err := setAttribute(ec, key, s); err != nil {
				return cloudevents.Event{}, err
			}
			specSeen = specSeen || key == "specversion"
			sourceSeen = sourceSeen || key == "source"
		default:
			v, err := jsonExtension(key, raw)
			if err != nil {
				return cloudevents.Event{}, err
			}
			if ec.Extensions == nil {
				ec.Extensions = make(map[string]any, 2)
			}
			ec.Extensions[key] = v
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return cloudevents.Event{}, decodeErr("value", "malformed JSON: %s", errText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return cloudevents.Event{}, decodeErr("value", "trailing data after the JSON object")
	}
	if !specSeen {
		return cloudevents.Event{}, decodeErr("specversion", "missing")
	}
	if err := required(ec, sourceSeen); err != nil {
		return cloudevents.Event{}, err
	}

	e := cloudevents.Event{Context: ec}
	switch {
	case data != nil && dataBase64 != nil:
		return cloudevents.Event{}, decodeErr("data", "data and data_base64 are mutually exclusive")
	case dataBase64 != nil:
		s, err := jsonString("data_base64", dataBase64)
		if err != nil {
			return cloudevents.Event{}, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return cloudevents.Event{}, decodeErr("data_base64", "not standard base64")
		}
		if len(b) > 0 {
			e.DataEncoded, e.DataBase64 = b, true
		}
	case data != nil:
		if ec.DataContentType == nil {
			ct := "application/json" // implied by the JSON format when data is present
			ec.DataContentType = &ct
		}
		if !isJSONMediaType(*ec.DataContentType) && data[0] == '"' {
			// Non-JSON data travels as a JSON string holding the data itself.
			var s string
			if err := json.Unmarshal(data, &s); err != nil {
				return cloudevents.Event{}, decodeErr("data", "malformed JSON string")
			}
			data = json.RawMessage(s)
		}
		if len(data) > 0 {
			e.DataEncoded = data
		}
	}
	return e, nil
}

func jsonString(attr string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", decodeErr(attr, "must be a JSON string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", decodeErr(attr, "malformed JSON string")
	}
	if reason := checkString(s); reason != "" {
		return "", decodeErr(attr, "%s", reason)
	}
	return s, nil
}

// jsonExtension maps an extension's JSON value to a CloudEvents value: string, Integer (int32)
// or Boolean.
func jsonExtension(name string, raw json.RawMessage) (any, error) {
	switch c := raw[0]; {
	case c == '"':
		return jsonString(name, raw)
	case c == 't' || c == 'f':
		return c == 't', nil
	case c == '-' || (c >= '0' && c <= '9'):
		n, err := strconv.ParseInt(string(raw), 10, 32)
		if err != nil {
			return nil, decodeErr(name, "number must be an integer in the 32-bit signed range")
		}
		return int32(n), nil
	default:
		return nil, decodeErr(name, "extension value must be a string, integer or boolean")
	}
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// errText keeps encoding/json's message (which quotes at most one offending character).
func errText(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
