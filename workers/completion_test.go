package workers

import (
	"context"
	"fmt"
	"testing"

	"github.com/mcpstream/mcpstream/schema"
)

func TestCompleteBoundsAndDefaults(t *testing.T) {
	g := NewGroup("g")
	AddPrompt(g, schema.Prompt{Name: "many"}, nil)
	AddPrompt(g, schema.Prompt{Name: "none"}, nil)
	AddResourceTemplate(g, schema.ResourceTemplate{URITemplate: "t://{id}"}, nil)
	var all []string
	for i := range 250 {
		all = append(all, fmt.Sprintf("v%03d", i))
	}
	CompletePrompt(g, "many", Suggest(map[string][]string{"a": all}))
	CompleteTemplate(g, "t://{id}", func(_ context.Context, _ *Call, arg, value string, resolved map[string]string) (*schema.Completion, error) {
		return &schema.Completion{Values: []string{arg + "=" + value + "/" + resolved["k"]}}, nil
	})
	ctx := context.Background()
	res, err := g.complete(ctx, &Call{}, []byte(`{"ref":{"type":"ref/prompt","name":"many"},"argument":{"name":"a","value":"v"}}`))
	if err != nil || len(res.Completion.Values) != schema.MaxCompletionValues || !res.Completion.HasMore || res.Completion.Total != 250 {
		t.Fatalf("250 candidates: %d values, hasMore %v, total %d, %v; want 100, true, 250", len(res.Completion.Values), res.Completion.HasMore, res.Completion.Total, err)
	}
	res, err = g.complete(ctx, &Call{}, []byte(`{"ref":{"type":"ref/prompt","name":"none"},"argument":{"name":"a","value":""}}`))
	if err != nil || res.Completion.Values == nil || len(res.Completion.Values) != 0 {
		t.Fatalf("a prompt without a completer: %+v, %v; want an empty values array", res, err)
	}
	res, err = g.complete(ctx, &Call{}, []byte(`{"ref":{"type":"ref/resource","uri":"t://{id}"},"argument":{"name":"id","value":"4"},"context":{"arguments":{"k":"z"}}}`))
	if err != nil || fmt.Sprint(res.Completion.Values) != "[id=4/z]" {
		t.Fatalf("template completer: %+v, %v", res, err)
	}
	if _, err := g.complete(ctx, &Call{}, []byte(`{"ref":{"type":"ref/prompt","name":"other"},"argument":{"name":"a"}}`)); err == nil {
		t.Fatal("a prompt of another group was completed")
	}
	defer func() {
		if recover() == nil {
			t.Error("CompletePrompt of a missing prompt did not panic")
		}
	}()
	CompletePrompt(g, "missing", Suggest(nil))
}
