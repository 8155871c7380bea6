package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
	"github.com/mcpstream/mcpstream/workers"
)

// A raw tool's handler gets the arguments as JSON and its JSON result
// reaches the gateway as it is, unknown members kept; SetRaw without the
// tool removes it from the registry.
func TestRawToolForwardsAndIsRemoved(t *testing.T) {
	h := newHarness(t)
	g := workers.NewGroup("rawg")
	var got workers.RawRequest
	handler := func(_ context.Context, _ *workers.Call, req workers.RawRequest) (json.RawMessage, error) {
		got = req
		return json.RawMessage(`{"content":[{"type":"text","text":"hi"}],"x-extra":{"kept":true}}`), nil
	}
	def := schema.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`), Annotations: json.RawMessage(`{"readOnlyHint":true}`)}
	if err := g.SetRaw(workers.RawDefinitions{Tools: []schema.Tool{def}, Handler: handler}); err != nil {
		t.Fatal(err)
	}
	h.run(g, workers.Options{})
	rep := h.await(h.call("rawg", "echo", map[string]any{"a": 1}), 10*time.Second)
	if rep.Error != nil {
		t.Fatalf("error %v", rep.Error)
	}
	res, err := schema.MsgpackToJSON(nil, rep.Result)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(res, &out); err != nil || out["x-extra"] == nil {
		t.Fatalf("result %s: want the unknown member kept", res)
	}
	if got.Method != schema.MethodToolsCall || got.Name != "echo" || string(got.Params) != `{"a":1}` {
		t.Fatalf("handler got %+v", got)
	}
	reg, err := h.js.KeyValue(h.ctx(), streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(h.ctx(), streams.ToolKey("echo")); err != nil {
		t.Fatalf("tool echo not registered: %v", err)
	}
	if err := g.SetRaw(workers.RawDefinitions{Handler: handler}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "tool echo removed from the registry", 10*time.Second, func() bool {
		_, err := reg.Get(h.ctx(), streams.ToolKey("echo"))
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
}

// A raw name another group registered is refused: the other group's entry
// stays as it was.
func TestRawNameOfAnotherGroupRefused(t *testing.T) {
	h := newHarness(t)
	owner := workers.NewGroup("owner")
	workers.AddTool(owner, workers.Tool{Name: "shared"}, func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
		return workers.TextResult("owner"), nil
	})
	h.run(owner, workers.Options{})
	g := workers.NewGroup("intruder")
	err := g.SetRaw(workers.RawDefinitions{
		Tools: []schema.Tool{{Name: "shared", InputSchema: json.RawMessage(`{"type":"object"}`)}, {Name: "mine", InputSchema: json.RawMessage(`{"type":"object"}`)}},
		Handler: func(context.Context, *workers.Call, workers.RawRequest) (json.RawMessage, error) {
			return json.RawMessage(`{"content":[]}`), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.run(g, workers.Options{})
	reg, err := h.js.KeyValue(h.ctx(), streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := reg.Get(h.ctx(), streams.ToolKey("shared"))
	if err != nil {
		t.Fatal(err)
	}
	var entry schema.ToolEntry
	if err := json.Unmarshal(e.Value(), &entry); err != nil || entry.Group != "owner" {
		t.Fatalf("tool shared registered by %q (%v), want owner", entry.Group, err)
	}
	if e, err := reg.Get(h.ctx(), streams.ToolKey("mine")); err != nil {
		t.Fatalf("tool mine not registered: %v", err)
	} else if json.Unmarshal(e.Value(), &entry) != nil || entry.Group != "intruder" {
		t.Fatalf("tool mine registered by %q", entry.Group)
	}
}

// SetRaw refuses a name a typed entry of the group has, and repeated
// names.
func TestSetRawRefusesTypedAndRepeatedNames(t *testing.T) {
	g := workers.NewGroup("g")
	workers.AddTool(g, workers.Tool{Name: "typed"}, func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
		return nil, nil
	})
	h := func(context.Context, *workers.Call, workers.RawRequest) (json.RawMessage, error) { return nil, nil }
	if err := g.SetRaw(workers.RawDefinitions{Tools: []schema.Tool{{Name: "typed"}}, Handler: h}); err == nil {
		t.Fatal("SetRaw took a typed tool's name")
	}
	if err := g.SetRaw(workers.RawDefinitions{Prompts: []schema.Prompt{{Name: "p"}, {Name: "p"}}, Handler: h}); err == nil {
		t.Fatal("SetRaw took a repeated prompt")
	}
	if err := g.SetRaw(workers.RawDefinitions{Tools: []schema.Tool{{Name: "x"}}}); err == nil {
		t.Fatal("SetRaw took definitions without a handler")
	}
}
