// Package eventschema validates the data of platform CloudEvents against their JSON Schemas,
// json/<type>.json beside this file (draft 2020-12, embedded as JSON). They are the contract:
// the Go payload types in package events follow them, and a test keeps the two in step.
//
// The event schemas live here, in the events module, rather than in the schemas module with
// the other contracts: events is the module integration developers `go get`, and it must build
// on its own, outside this repository's workspace. A dependency's replace directives are
// ignored by go get, so events cannot require the unpublished schemas module; it requires no
// other module of this repository (tests/boundaries checks both).
//
// The outbox validates every platform event before it is written, so a malformed payload is
// refused at the source with an error naming the field, instead of reaching consumers.
package eventschema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// JSON holds the schemas: the directory "json" of files named <CloudEvent type>.json.
//
//go:embed json/*.json
var JSON embed.FS

const dir = "json"

// Error says which field of an event's data is wrong and why.
type Error struct {
	Type   string // the CloudEvent type
	Field  string // dotted path into the data ("scopes.2"); "" for the data as a whole
	Reason string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s data: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("%s data: field %q: %s", e.Type, e.Field, e.Reason)
}

var (
	once     sync.Once
	compiled map[string]*jsonschema.Schema
	loadErr  error
	printer  = message.NewPrinter(language.English)
)

func load() {
	compiled = map[string]*jsonschema.Schema{}
	entries, err := fs.ReadDir(JSON, dir)
	if err != nil {
		loadErr = fmt.Errorf("eventschema: %w", err)
		return
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	var types []string
	for _, e := range entries {
		typ, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		raw, err := JSON.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			loadErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			loadErr = fmt.Errorf("eventschema: %s: %w", e.Name(), err)
			return
		}
		if err := c.AddResource(e.Name(), doc); err != nil {
			loadErr = fmt.Errorf("eventschema: %s: %w", e.Name(), err)
			return
		}
		types = append(types, typ)
	}
	for _, typ := range types {
		s, err := c.Compile(typ + ".json")
		if err != nil {
			loadErr = fmt.Errorf("eventschema: %s: %w", typ, err)
			return
		}
		compiled[typ] = s
	}
}

// Types lists the event types that have a schema, sorted.
func Types() ([]string, error) {
	once.Do(load)
	if loadErr != nil {
		return nil, loadErr
	}
	out := make([]string, 0, len(compiled))
	for t := range compiled {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// Has reports whether eventType has a schema.
func Has(eventType string) bool {
	once.Do(load)
	_, ok := compiled[eventType]
	return ok
}

// Validate checks data, the JSON data of an event of eventType, against its schema. Types
// without a schema are not checked (nil). A failure is an *Error naming the first bad field.
func Validate(eventType string, data []byte) error {
	once.Do(load)
	if loadErr != nil {
		return loadErr
	}
	s, ok := compiled[eventType]
	if !ok {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &Error{Type: eventType, Reason: "not valid JSON"}
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &Error{Type: eventType, Reason: err.Error()}
	}
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	return &Error{Type: eventType, Field: strings.Join(leaf.InstanceLocation, "."), Reason: leaf.ErrorKind.LocalizedString(printer)}
}

// ValidateValue marshals v and validates it (for producers holding a Go payload).
func ValidateValue(eventType string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return &Error{Type: eventType, Reason: err.Error()}
	}
	return Validate(eventType, data)
}
