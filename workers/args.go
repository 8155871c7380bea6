package workers

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/mcpstream/mcpstream/schema"
)

// flatArgs decodes a typed tool's arguments straight from the envelope's
// msgpack into its input struct, for the common tool whose input is a
// struct of scalar fields (strings, bools, integers, float64s). The
// general way decodes the msgpack into a value, validates that against the
// input schema, expands the msgpack to JSON and decodes the JSON into the
// struct; this one reads the msgpack once.
//
// It is taken only where it gives what the general way gives: for an input
// schema inferred from the struct that says no more than each field's
// type, its Go range (the minimum and maximum the inference writes for a
// sized integer) and which fields are required, with no other property
// allowed; and for arguments that are exactly that: each key one field's
// JSON name, once, each value of the field's kind and in its range, every
// required field there. Anything else (a key in another case, null, a
// float for an integer, a float32, invalid UTF-8, a nested value) goes the
// general way, which accepts or refuses it and words the error.
// FuzzFlatArgs holds the two ways to the same answer.
type flatArgs struct {
	fields []flatField
	// required has bit i set when fields[i] is required.
	required uint64
}

type flatField struct {
	name  string // its JSON name
	index int    // in the struct
	kind  reflect.Kind
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// newFlatArgs returns the fast decoder of arguments of type t, whose
// published input schema, inferred from t, is published; nil when t or
// the schema is not of the kind it serves.
func newFlatArgs(t reflect.Type, published []byte) *flatArgs {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var s struct {
		Type                 string                    `json:"type"`
		Properties           map[string]map[string]any `json:"properties"`
		Required             []string                  `json:"required"`
		AdditionalProperties *bool                     `json:"additionalProperties"` // a schema there fails the decode
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(published, &keys) != nil || json.Unmarshal(published, &s) != nil || s.Type != "object" {
		return nil
	}
	for k := range keys {
		if k != "type" && k != "properties" && k != "required" && k != "additionalProperties" && k != "description" && k != "title" {
			return nil
		}
	}
	a := &flatArgs{}
	for f := range t.Fields() {
		if !f.IsExported() {
			if f.Anonymous {
				return nil
			}
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		for o := range strings.SplitSeq(opts, ",") {
			if o != "" && o != "omitempty" && o != "omitzero" {
				return nil // ",string" and the like
			}
		}
		if f.Anonymous || !plainName(name) || len(a.fields) == 64 || implementsUnmarshal(f.Type) {
			return nil
		}
		prop, ok := s.Properties[name]
		if !ok || !flatProperty(f.Type, prop) {
			return nil
		}
		for _, g := range a.fields {
			if g.name == name {
				return nil
			}
		}
		a.fields = append(a.fields, flatField{name: name, index: f.Index[0], kind: f.Type.Kind()})
	}
	if len(a.fields) != len(s.Properties) {
		return nil
	}
	for _, r := range s.Required {
		i := a.field(r)
		if i < 0 {
			return nil
		}
		a.required |= 1 << i
	}
	return a
}

// plainName reports whether name is a JSON field name of letters, digits,
// '_' and '-', which encoding/json takes as given.
func plainName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r != '_' && r != '-' && (r >= 0x80 || !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}

// implementsUnmarshal reports whether encoding/json decodes t with its own
// method rather than by its kind.
func implementsUnmarshal(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || p.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) || p.Implements(textUnmarshaler)
}

// flatProperty reports whether prop, the schema of a field of type t,
// says no more than t does: its JSON type, and for a sized integer its Go
// range; a description, a title and the sensitive mark say nothing about
// what is valid.
func flatProperty(t reflect.Type, prop map[string]any) bool {
	want := ""
	lo, hi := math.Inf(-1), math.Inf(1)
	switch t.Kind() {
	case reflect.String:
		want = "string"
	case reflect.Bool:
		want = "boolean"
	case reflect.Float64:
		want = "number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		want = "integer"
		bits := t.Bits()
		lo, hi = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)-1
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "integer"
		lo, hi = 0, math.Ldexp(1, t.Bits())-1
	default:
		return false
	}
	for k, v := range prop {
		switch k {
		case "type":
			if v != want {
				return false
			}
		case "description", "title", schema.SensitiveKeyword:
		case "minimum":
			if f, ok := v.(float64); !ok || f != lo {
				return false
			}
		case "maximum":
			if f, ok := v.(float64); !ok || f != hi {
				return false
			}
		default:
			return false
		}
	}
	return prop["type"] == want
}

// field is the index of the field named name, or -1.
func (a *flatArgs) field(name string) int {
	for i, f := range a.fields {
		if f.name == name {
			return i
		}
	}
	return -1
}

// decode sets dst (an addressable struct of the type a was made for) from
// the msgpack arguments b and reports whether it could; when it could not,
// dst may be partly set, and the arguments go the general way.
func (a *flatArgs) decode(b []byte, dst reflect.Value) bool {
	var seen uint64
	return schema.ScanScalars(b, func(key []byte, v schema.Scalar) bool {
		i := -1
		for j := range a.fields {
			if a.fields[j].name == string(key) {
				i = j
				break
			}
		}
		if i < 0 || seen&(1<<i) != 0 {
			return false // another key, or one given twice
		}
		seen |= 1 << i
		return set(dst.Field(a.fields[i].index), a.fields[i].kind, v)
	}) && seen&a.required == a.required
}

// set sets fv, a field of kind k, to v if v is of that kind and in its
// range.
func set(fv reflect.Value, k reflect.Kind, v schema.Scalar) bool {
	switch k {
	case reflect.String:
		if v.Kind != schema.ScalarString || !utf8.Valid(v.Str) {
			return false
		}
		fv.SetString(string(v.Str))
	case reflect.Bool:
		if v.Kind != schema.ScalarBool {
			return false
		}
		fv.SetBool(v.Bool)
	case reflect.Float64:
		switch v.Kind {
		case schema.ScalarFloat:
			fv.SetFloat(v.Float)
		case schema.ScalarUint:
			fv.SetFloat(float64(v.Uint))
		case schema.ScalarInt:
			fv.SetFloat(float64(v.Int))
		default:
			return false
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i := v.Int
		switch {
		case v.Kind == schema.ScalarUint && v.Uint <= math.MaxInt64:
			i = int64(v.Uint)
		case v.Kind != schema.ScalarInt:
			return false
		}
		if fv.OverflowInt(i) {
			return false
		}
		fv.SetInt(i)
	default: // the unsigned kinds, which newFlatArgs alone lets in
		if v.Kind != schema.ScalarUint || fv.OverflowUint(v.Uint) {
			return false
		}
		fv.SetUint(v.Uint)
	}
	return true
}
