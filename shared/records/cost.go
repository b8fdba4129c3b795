package records

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxSchemaCost bounds how many subschema evaluations one record may cost under a stream
// schema, per node of the record (summed over the record's depths). The JSON Schema
// applicators compose multiplicatively: a chain of 25 definitions, each an anyOf of two
// references to the next, costs 2^25 evaluations for a single value and kept the validator
// busy for over a minute when measured. The validator cannot be interrupted, so such a schema
// is refused when it is compiled, by this static bound.
const MaxSchemaCost = 5000

var (
	errCostCycle = errors.New("a $ref cycle that never descends into the record")
	errTooCostly = fmt.Errorf("too costly to evaluate (combinators nested or referenced so that one record needs more than %d subschema evaluations per value)", MaxSchemaCost)
)

// Keywords whose subschemas apply to the same value (in place) or to its members (descend).
var (
	inPlaceOne  = []string{"not", "if", "then", "else"}
	inPlaceList = []string{"allOf", "anyOf", "oneOf"}
	inPlaceMap  = []string{"dependentSchemas", "dependencies"}
	descendOne  = []string{"additionalProperties", "items", "additionalItems", "contains", "propertyNames", "unevaluatedProperties", "unevaluatedItems"}
	descendList = []string{"prefixItems", "items"} // items as an array: drafts before 2020-12
	descendMap  = []string{"properties", "patternProperties"}
)

// costOf checks that a stream schema stays within MaxSchemaCost and uses only references the
// bound can follow: local JSON pointers ("#/$defs/x") and anchors ("#name"); nested $id,
// $dynamicRef and $recursiveRef are refused.
func costOf(doc any) error {
	c := &coster{root: doc, memo: map[string]int{}, busy: map[string]bool{}, anchors: map[string]string{}}
	if err := c.index(doc, "", true); err != nil {
		return err
	}
	total := 0
	for k := 0; k <= MaxRecordDepth; k++ {
		n, err := c.cost(doc, "", k)
		if err != nil {
			return err
		}
		if total += n; total > MaxSchemaCost {
			return errTooCostly
		}
	}
	return nil
}

type coster struct {
	root    any
	memo    map[string]int  // pointer@depth -> cost
	busy    map[string]bool // pointer@depth being computed (in-place cycle detection)
	anchors map[string]string
}

// index records the anchors and refuses what the bound cannot follow.
func (c *coster) index(node any, ptr string, root bool) error {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			switch k {
			case "$id":
				if !root {
					return fmt.Errorf("%s/$id: embedded resources are not supported; use $defs", ptr)
				}
			case "$dynamicRef", "$recursiveRef":
				return fmt.Errorf("%s/%s: not supported; use $ref", ptr, k)
			case "$anchor":
				if s, ok := v.(string); ok {
					c.anchors[s] = ptr
				}
			case "$ref":
				s, _ := v.(string)
				if !strings.HasPrefix(s, "#") {
					return fmt.Errorf("%s/$ref: %q: only local references (#/$defs/..., #anchor) are allowed", ptr, s)
				}
			case "enum", "const", "examples", "default":
				continue // values, not schemas
			}
			if err := c.index(v, ptr+"/"+escape(k), false); err != nil {
				return err
			}
		}
	case []any:
		for i, v := range n {
			if err := c.index(v, ptr+"/"+strconv.Itoa(i), false); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve finds the target of a local $ref.
func (c *coster) resolve(ref string) (any, string, bool) {
	frag := strings.TrimPrefix(ref, "#")
	if frag != "" && !strings.HasPrefix(frag, "/") {
		ptr, ok := c.anchors[frag]
		if !ok {
			return nil, "", false
		}
		frag = ptr
	}
	node := c.root
	for tok := range strings.SplitSeq(strings.TrimPrefix(frag, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := node.(type) {
		case map[string]any:
			node = n[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil, "", false
			}
			node = n[i]
		default:
			return nil, "", false
		}
	}
	return node, frag, node != nil
}

// cost is the most evaluations schema node (at pointer ptr) may cause at one value k levels
// below the value it is applied to.
func (c *coster) cost(node any, ptr string, k int) (int, error) {
	obj, ok := node.(map[string]any)
	if !ok {
		if k == 0 {
			return 1, nil // a boolean schema
		}
		return 0, nil
	}
	key := ptr + "@" + strconv.Itoa(k)
	if n, ok := c.memo[key]; ok {
		return n, nil
	}
	if c.busy[key] {
		return 0, errCostCycle
	}
	c.busy[key] = true
	defer delete(c.busy, key)
	total := 0
	if k == 0 {
		total = 1
	}
	add := func(child any, childPtr string, depth int) error {
		if depth < 0 {
			return nil
		}
		n, err := c.cost(child, childPtr, depth)
		if err != nil {
			return err
		}
		if total += n; total > MaxSchemaCost {
			return errTooCostly
		}
		return nil
	}
	if ref, ok := obj["$ref"].(string); ok {
		target, tptr, found := c.resolve(ref)
		if found {
			if err := add(target, tptr, k); err != nil {
				return 0, err
			}
		}
	}
	each := func(names []string, depth int, list, dict bool) error {
		for _, name := range names {
			v, ok := obj[name]
			if !ok {
				continue
			}
			base := ptr + "/" + escape(name)
			switch x := v.(type) {
			case []any:
				if !list {
					continue
				}
				for i, child := range x {
					if err := add(child, base+"/"+strconv.Itoa(i), depth); err != nil {
						return err
					}
				}
			case map[string]any:
				if dict {
					for name, child := range x {
						if err := add(child, base+"/"+escape(name), depth); err != nil {
							return err
						}
					}
				} else if !list {
					if err := add(x, base, depth); err != nil {
						return err
					}
				}
			case bool:
				if !list && !dict {
					if err := add(x, base, depth); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	for _, step := range []struct {
		names      []string
		depth      int
		list, dict bool
	}{
		{inPlaceOne, k, false, false}, {inPlaceList, k, true, false}, {inPlaceMap, k, false, true},
		{descendOne, k - 1, false, false}, {descendList, k - 1, true, false}, {descendMap, k - 1, false, true},
	} {
		if err := each(step.names, step.depth, step.list, step.dict); err != nil {
			return 0, err
		}
	}
	c.memo[key] = total
	return total, nil
}
