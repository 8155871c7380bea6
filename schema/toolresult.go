package schema

import (
	"encoding/json"
	"fmt"
)

// AppendToolResult appends r as msgpack to dst: the same value that
// JSONToMsgpack(json.Marshal(r)) gives, written without the JSON step.
// StructuredContent that is a json.RawMessage is compacted as is; any other
// value goes through encoding/json. It returns an error for structured
// content that is not valid JSON. With dst nil, the output is allocated
// once with room for what r's strings take (toolResultSize).
func AppendToolResult(dst []byte, r *ToolResult) ([]byte, error) {
	if dst == nil {
		dst = make([]byte, 0, toolResultSize(r))
	}
	fields := 1
	if r.StructuredContent != nil {
		fields++
	}
	if r.IsError {
		fields++
	}
	dst = append(dst, 0x80|byte(fields))
	dst = appendKey(dst, "content")
	if r.Content == nil {
		dst = append(dst, 0xc0)
	} else {
		dst = appendArrayHeader(dst, len(r.Content))
		for i := range r.Content {
			dst = appendContent(dst, &r.Content[i])
		}
	}
	if r.StructuredContent != nil {
		dst = appendKey(dst, "structuredContent")
		raw, ok := r.StructuredContent.(json.RawMessage)
		if !ok {
			var err error
			if raw, err = json.Marshal(r.StructuredContent); err != nil {
				return dst, fmt.Errorf("encoding structured content: %w", err)
			}
		}
		var err error
		if dst, err = JSONToMsgpack(dst, raw); err != nil {
			return dst, fmt.Errorf("compacting structured content: %w", err)
		}
	}
	if r.IsError {
		dst = appendKey(dst, "isError")
		dst = append(dst, 0xc3)
	}
	return dst, nil
}

// toolResultSize is about the length of r as msgpack: its strings, and
// room for keys and headers; structured content counts when it is a
// json.RawMessage, the length of its JSON.
func toolResultSize(r *ToolResult) int {
	n := 32
	for i := range r.Content {
		c := &r.Content[i]
		n += 40 + len(c.Type) + len(c.Text) + len(c.Data) + len(c.MimeType)
		if res := c.Resource; res != nil {
			n += 40 + len(res.URI) + len(res.MimeType) + len(res.Text) + len(res.Blob)
		}
	}
	if raw, ok := r.StructuredContent.(json.RawMessage); ok {
		n += len(raw)
	}
	return n
}

func appendContent(dst []byte, c *Content) []byte {
	opt := [...][2]string{{"text", c.Text}, {"data", c.Data}, {"mimeType", c.MimeType}}
	fields := 1
	for _, kv := range opt {
		if kv[1] != "" {
			fields++
		}
	}
	if c.Resource != nil {
		fields++
	}
	dst = append(dst, 0x80|byte(fields))
	dst = appendStrField(dst, "type", c.Type)
	for _, kv := range opt {
		if kv[1] != "" {
			dst = appendStrField(dst, kv[0], kv[1])
		}
	}
	if r := c.Resource; r != nil {
		opt := [...][2]string{{"mimeType", r.MimeType}, {"text", r.Text}, {"blob", r.Blob}}
		fields := 1
		for _, kv := range opt {
			if kv[1] != "" {
				fields++
			}
		}
		dst = append(appendKey(dst, "resource"), 0x80|byte(fields))
		dst = appendStrField(dst, "uri", r.URI)
		for _, kv := range opt {
			if kv[1] != "" {
				dst = appendStrField(dst, kv[0], kv[1])
			}
		}
	}
	return dst
}

func appendArrayHeader(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x90|byte(n))
	case n <= 0xffff:
		return append(dst, 0xdc, byte(n>>8), byte(n))
	default:
		return append(dst, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// IsToolError reports whether result, a result as msgpack (as a worker
// replies), is a tool result with isError true: the tool failed, and the
// client sees its text. It reads the top-level keys only; any other
// result, or one that does not decode, is not a tool error.
func IsToolError(result []byte) bool {
	m := mpReader{in: result}
	n, err := m.mapHeader()
	if err != nil {
		return false
	}
	for range n {
		k, err := m.strBytes()
		if err != nil {
			return false
		}
		if string(k) == "isError" {
			b, err := m.boolean()
			return err == nil && b
		}
		if m.skip(1) != nil {
			return false
		}
	}
	return false
}
