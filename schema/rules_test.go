package schema_test

import (
	"encoding/json"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

func TestIdempotent(t *testing.T) {
	tool := func(annotations string) *schema.Tool {
		return &schema.Tool{Name: "t", Annotations: json.RawMessage(annotations)}
	}
	for _, tt := range []struct {
		method string
		tool   *schema.Tool
		want   bool
	}{
		{schema.MethodCompletionComplete, nil, true},
		{schema.MethodToolsCall, tool(`{"readOnlyHint":true}`), true},
		{schema.MethodToolsCall, tool(`{"idempotentHint":true,"destructiveHint":true}`), true},
		{schema.MethodToolsCall, tool(`{"readOnlyHint":false}`), false},
		{schema.MethodToolsCall, tool(`{"readOnlyHint":"yes"}`), false},
		{schema.MethodToolsCall, tool(`[`), false},
		{schema.MethodToolsCall, tool(``), false},
		{schema.MethodToolsCall, nil, false},
		{schema.MethodPromptsGet, tool(`{"readOnlyHint":true}`), false},
		{schema.MethodResourcesRead, nil, false},
	} {
		var ann string
		if tt.tool != nil {
			ann = string(tt.tool.Annotations)
		}
		if got := schema.Idempotent(tt.method, tt.tool); got != tt.want {
			t.Errorf("Idempotent(%s, %s) = %v, want %v", tt.method, ann, got, tt.want)
		}
	}
}

func TestTaskSupport(t *testing.T) {
	for _, support := range []string{"", schema.TaskSupportOptional, schema.TaskSupportRequired} {
		exec, err := schema.TaskExecution(support)
		if err != nil {
			t.Fatalf("TaskExecution(%q): %v", support, err)
		}
		tool := &schema.Tool{Name: "t", Execution: exec}
		if got := tool.TaskSupport(); got != support {
			t.Errorf("TaskSupport of %s = %q, want %q", exec, got, support)
		}
	}
	if _, err := schema.TaskExecution("sometimes"); err == nil {
		t.Error("TaskExecution(sometimes) accepted")
	}
	var none *schema.Tool
	if none.TaskSupport() != "" || (&schema.Tool{Execution: json.RawMessage(`[]`)}).TaskSupport() != "" {
		t.Error("a nil tool or a malformed execution declares task support")
	}
}
