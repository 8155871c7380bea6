package schema_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

// AppendToolResult writes exactly what the JSON route would.
func TestAppendToolResultMatchesJSONRoute(t *testing.T) {
	many := make([]schema.Content, 20)
	for i := range many {
		many[i] = schema.Content{Type: "text", Text: strings.Repeat("x", i*20)}
	}
	for name, r := range map[string]*schema.ToolResult{
		"text":        {Content: []schema.Content{{Type: "text", Text: "héllo \"q\"\n"}}},
		"empty":       {Content: []schema.Content{}},
		"nil content": {},
		"error":       {Content: []schema.Content{{Type: "text", Text: "boom"}}, IsError: true},
		"image":       {Content: []schema.Content{{Type: "image", Data: "aGk=", MimeType: "image/png"}}},
		"resource": {Content: []schema.Content{{Type: "resource", Resource: &schema.ResourceContents{URI: "test://r", MimeType: "text/plain", Text: "hi"}},
			{Type: "resource", Resource: &schema.ResourceContents{URI: "test://b", Blob: "AAE="}}}},
		"structured":   {Content: []schema.Content{{Type: "text", Text: `{"sum":5}`}}, StructuredContent: json.RawMessage(`{"sum":5,"xs":[1,2.5]}`)},
		"struct value": {Content: []schema.Content{}, StructuredContent: map[string]any{"a": []int{1, 2}}},
		"many items":   {Content: many},
	} {
		t.Run(name, func(t *testing.T) {
			js, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			want, err := schema.JSONToMsgpack(nil, js)
			if err != nil {
				t.Fatal(err)
			}
			got, err := schema.AppendToolResult(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("msgpack differs from the JSON route\n got % x\nwant % x", got, want)
			}
		})
	}
	if _, err := schema.AppendToolResult(nil, &schema.ToolResult{StructuredContent: json.RawMessage(`{bad`)}); err == nil {
		t.Fatal("invalid structured content accepted")
	}
}

func TestIsToolError(t *testing.T) {
	for _, tt := range []struct {
		json string
		want bool
	}{
		{`{"content":[{"type":"text","text":"boom"}],"isError":true}`, true},
		{`{"isError":true,"content":[]}`, true},
		{`{"content":[{"type":"text","text":"fine"}],"isError":false}`, false},
		{`{"content":[{"type":"text","text":"isError"}]}`, false},
		{`{"messages":[]}`, false},
		{`[true]`, false},
		{`{"isError":"yes"}`, false},
	} {
		mp, err := schema.JSONToMsgpack(nil, []byte(tt.json))
		if err != nil {
			t.Fatal(err)
		}
		if got := schema.IsToolError(mp); got != tt.want {
			t.Errorf("IsToolError(%s) = %v, want %v", tt.json, got, tt.want)
		}
	}
	if schema.IsToolError([]byte{0xc1}) || schema.IsToolError(nil) {
		t.Error("malformed msgpack read as a tool error")
	}
}

// With dst nil, a small value's conversions and a tool result's encoding
// each allocate their output once, not growing it.
func TestNilDstAllocatesOnce(t *testing.T) {
	js := []byte(`{"text":"hello","n":[1,-2,2.5,true,null],"o":{"k":"v"}}`)
	mp, err := schema.JSONToMsgpack(nil, js)
	if err != nil {
		t.Fatal(err)
	}
	res := &schema.ToolResult{Content: []schema.Content{{Type: "text", Text: strings.Repeat("x", 300)}},
		StructuredContent: json.RawMessage(js)}
	for name, f := range map[string]func(){
		"JSONToMsgpack":    func() { _, _ = schema.JSONToMsgpack(nil, js) },
		"MsgpackToJSON":    func() { _, _ = schema.MsgpackToJSON(nil, mp) },
		"AppendToolResult": func() { _, _ = schema.AppendToolResult(nil, res) },
	} {
		if n := testing.AllocsPerRun(100, f); n > 1 {
			t.Errorf("%s: %.0f allocations, want 1", name, n)
		}
	}
}
