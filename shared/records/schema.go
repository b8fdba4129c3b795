package records

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/myscrollr/connect/shared/clip"
	"github.com/myscrollr/connect/shared/httpx"
)

// Bounds on what a source may declare and send.
const (
	// MaxSchemaBytes bounds one stream's JSON Schema, as JSON.
	MaxSchemaBytes = 64 << 10
	// MaxSchemaDepth bounds the nesting of one stream's JSON Schema.
	MaxSchemaDepth = 32
	// MaxRecordBytes bounds one record's data, as JSON.
	MaxRecordBytes = 256 << 10
	// MaxRecordDepth bounds the nesting of one record's data.
	MaxRecordDepth = 32
	// MaxKeyLen bounds a record's key (characters), as the records table does.
	MaxKeyLen = 256
	// MaxProblems is the most problems reported for one record (the rest are summed up in one).
	MaxProblems = 20
)

// Problem is one reason a record (or a document) is refused: Field is a JSON pointer (RFC
// 6901) into it ("/price_cents", "" for the whole), Reason says what is wrong in words.
type Problem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Reason
	}
	return fmt.Sprintf("%s: %s", p.Field, p.Reason)
}

// Schema is a compiled stream schema: the JSON Schema a stream's records must match.
type Schema struct {
	s   *jsonschema.Schema
	doc any
}

var printer = message.NewPrinter(language.English)

// refuseLoader is the compiler's only loader: a stream schema is untrusted input, so a $ref
// or $schema naming anything but the built-in metaschemas fails to compile instead of
// reaching the network or the file system.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: remote references are not loaded; keep the schema self-contained ($defs)", url)
}

// CompileSchema compiles a stream's JSON Schema (draft 2020-12 unless its $schema names another
// built-in draft) from untrusted input: bounded in size and depth, no remote $ref, formats
// asserted (a declared "format": "date-time" is checked). The error says why in words fit for
// the developer.
func CompileSchema(raw []byte) (*Schema, error) {
	if len(raw) > MaxSchemaBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxSchemaBytes)
	}
	if httpx.JSONDepth(raw, MaxSchemaDepth) > MaxSchemaDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", MaxSchemaDepth)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, errors.New("not valid JSON")
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, errors.New("must be a JSON Schema object")
	}
	if err := costOf(doc); err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	const loc = "urn:myscrollr:stream-schema"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("not a valid JSON Schema: %s", oneLine(err))
	}
	s, err := compileSafely(c, loc)
	if err != nil {
		return nil, fmt.Errorf("not a valid JSON Schema: %s", oneLine(err))
	}
	return &Schema{s: s, doc: doc}, nil
}

// compileSafely turns a panic of the compiler on hostile input into an error: the schema is
// untrusted, and one bad schema must not take the function down.
func compileSafely(c *jsonschema.Compiler, loc string) (s *jsonschema.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("compiler failed: %v", r)
		}
	}()
	return c.Compile(loc)
}

// oneLine keeps an error message short and on one line.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	return clip.String(s, 300)
}

// Validate checks a decoded record (from jsonschema.UnmarshalJSON: numbers as json.Number)
// against the schema and returns every problem, pointers into the record, sorted; none means
// valid.
func (s *Schema) Validate(v any) []Problem {
	err := s.s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{Reason: oneLine(err)}}
	}
	return tidy(collect(ve, nil))
}

// collect flattens a validation error tree into its leaves.
func collect(e *jsonschema.ValidationError, out []Problem) []Problem {
	if len(e.Causes) > 0 {
		for _, cause := range e.Causes {
			out = collect(cause, out)
		}
		return out
	}
	at := Pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, name := range k.Missing {
			out = append(out, Problem{Field: at + "/" + escape(name), Reason: "required"})
		}
		return out
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			out = append(out, Problem{Field: at + "/" + escape(name), Reason: "unknown field"})
		}
		return out
	}
	return append(out, Problem{Field: at, Reason: clip.String(e.ErrorKind.LocalizedString(printer), 500)})
}

// tidy sorts problems by field then reason, drops duplicates and caps them at MaxProblems.
func tidy(ps []Problem) []Problem {
	slices.SortFunc(ps, func(a, b Problem) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	ps = slices.Compact(ps)
	if len(ps) > MaxProblems {
		n := len(ps) - (MaxProblems - 1)
		ps = append(ps[:MaxProblems-1], Problem{Reason: strconv.Itoa(n) + " more problems"})
	}
	return ps
}

// Pointer is the JSON pointer of a sequence of reference tokens.
func Pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escape(t))
	}
	return b.String()
}

func escape(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}
