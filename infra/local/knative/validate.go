package knative

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// SkipReason says why a kind has no CRD to validate against, for the kinds Validate skips.
var SkipReason = map[string]string{
	"v1/Namespace":      "core Kubernetes kind, not a CRD",
	"v1/ConfigMap":      "core Kubernetes kind, not a CRD",
	"v1/Secret":         "core Kubernetes kind, not a CRD",
	"v1/ServiceAccount": "core Kubernetes kind, not a CRD",
	// Built into the API server (networking.k8s.io), validated by it, not a CRD.
	"networking.k8s.io/v1/NetworkPolicy": "built-in Kubernetes kind, not a CRD",
	// Built in (batch); Load decodes Jobs strictly instead (rawJob), and deploy.go checks them.
	"batch/v1/Job": "built-in Kubernetes kind, not a CRD",
}

// Schemas validates manifests against CRD schemas, keyed by "apiVersion/Kind".
type Schemas struct {
	byKind map[string]*jsonschema.Schema
}

// LoadCRDs reads every CustomResourceDefinition in the *.yaml files of crdDir and compiles the
// openAPIV3Schema of each served version into a JSON Schema.
func LoadCRDs(crdDir string) (*Schemas, error) {
	s := &Schemas{byKind: map[string]*jsonschema.Schema{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := eachDocument(crdDir, func(d Document) error { return s.addCRD(c, d) }); err != nil {
		return nil, fmt.Errorf("knative CRDs: %w", err)
	}
	return s, nil
}

type crd struct {
	Kind string `json:"kind"`
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
		Versions []struct {
			Name   string `json:"name"`
			Served bool   `json:"served"`
			Schema struct {
				OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

func (s *Schemas) addCRD(c *jsonschema.Compiler, d Document) error {
	var def crd
	if err := json.Unmarshal(d.JSON, &def); err != nil {
		return fmt.Errorf("%s: CRD: %v", d.File, err)
	}
	if def.Kind != "CustomResourceDefinition" {
		return nil
	}
	for _, v := range def.Spec.Versions {
		if !v.Served || len(v.Schema.OpenAPIV3Schema) == 0 {
			continue
		}
		raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(v.Schema.OpenAPIV3Schema))
		if err != nil {
			return fmt.Errorf("%s: CRD %s version %s: %v", d.File, def.Spec.Names.Kind, v.Name, err)
		}
		schema, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: CRD %s version %s: openAPIV3Schema is not an object", d.File, def.Spec.Names.Kind, v.Name)
		}
		key := def.Spec.Group + "/" + v.Name + "/" + def.Spec.Names.Kind
		doc := ToJSONSchema(schema)
		url := "crd:///" + key + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return fmt.Errorf("%s: CRD %s: %v", d.File, key, err)
		}
		compiled, err := c.Compile(url)
		if err != nil {
			return fmt.Errorf("%s: CRD %s: compile schema: %v", d.File, key, err)
		}
		s.byKind[key] = compiled
	}
	return nil
}

// Validate validates every document of every *.yaml file of dir against its CRD schema. Kinds
// in SkipReason are skipped; any other kind without a CRD is an error.
func Validate(dir, crdDir string) error {
	s, err := LoadCRDs(crdDir)
	if err != nil {
		return err
	}
	var errs []error
	err = eachManifest(dir, func(name string, data []byte) error {
		if err := s.ValidateFile(name, data); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// ValidateFile validates the documents of one multi-document YAML file.
func (s *Schemas) ValidateFile(file string, data []byte) error {
	docs, err := SplitDocuments(file, data)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range docs {
		if err := s.ValidateDocument(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ValidateDocument validates one document. It returns nil for the kinds in SkipReason.
func (s *Schemas) ValidateDocument(d Document) error {
	var h rawHeader
	_ = json.Unmarshal(d.JSON, &h) // a malformed header fails schema validation below
	key := h.APIVersion + "/" + h.Kind
	where := fmt.Sprintf("%s: %s %q (document %d)", d.File, h.Kind, h.Metadata.Name, d.Index+1)
	if _, skip := SkipReason[key]; skip {
		return nil
	}
	sch, ok := s.byKind[key]
	if !ok {
		return fmt.Errorf("%s: no CRD schema for apiVersion %q kind %q", where, h.APIVersion, h.Kind)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.JSON))
	if err != nil {
		return fmt.Errorf("%s: %v", where, err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%s: %s", where, describe(ve))
		}
		return fmt.Errorf("%s: %v", where, err)
	}
	return nil
}

// describe flattens a validation error tree into "field: reason" lines, the leaves only.
func describe(ve *jsonschema.ValidationError) string {
	printer := message.NewPrinter(language.English)
	var lines []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			field := strings.Join(e.InstanceLocation, ".")
			if field == "" {
				field = "(root)"
			}
			lines = append(lines, "field "+field+": "+e.ErrorKind.LocalizedString(printer))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return strings.Join(lines, "; ")
}

// objectMeta is the part of ObjectMeta our manifests use; the API server validates metadata
// itself, CRD schemas leave it open.
func objectMeta() map[string]any {
	strMap := map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
	return map[string]any{
		"type":     "object",
		"required": []any{"name"},
		"properties": map[string]any{
			"name":        map[string]any{"type": "string", "maxLength": 63, "pattern": `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`},
			"namespace":   map[string]any{"type": "string", "maxLength": 63, "pattern": `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`},
			"labels":      strMap,
			"annotations": strMap,
		},
		"additionalProperties": true,
	}
}

// ToJSONSchema converts a CRD openAPIV3Schema (structural schema) into a JSON Schema with the
// semantics of a Kubernetes API server using strict field validation:
//   - an object without x-kubernetes-preserve-unknown-fields and without additionalProperties
//     rejects fields it does not declare;
//   - x-kubernetes-int-or-string accepts an integer or a string;
//   - nullable: true also accepts null;
//   - format int32/int64 becomes minimum/maximum; other x-kubernetes-* keys are dropped.
//
// The root gets apiVersion, kind (required) and metadata (ObjectMeta) as the API server adds
// them. The input is not modified.
func ToJSONSchema(openAPI map[string]any) map[string]any {
	out := convertSchema(openAPI)
	props, _ := out["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		out["properties"] = props
	}
	props["apiVersion"] = map[string]any{"type": "string"}
	props["kind"] = map[string]any{"type": "string"}
	props["metadata"] = objectMeta()
	out["required"] = append(anySlice(out["required"]), "apiVersion", "kind", "metadata")
	return out
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return append([]any(nil), s...)
}

func convertSchema(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if strings.HasPrefix(k, "x-kubernetes-") || k == "nullable" || k == "format" {
			continue
		}
		switch k {
		case "properties":
			props := map[string]any{}
			if m, ok := v.(map[string]any); ok {
				for name, p := range m {
					if pm, ok := p.(map[string]any); ok {
						props[name] = convertSchema(pm)
					}
				}
			}
			out[k] = props
		case "items", "additionalProperties", "not":
			if m, ok := v.(map[string]any); ok {
				out[k] = convertSchema(m)
			} else {
				out[k] = v
			}
		case "allOf", "anyOf", "oneOf":
			var list []any
			for _, item := range anySlice(v) {
				if m, ok := item.(map[string]any); ok {
					list = append(list, convertSchema(m))
				}
			}
			out[k] = list
		default:
			out[k] = v
		}
	}
	if in["x-kubernetes-int-or-string"] == true {
		delete(out, "type")
		out["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
	}
	switch in["format"] {
	case "int32":
		out["minimum"], out["maximum"] = json.Number(fmt.Sprint(math.MinInt32)), json.Number(fmt.Sprint(math.MaxInt32))
	case "int64":
		out["minimum"], out["maximum"] = json.Number(fmt.Sprint(int64(math.MinInt64))), json.Number(fmt.Sprint(int64(math.MaxInt64)))
	}
	preserve := in["x-kubernetes-preserve-unknown-fields"] == true
	if out["type"] == "object" && !preserve {
		if _, has := out["additionalProperties"]; !has {
			out["additionalProperties"] = false
		}
	}
	if in["nullable"] == true {
		if t, ok := out["type"].(string); ok {
			out["type"] = []any{t, "null"}
		} else if alts, ok := out["anyOf"].([]any); ok {
			out["anyOf"] = append(alts, map[string]any{"type": "null"})
		}
	}
	return out
}
