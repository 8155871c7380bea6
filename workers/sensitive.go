package workers

import (
	"reflect"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/mcpstream/mcpstream/schema"
)

// markSensitive sets schema.SensitiveKeyword on the properties of s, a
// schema inferred from t, whose struct fields are tagged
// `mcpstream:"sensitive"`, in nested structs, pointers, slices and maps
// too: replay masks their values unless asked to show them.
func markSensitive(t reflect.Type, s *jsonschema.Schema) {
	markSensitiveDepth(t, s, 0)
}

func markSensitiveDepth(t reflect.Type, s *jsonschema.Schema, depth int) {
	if s == nil || depth > 32 {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		markSensitiveDepth(t.Elem(), s.Items, depth+1)
		return
	case reflect.Map:
		markSensitiveDepth(t.Elem(), s.AdditionalProperties, depth+1)
		return
	case reflect.Struct:
	default:
		return
	}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		prop := s.Properties[name]
		if prop == nil {
			continue
		}
		if f.Tag.Get("mcpstream") == "sensitive" {
			if prop.Extra == nil {
				prop.Extra = map[string]any{}
			}
			prop.Extra[schema.SensitiveKeyword] = true
			continue
		}
		markSensitiveDepth(f.Type, prop, depth+1)
	}
}
