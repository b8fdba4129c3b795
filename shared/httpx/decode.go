package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/myscrollr/connect/shared/clip"
)

// DecodeJSON decodes the request body into dst strictly. It reads at most maxBytes
// (DefaultMaxBody when maxBytes <= 0) through http.MaxBytesReader, requires a JSON content
// type (application/json or any +json type), rejects unknown fields and trailing data. Every
// failure caused by the input is a *Problem: 413 (TooLarge) when the body is too large, else
// 400 naming the field when there is one, e.g. `field "price_cents": expected integer, got
// string`. Only a programming error (dst not a non-nil pointer) yields a non-Problem error.
func DecodeJSON(r *http.Request, dst any, maxBytes int64) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.Body == nil || r.Body == http.NoBody {
		return BadRequest("request body is empty")
	}
	if r.ContentLength > maxBytes {
		return TooLarge(maxBytes)
	}
	body := http.MaxBytesReader(nil, r.Body, maxBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, maxBytes)
	}
	// Exactly one JSON value: anything after it but whitespace is an error.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return BadRequest("request body has data after the JSON value")
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return TooLarge(maxBytes)
		}
		return BadRequest("request body has data after the JSON value")
	}
	return nil
}

func checkJSONContentType(ct string) *Problem {
	field := func(reason string) *Problem {
		return BadRequest("Content-Type must be application/json", FieldError{Field: "Content-Type", Reason: reason})
	}
	if ct == "" {
		return field("missing")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return field("malformed media type")
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return field(fmt.Sprintf("unsupported media type %q", clip.Ellipsis(mt, 64)))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return field(fmt.Sprintf("unsupported charset %q", clip.Ellipsis(cs, 32)))
	}
	return nil
}

func decodeError(err error, maxBytes int64) error {
	var (
		mbe    *http.MaxBytesError
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		inv    *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &mbe):
		return TooLarge(maxBytes)
	case errors.Is(err, io.EOF):
		return BadRequest("request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("malformed JSON: unexpected end of input")
	case errors.As(err, &syntax):
		return BadRequest(fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, clip.Ellipsis(syntax.Error(), 200)))
	case errors.As(err, &typ):
		reason := fmt.Sprintf("expected %s, got %s", jsonKind(typ.Type), gotKind(typ.Value))
		if typ.Field == "" {
			return BadRequest("request body: "+reason, FieldError{Field: "", Reason: reason})
		}
		field := clip.Ellipsis(typ.Field, 200)
		return BadRequest(fmt.Sprintf("field %q: %s", field, reason), FieldError{Field: field, Reason: reason})
	case errors.As(err, &inv):
		return fmt.Errorf("httpx: DecodeJSON: %w", err) // programming error
	}
	// encoding/json reports unknown fields only as text: `json: unknown field "name"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		field = clip.Ellipsis(field, 200)
		return BadRequest(fmt.Sprintf("field %q: unknown field", field), FieldError{Field: field, Reason: "unknown field"})
	}
	// Errors from a type's own UnmarshalJSON/UnmarshalText (e.g. a malformed time).
	return BadRequest("invalid JSON value: " + clip.Ellipsis(err.Error(), 200))
}

// jsonKind names the JSON kind a Go type accepts.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.String()
}

// gotKind keeps only the kind of the offending JSON value ("number -5" -> "number"), so the
// client's value is not echoed back unbounded.
func gotKind(v string) string {
	kind, _, _ := strings.Cut(v, " ")
	if kind == "" {
		return "value"
	}
	return kind
}

// ReadBody reads the whole request body, for handlers that need its exact bytes (webhook
// signatures are computed over the raw body: Logto, Stripe). It reads at most limit bytes
// (DefaultMaxBody when limit <= 0) through http.MaxBytesReader, so the server closes the
// connection of a client that keeps sending. A body over the limit, declared or actual, is a
// 413 problem naming the limit; a body that cannot be read (the client went away, a broken
// chunked encoding) is a 400 problem. An absent body reads as empty.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Problem) {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if r.ContentLength > limit {
		return nil, TooLarge(limit)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, TooLarge(limit)
		}
		p := BadRequest("the request body could not be read")
		p.Cause = err
		return nil, p
	}
	return body, nil
}

// JSONDepth is the deepest nesting of objects and arrays in JSON data, ignoring brackets in
// strings, counted without parsing, so a document can be refused for its depth before a
// parser recurses into it. It stops counting past limit.
func JSONDepth(data []byte, limit int) int {
	d, deepest, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			d++
			if d > deepest {
				deepest = d
				if deepest > limit {
					return deepest
				}
			}
		case c == '}' || c == ']':
			d = max(d-1, 0)
		}
	}
	return deepest
}
