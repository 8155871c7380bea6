package schema

import "encoding/json"

// SensitiveKeyword is the input-schema keyword that marks a tool argument
// as sensitive (a password, a token, personal data): a property schema
// with "x-mcpstream-sensitive": true. It is a JSON Schema extension
// keyword, so validators and clients ignore it; mcpstream replay masks the
// property's values in what it prints unless asked to show them.
const SensitiveKeyword = "x-mcpstream-sensitive"

// maxSchemaDepth bounds how deep [SensitivePaths] walks a schema.
const maxSchemaDepth = 32

// SensitivePaths returns where, in a tools/call's arguments object,
// inputSchema marks values sensitive: each path a list of member names
// from the arguments object, with "*" for every element of an array (a
// sensitive "items" schema) or every member of an object (a sensitive
// "additionalProperties" schema). It follows properties, items,
// additionalProperties, allOf, anyOf and oneOf, to a depth of 32; $ref is
// not followed. A schema that is not a JSON object has none.
func SensitivePaths(inputSchema json.RawMessage) [][]string {
	var root any
	if json.Unmarshal(inputSchema, &root) != nil {
		return nil
	}
	var out [][]string
	var walk func(node any, path []string, depth int)
	walk = func(node any, path []string, depth int) {
		s, ok := node.(map[string]any)
		if !ok || depth > maxSchemaDepth {
			return
		}
		if v, _ := s[SensitiveKeyword].(bool); v && len(path) > 0 {
			out = append(out, append([]string(nil), path...))
			return
		}
		if props, ok := s["properties"].(map[string]any); ok {
			for name, sub := range props {
				walk(sub, append(path, name), depth+1)
			}
		}
		walk(s["items"], append(path, "*"), depth+1)
		walk(s["additionalProperties"], append(path, "*"), depth+1)
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			if subs, ok := s[k].([]any); ok {
				for _, sub := range subs {
					walk(sub, path, depth+1)
				}
			}
		}
	}
	walk(root, nil, 0)
	return out
}
