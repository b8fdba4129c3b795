package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/shared/httpx"
)

// The pull contracts, in schemas/json.
const (
	PullSchemaPath = "json/pull-schema.json" // GET /schema
	PullDataPath   = "json/pull-data.json"   // GET /data
)

// Bounds of the pull documents (the body itself is bounded before, by the poller's
// POLL_MAX_BODY_BYTES).
const (
	MaxPullSchemaBytes = 1 << 20
	MaxDocumentDepth   = 40 // a document wraps records or schemas in a few levels
	// DefaultRefreshInterval applies when GET /schema names none.
	DefaultRefreshInterval = 300 * time.Second
)

// PullSchema is a valid GET /schema document.
type PullSchema struct {
	RefreshInterval time.Duration
	Streams         []*Stream
	byName          map[string]*Stream
}

// Stream returns the declared stream called name, or nil.
func (p *PullSchema) Stream(name string) *Stream { return p.byName[name] }

// DocumentError is a GET /schema or GET /data document that is refused as a whole: every
// problem, pointers into the document.
type DocumentError struct {
	Document string // "schema" or "data"
	Problems []Problem
}

func (e *DocumentError) Error() string {
	parts := make([]string, 0, len(e.Problems))
	for i, p := range e.Problems {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Problems)-5))
			break
		}
		if p.Field == "" {
			parts = append(parts, p.Reason)
		} else {
			parts = append(parts, fmt.Sprintf("%q: %s", p.Field, p.Reason))
		}
	}
	return fmt.Sprintf("invalid /%s document: %s", e.Document, strings.Join(parts, "; "))
}

type contract struct {
	schema *jsonschema.Schema
}

var (
	loadOnce           sync.Once
	schemaDoc, dataDoc contract
	loadErr            error
)

func loadContracts() {
	load := func(path string) (contract, error) {
		raw, err := schemas.JSON.ReadFile(path)
		if err != nil {
			return contract{}, fmt.Errorf("records: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return contract{}, fmt.Errorf("records: %s: %w", path, err)
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource(path, doc); err != nil {
			return contract{}, fmt.Errorf("records: %s: %w", path, err)
		}
		s, err := c.Compile(path)
		if err != nil {
			return contract{}, fmt.Errorf("records: %s: %w", path, err)
		}
		return contract{schema: s}, nil
	}
	if schemaDoc, loadErr = load(PullSchemaPath); loadErr != nil {
		return
	}
	dataDoc, loadErr = load(PullDataPath)
}

// decode bounds and decodes a document and validates it against its contract. It returns the
// decoded value and the schema's problems (not sorted).
func (c contract) decode(body []byte, limit int) (any, []Problem) {
	if len(body) > limit {
		return nil, []Problem{{Reason: fmt.Sprintf("larger than %d bytes", limit)}}
	}
	if !utf8.Valid(body) {
		return nil, []Problem{{Reason: "not valid UTF-8"}}
	}
	if httpx.JSONDepth(body, MaxDocumentDepth) > MaxDocumentDepth {
		return nil, []Problem{{Reason: fmt.Sprintf("nested deeper than %d levels", MaxDocumentDepth)}}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return nil, []Problem{{Reason: "not valid JSON"}}
	}
	err = c.schema.Validate(v)
	if err == nil {
		return v, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, []Problem{{Reason: oneLine(err)}}
	}
	return v, collect(ve, nil)
}

// ParsePullSchema parses and checks a GET /schema body: the contract, unique stream names,
// and every stream's schema compiling. A refused document is a *DocumentError.
func ParsePullSchema(body []byte) (*PullSchema, error) {
	loadOnce.Do(loadContracts)
	if loadErr != nil {
		return nil, loadErr
	}
	_, problems := schemaDoc.decode(body, MaxPullSchemaBytes)
	if len(problems) == 0 && bytes.Contains(body, []byte(`\u0000`)) {
		problems = append(problems, Problem{Reason: `contains a NUL character (\u0000), which cannot be stored`})
	}
	if len(problems) > 0 {
		return nil, &DocumentError{Document: "schema", Problems: tidy(problems)}
	}
	var doc struct {
		RefreshIntervalSeconds *int `json:"refresh_interval_seconds"`
		Streams                []struct {
			Name   string          `json:"name"`
			Key    []string        `json:"key"`
			Schema json.RawMessage `json:"schema"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &DocumentError{Document: "schema", Problems: []Problem{{Reason: "does not fit the contract's types"}}}
	}
	out := &PullSchema{RefreshInterval: DefaultRefreshInterval, byName: map[string]*Stream{}}
	if doc.RefreshIntervalSeconds != nil {
		out.RefreshInterval = time.Duration(*doc.RefreshIntervalSeconds) * time.Second
	}
	for i, s := range doc.Streams {
		at := "/streams/" + strconv.Itoa(i)
		if out.byName[s.Name] != nil {
			problems = append(problems, Problem{Field: at + "/name", Reason: fmt.Sprintf("duplicate stream %q", s.Name)})
			continue
		}
		sch, err := CompileSchema(s.Schema)
		if err != nil {
			problems = append(problems, Problem{Field: at + "/schema", Reason: err.Error()})
			continue
		}
		st := &Stream{Name: s.Name, Key: s.Key, Schema: sch}
		out.Streams = append(out.Streams, st)
		out.byName[s.Name] = st
	}
	if len(problems) > 0 {
		return nil, &DocumentError{Document: "schema", Problems: tidy(problems)}
	}
	return out, nil
}

// PullItem is one record of a GET /data document as received: its index, the stream it names
// (as far as it could be read), its data decoded and as JSON text, and the item's JSON text
// (the sample of a rejection). Problems are the contract's, pointers into the item.
type PullItem struct {
	Index    int
	Stream   string
	Data     any
	RawData  json.RawMessage
	Raw      json.RawMessage
	Problems []Problem
}

// ParsePullData parses a GET /data body of at most limit bytes. A document refused as a whole
// (not JSON, too big or deep, no records array, too many records) is a *DocumentError;
// otherwise every item is returned, those off the contract with their problems, so one bad
// record does not cost the others.
func ParsePullData(body []byte, limit int) ([]PullItem, error) {
	loadOnce.Do(loadContracts)
	if loadErr != nil {
		return nil, loadErr
	}
	v, problems := dataDoc.decode(body, limit)
	if v == nil {
		return nil, &DocumentError{Document: "data", Problems: problems}
	}
	perItem := map[int][]Problem{}
	var docProblems []Problem
	for _, p := range problems {
		if i, rest, ok := itemPointer(p.Field); ok {
			perItem[i] = append(perItem[i], Problem{Field: rest, Reason: p.Reason})
			continue
		}
		docProblems = append(docProblems, p)
	}
	if len(docProblems) > 0 {
		return nil, &DocumentError{Document: "data", Problems: tidy(docProblems)}
	}
	var doc struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &DocumentError{Document: "data", Problems: []Problem{{Reason: "does not fit the contract's types"}}}
	}
	decoded, _ := v.(map[string]any)["records"].([]any)
	if len(decoded) != len(doc.Records) {
		return nil, &DocumentError{Document: "data", Problems: []Problem{{Field: "/records", Reason: "could not be read"}}}
	}
	items := make([]PullItem, len(doc.Records))
	for i, raw := range doc.Records {
		it := PullItem{Index: i, Raw: raw}
		if obj, ok := decoded[i].(map[string]any); ok {
			it.Stream, _ = obj["stream"].(string)
			it.Data = obj["data"]
		}
		var parts struct {
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(raw, &parts) == nil {
			it.RawData = parts.Data
		}
		if ps := perItem[i]; len(ps) > 0 {
			it.Problems = tidy(ps)
		}
		items[i] = it
	}
	return items, nil
}

// itemPointer splits "/records/3/data/x" into 3 and "/data/x".
func itemPointer(p string) (int, string, bool) {
	rest, ok := strings.CutPrefix(p, "/records/")
	if !ok {
		return 0, "", false
	}
	idx, tail, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 {
		return 0, "", false
	}
	if tail != "" {
		tail = "/" + tail
	}
	return i, tail, true
}

// CheckPull turns the items of a GET /data document into records to store and rejections,
// against the source's declared streams, through n. Rejection pointers are into the item
// ("/stream", "/data/price_cents"). The error means the normalizer failed as a whole: nothing
// of the batch should be stored.
func CheckPull(ctx context.Context, src Source, sch *PullSchema, items []PullItem, n Normalizer) ([]Record, []Rejection, error) {
	return checkPullBatch(ctx, src, sch, items, AsBatch(n)) // normalize.go
}
