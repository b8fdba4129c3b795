package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/myscrollr/connect/shared/httpx"
)

// Source is the integration records come from.
type Source struct {
	IntegrationID string // UUID
	Name          string // the integration's name (slug)
	DeliveryMode  string // events.DeliveryPull or events.DeliveryPush
}

// Record is a valid, normalized record, ready to be stored: integration (the batch's Source),
// stream and key identify it; Data is a JSON object. With the batch's Source it is the standard
// record envelope, schemas/json/record.json: User, ObservedAt and SchemaVersion are optional
// (zero: not known; Store.Write stamps a zero ObservedAt with its clock).
type Record struct {
	Stream string
	Key    string
	Data   json.RawMessage
	// User is the Logto user id the record is about, "" when it is about no one user.
	User string
	// ObservedAt is when the source observed the record (a pushed event's time).
	ObservedAt time.Time
	// SchemaVersion is the version of the contract the record was validated against: the
	// manifest version declaring a push stream's schema.
	SchemaVersion string
}

// Rejection is a record refused with every reason found. Stream and Key are what could be read
// of them ("" when not); Sample is the record as received, cut to MaxSampleBytes when stored.
type Rejection struct {
	Stream   string
	Key      string
	Problems []Problem
	Sample   string
}

// Stream is a declared stream: its name, the top-level members whose values key a record, and
// the compiled schema of its records.
type Stream struct {
	Name   string
	Key    []string
	Schema *Schema
}

// StreamName is the rule for stream names (the records table checks the same).
var StreamName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Normalizer turns a valid record of a stream into the platform's standard shape. It is the
// seam where the WASM transform host (issue 11) plugs in; Identity keeps records as they are.
//
// A record that the normalizer refuses is returned as a *RecordError (the record is rejected
// with its problems, the rest of the batch goes on); any other error fails the whole batch
// (the normalizer itself is broken: a trapped module, a timeout), which is retried later.
type Normalizer interface {
	Normalize(ctx context.Context, src Source, stream string, record json.RawMessage) (json.RawMessage, error)
}

// Identity is the Normalizer that returns every record unchanged.
type Identity struct{}

// Normalize returns record.
func (Identity) Normalize(_ context.Context, _ Source, _ string, record json.RawMessage) (json.RawMessage, error) {
	return record, nil
}

// RecordError is a normalizer's refusal of one record.
type RecordError struct {
	Problems []Problem
}

func (e *RecordError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "record refused: " + strings.Join(parts, "; ")
}

// Check validates one decoded record of stream st (v from jsonschema.UnmarshalJSON, raw its
// JSON text), derives its key and passes it through n. It returns the record ready to store,
// or the problems that reject it (pointers into the record's data). The error is not about
// the record: the normalizer failed as a whole.
func Check(ctx context.Context, src Source, st *Stream, v any, raw json.RawMessage, n Normalizer) (Record, []Problem, error) {
	if len(raw) > MaxRecordBytes {
		return Record{}, []Problem{{Reason: fmt.Sprintf("larger than %d bytes", MaxRecordBytes)}}, nil
	}
	if httpx.JSONDepth(raw, MaxRecordDepth) > MaxRecordDepth {
		return Record{}, []Problem{{Reason: fmt.Sprintf("nested deeper than %d levels", MaxRecordDepth)}}, nil
	}
	if _, ok := v.(map[string]any); !ok {
		return Record{}, []Problem{{Reason: "must be a JSON object"}}, nil
	}
	var problems []Problem
	if !utf8.Valid(raw) {
		problems = append(problems, Problem{Reason: "not valid UTF-8"})
	}
	problems = nulls(v, nil, problems)
	problems = append(problems, st.Schema.Validate(v)...)
	key, keyProblems := deriveKey(st.Key, v)
	for _, kp := range keyProblems {
		// A key member the schema already refused needs no second reason.
		if !slices.ContainsFunc(problems, func(p Problem) bool { return p.Field == kp.Field }) {
			problems = append(problems, kp)
		}
	}
	if len(problems) > 0 {
		return Record{}, tidy(problems), nil
	}
	if _, ok := n.(Identity); ok {
		// The output is raw, already proven a bounded JSON object in valid UTF-8 above: of
		// checkOutput only its NUL test says anything new (validating the bytes once).
		if bytes.Contains(raw, []byte(`\u0000`)) {
			return Record{}, []Problem{{Reason: "normalizer output contains a NUL character"}}, nil
		}
		return Record{Stream: st.Name, Key: key, Data: raw}, nil, nil
	}
	out, err := n.Normalize(ctx, src, st.Name, raw)
	if err != nil {
		var re *RecordError
		if errors.As(err, &re) {
			ps := re.Problems
			if len(ps) == 0 {
				ps = []Problem{{Reason: "refused by the normalizer"}}
			}
			return Record{}, tidy(append([]Problem(nil), ps...)), nil
		}
		return Record{}, nil, fmt.Errorf("records: normalize %s/%s: %w", src.Name, st.Name, err)
	}
	if p := checkOutput(out); p != "" {
		return Record{}, []Problem{{Reason: "normalizer output " + p}}, nil
	}
	return Record{Stream: st.Name, Key: key, Data: out}, nil, nil
}

// checkOutput says why a normalizer's output cannot be stored, or "".
func checkOutput(out json.RawMessage) string {
	switch {
	case len(out) > MaxRecordBytes:
		return fmt.Sprintf("larger than %d bytes", MaxRecordBytes)
	case !utf8.Valid(out) || !json.Valid(out):
		return "is not valid JSON"
	case strings.Contains(string(out), `\u0000`):
		return "contains a NUL character"
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(out, &obj) != nil || obj == nil {
		return "is not a JSON object"
	}
	return ""
}

// nulls reports strings and member names holding NUL: PostgreSQL's jsonb cannot store them.
func nulls(v any, at []string, out []Problem) []Problem {
	if len(out) >= MaxProblems {
		return out
	}
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			out = append(out, Problem{Field: Pointer(at), Reason: `contains a NUL character (\u0000), which cannot be stored`})
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				out = append(out, Problem{Field: Pointer(at), Reason: `a member name contains a NUL character (\u0000), which cannot be stored`})
				continue
			}
			out = nulls(e, append(at, k), out)
		}
	case []any:
		for i, e := range x {
			out = nulls(e, append(at, strconv.Itoa(i)), out)
		}
	}
	return out
}

// deriveKey computes a record's key from the stream's key members: one member, its value;
// several, the JSON array of their values. Each value must be a non-empty string or an integer.
func deriveKey(members []string, v any) (string, []Problem) {
	obj, _ := v.(map[string]any)
	var problems []Problem
	vals := make([]any, 0, len(members))
	parts := make([]string, 0, len(members))
	for _, m := range members {
		at := "/" + escape(m)
		switch x := obj[m].(type) {
		case nil:
			if _, ok := obj[m]; ok {
				problems = append(problems, Problem{Field: at, Reason: "key member: must be a string or an integer, not null"})
			} else {
				problems = append(problems, Problem{Field: at, Reason: "key member: required"})
			}
		case string:
			if x == "" {
				problems = append(problems, Problem{Field: at, Reason: "key member: must not be empty"})
			}
			vals, parts = append(vals, x), append(parts, x)
		case json.Number:
			i, err := strconv.ParseInt(string(x), 10, 64)
			if err != nil {
				problems = append(problems, Problem{Field: at, Reason: "key member: must be a string or an integer"})
				continue
			}
			vals, parts = append(vals, i), append(parts, strconv.FormatInt(i, 10))
		default:
			problems = append(problems, Problem{Field: at, Reason: "key member: must be a string or an integer"})
		}
	}
	if len(problems) > 0 {
		return "", problems
	}
	key := parts[0]
	if len(members) > 1 {
		b, _ := json.Marshal(vals)
		key = string(b)
	}
	if n := utf8.RuneCountInString(key); n > MaxKeyLen {
		return "", []Problem{{Field: "/" + escape(members[0]), Reason: fmt.Sprintf("key is %d characters, at most %d", n, MaxKeyLen)}}
	}
	return key, nil
}
