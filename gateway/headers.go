package gateway

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"

	"github.com/mcpstream/mcpstream/schema"
)

// A tool's input schema may mark properties with x-mcp-header: in revision
// 2026-07-28 the client mirrors their values into Mcp-Param-<Name> headers
// (for intermediaries to route on), and the server must check that each
// header matches the body.

// headerParam is one mirrored property of a tool's arguments.
type headerParam struct {
	path   []string // property names from the arguments object down
	header string   // Mcp-Param-<header>
	typ    string   // the property's JSON Schema type
}

// maxHeaderDepth bounds how deep into nested objects mirrored properties
// are looked for.
const maxHeaderDepth = 8

// headerParams lists the mirrored properties of an input schema.
func headerParams(inputSchema []byte) []headerParam {
	if !bytes.Contains(inputSchema, []byte("x-mcp-header")) {
		return nil
	}
	var out []headerParam
	var walk func(raw []byte, path []string)
	walk = func(raw []byte, path []string) {
		var s struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if len(path) > maxHeaderDepth || json.Unmarshal(raw, &s) != nil {
			return
		}
		for name, prop := range s.Properties {
			var p struct {
				Header string `json:"x-mcp-header"`
				Type   string `json:"type"`
			}
			_ = json.Unmarshal(prop, &p)
			at := append(append([]string{}, path...), name)
			if p.Header != "" {
				out = append(out, headerParam{path: at, header: p.Header, typ: p.Type})
			}
			if p.Type == "object" {
				walk(prop, at)
			}
		}
	}
	walk(inputSchema, nil)
	return out
}

// checkParamHeaders validates the Mcp-Param-* headers of a tools/call
// against its arguments: a mirrored value present in the body needs its
// header, decoded equal to it (numbers compared as numbers).
func checkParamHeaders(params []headerParam, args []byte, h http.Header) *schema.Error {
	for _, p := range params {
		v := lookup(args, p.path)
		if v == nil || string(v) == "null" {
			continue
		}
		name := schema.HeaderParamPrefix + p.header
		vals := h.Values(name)
		if len(vals) != 1 {
			return schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: one %s header is required, as %s is in the arguments", name, strings.Join(p.path, "."))
		}
		got, ok := schema.DecodeHeaderValue(vals[0])
		if !ok {
			return schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: the %s header value is malformed", name)
		}
		if !sameValue(got, v) {
			return schema.Errorf(schema.CodeHeaderMismatch, "Header mismatch: %s header value %q does not match the body value %s", name, got, v)
		}
	}
	return nil
}

// lookup returns the raw JSON at path in the object doc, or nil.
func lookup(doc []byte, path []string) []byte {
	cur := doc
	for _, key := range path {
		if len(cur) == 0 || cur[0] != '{' {
			return nil
		}
		var next []byte
		_ = schema.ScanObject(cur, func(k, v []byte) {
			if string(k) == key {
				next = v
			}
		})
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// sameValue compares a header's decoded text with a JSON value: strings as
// text, numbers numerically, booleans as "true"/"false".
func sameValue(header string, v []byte) bool {
	switch {
	case v[0] == '"':
		var s string
		return json.Unmarshal(v, &s) == nil && s == header
	case string(v) == "true", string(v) == "false":
		return header == string(v)
	default:
		a, ok1 := new(big.Float).SetString(header)
		b, ok2 := new(big.Float).SetString(string(v))
		return ok1 && ok2 && a.Cmp(b) == 0
	}
}
