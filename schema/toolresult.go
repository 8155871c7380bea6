package schema

import (
	"encoding/json"
	"fmt"
)

// AppendToolResult appends r as msgpack to dst: the same value that
// JSONToMsgpack(json.Marshal(r)) gives, written without the JSON step.
// StructuredContent that is a json.RawMessage is compacted as is; any other
// value goes through encoding/json. It returns an error for structured
// content that is not valid JSON.
func AppendToolResult(dst []byte, r *ToolResult) ([]byte, error) {
	fields := 1
	if r.StructuredContent != nil {
		fields++
	}
	if r.IsError {
		fields++
	}
	dst = append(dst, 0x80|byte(fields))
	dst = appendMsgpackStr(dst, []byte("content"))
	if r.Content == nil {
		dst = append(dst, 0xc0)
	} else {
		dst = appendArrayHeader(dst, len(r.Content))
		for i := range r.Content {
			dst = appendContent(dst, &r.Content[i])
		}
	}
	if r.StructuredContent != nil {
		dst = appendMsgpackStr(dst, []byte("structuredContent"))
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
		dst = appendMsgpackStr(dst, []byte("isError"))
		dst = append(dst, 0xc3)
	}
	return dst, nil
}

func appendContent(dst []byte, c *Content) []byte {
	fields := 1
	for _, s := range []string{c.Text, c.Data, c.MimeType} {
		if s != "" {
			fields++
		}
	}
	dst = append(dst, 0x80|byte(fields))
	dst = appendMsgpackStr(dst, []byte("type"))
	dst = appendMsgpackStr(dst, []byte(c.Type))
	for _, kv := range [...][2]string{{"text", c.Text}, {"data", c.Data}, {"mimeType", c.MimeType}} {
		if kv[1] != "" {
			dst = appendMsgpackStr(dst, []byte(kv[0]))
			dst = appendMsgpackStr(dst, []byte(kv[1]))
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
