package schema_test

import (
	"errors"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

func TestSplitBatch(t *testing.T) {
	parts, err := schema.SplitBatch([]byte(` [ {"a":[1,{"b":"]"}]} , 2,"x\"]" ,[ ]] `))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"a":[1,{"b":"]"}]}`, `2`, `"x\"]"`, `[ ]`}
	if len(parts) != len(want) {
		t.Fatalf("%d parts, want %d: %q", len(parts), len(want), parts)
	}
	for i := range want {
		if string(parts[i]) != want[i] {
			t.Errorf("part %d = %q, want %q", i, parts[i], want[i])
		}
	}
	var e *schema.Error
	if _, err := schema.SplitBatch([]byte(`[]`)); !errors.As(err, &e) || e.Code != schema.CodeInvalidRequest {
		t.Fatalf("empty batch: %v, want -32600", err)
	}
	if _, err := schema.SplitBatch([]byte(`{}`)); err == nil {
		t.Fatal("an object split as a batch")
	}
}
