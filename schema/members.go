package schema

import (
	"bytes"
	"encoding/json"
	"errors"
)

// errNotObject is returned by [ScanObject] for a value that is not an object.
var errNotObject = errors.New("schema: not a JSON object")

// ScanObject calls fn with each member of the JSON object data: the key
// unescaped, and the value's raw JSON text (aliasing data). data must be
// valid JSON (check it with ValidJSON first); ScanObject returns an error
// when it is not an object. It allocates only for keys with escapes.
func ScanObject(data []byte, fn func(key, value []byte)) error {
	c := jsonReader{in: data}
	c.skipSpace()
	if c.pos >= len(c.in) || c.in[c.pos] != '{' {
		return errNotObject
	}
	c.pos++
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		return nil
	}
	for {
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return c.errorf("expected object key")
		}
		key, err := c.str()
		if err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return c.errorf("expected ':'")
		}
		c.pos++
		c.skipSpace()
		start := c.pos
		if err := c.skipValue(); err != nil {
			return err
		}
		fn(key, c.in[start:c.pos])
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errorf("unexpected end of object")
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
		case '}':
			return nil
		default:
			return c.errorf("expected ',' or '}'")
		}
	}
}

// skipValue moves past one value of valid JSON without decoding it.
func (c *jsonReader) skipValue() error {
	if c.pos >= len(c.in) {
		return c.errorf("unexpected end of input")
	}
	switch c.in[c.pos] {
	case '"':
		c.pos++
		for c.pos < len(c.in) {
			switch c.in[c.pos] {
			case '\\':
				c.pos += 2
				continue
			case '"':
				c.pos++
				return nil
			}
			c.pos++
		}
		return c.errorf("unterminated string")
	case '{', '[':
		depth := 0
		for c.pos < len(c.in) {
			switch c.in[c.pos] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					c.pos++
					return nil
				}
			case '"':
				if err := c.skipValue(); err != nil {
					return err
				}
				continue
			}
			c.pos++
		}
		return c.errorf("unterminated container")
	default: // number or literal
		for c.pos < len(c.in) {
			switch c.in[c.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			c.pos++
		}
		return nil
	}
}

// jsonString returns the Go string of a JSON string value, or false when
// raw is not a string.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// ToolCall reads the params of tools/call: the tool name, the raw
// arguments (nil when absent or null) and the raw _meta.progressToken (nil
// when absent). It returns an *Error with [CodeInvalidParams] when params is
// not an object with a string name.
func ToolCall(params []byte) (name string, args, progressToken []byte, err *Error) {
	if len(params) == 0 || params[0] != '{' {
		return "", nil, nil, Errorf(CodeInvalidParams, "tools/call needs params with a tool name")
	}
	var nameRaw, meta []byte
	if scanErr := ScanObject(params, func(k, v []byte) {
		switch string(k) {
		case "name":
			nameRaw = v
		case "arguments":
			args = v
		case "_meta":
			meta = v
		}
	}); scanErr != nil {
		return "", nil, nil, Errorf(CodeInvalidParams, "tools/call params: %v", scanErr)
	}
	name, ok := jsonString(nameRaw)
	if !ok || name == "" {
		return "", nil, nil, Errorf(CodeInvalidParams, "tools/call needs params with a tool name")
	}
	if string(args) == "null" {
		args = nil
	}
	if len(meta) > 0 && meta[0] == '{' {
		_ = ScanObject(meta, func(k, v []byte) {
			if string(k) == "progressToken" && (v[0] == '"' || v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
				progressToken = v
			}
		})
	}
	return name, args, progressToken, nil
}

// SplitBatch returns the raw elements of a JSON-RPC batch: data must be a
// valid JSON array (check it with ValidJSON first). An empty array is an
// invalid request: it returns a *Error with [CodeInvalidRequest].
func SplitBatch(data []byte) ([][]byte, *Error) {
	c := jsonReader{in: data}
	c.skipSpace()
	if c.pos >= len(c.in) || c.in[c.pos] != '[' {
		return nil, &Error{Code: CodeInvalidRequest, Message: "invalid request: not a batch"}
	}
	c.pos++
	var out [][]byte
	for {
		c.skipSpace()
		if c.pos < len(c.in) && c.in[c.pos] == ']' && len(out) == 0 {
			return nil, &Error{Code: CodeInvalidRequest, Message: "invalid request: empty batch"}
		}
		start := c.pos
		if err := c.skipValue(); err != nil {
			return nil, &Error{Code: CodeParseError, Message: "parse error: " + err.Error()}
		}
		out = append(out, c.in[start:c.pos])
		c.skipSpace()
		if c.pos >= len(c.in) {
			return nil, &Error{Code: CodeParseError, Message: "parse error: unterminated batch"}
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
		case ']':
			return out, nil
		default:
			return nil, &Error{Code: CodeParseError, Message: "parse error: expected ',' or ']'"}
		}
	}
}
