package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// A replica with a partition share pulls only from its partitions: its
// pull requests wait on partition 1 of 2, none on partition 0, and a call
// routed to partition 1 is answered. A share it cannot take is an error.
func TestPartitionShare(t *testing.T) {
	h := newHarness(t)
	g := workers.NewGroup("shared")
	workers.AddTool(g, workers.Tool{Name: "hi"}, func(context.Context, *workers.Call, struct{}) (*schema.ToolResult, error) {
		return workers.TextResult("hi"), nil
	})
	h.run(g, workers.Options{Share: workers.PartitionShare{Index: 1, Of: 2}})
	testkit.Eventually(t, "a pull waiting on partition 1", 10*time.Second, func() bool { return h.consumerInfo("shared", 1).NumWaiting > 0 })
	if n := h.consumerInfo("shared", 0).NumWaiting; n != 0 {
		t.Fatalf("%d pulls waiting on partition 0, outside the share", n)
	}
	var key string
	for i := 0; key == ""; i++ {
		if k := fmt.Sprintf("share-%d", i); h.partition(k) == 1 {
			key = k
		}
	}
	h.publish("shared", h.envelope(key, "hi", nil))
	if rep := h.await(key, 10*time.Second); rep.Error != nil {
		t.Fatalf("call on partition 1: %v", rep.Error)
	}
	for _, bad := range []workers.PartitionShare{{Index: 2, Of: 2}, {Index: 0, Of: 3}, {Index: -1, Of: 1}} {
		if _, err := h.tryRun(h.connect(), workers.NewGroup("bad"), workers.Options{Share: bad}); err == nil {
			t.Errorf("share %+v taken", bad)
		}
	}
}

// A stateless client's retry reaches a raw handler with its inputResponses
// and requestState as the client sent them: a requestState the runtime
// did not sign (the forwarded server's own) is not refused, unless the
// handler asks the client itself (Call.Ask), which gets -32602.
func TestRawStatelessRetryPassesThrough(t *testing.T) {
	h := newHarness(t)
	g := workers.NewGroup("rawst")
	got := make(chan workers.RawRequest, 2)
	handler := func(ctx context.Context, call *workers.Call, req workers.RawRequest) (json.RawMessage, error) {
		got <- req
		if string(req.Params) == `{"ask":true}` {
			_, err := call.Ask(ctx, "k", schema.MethodElicitationCreate, map[string]any{"message": "?"})
			return nil, err
		}
		return json.RawMessage(`{"content":[]}`), nil
	}
	def := schema.Tool{Name: "pass", InputSchema: json.RawMessage(`{"type":"object"}`)}
	if err := g.SetRaw(workers.RawDefinitions{Tools: []schema.Tool{def}, Handler: handler}); err != nil {
		t.Fatal(err)
	}
	h.run(g, workers.Options{})
	retry := func(args any) *schema.Reply {
		env := h.envelope(h.key(), "pass", args)
		env.Session, env.Revision, env.RequestState = "", schema.Revision20260728, "upstream-state"
		var err error
		if env.InputResponses, err = schema.JSONToMsgpack(nil, []byte(`{"name":{"action":"accept"}}`)); err != nil {
			t.Fatal(err)
		}
		h.publish("rawst", env)
		return h.await(env.Key, 10*time.Second)
	}
	if rep := retry(map[string]any{}); rep.Error != nil {
		t.Fatalf("forwarded retry: error %v", rep.Error)
	}
	if req := <-got; req.RequestState != "upstream-state" || string(req.InputResponses) != `{"name":{"action":"accept"}}` {
		t.Fatalf("handler got requestState %q, inputResponses %s", req.RequestState, req.InputResponses)
	}
	if rep := retry(map[string]any{"ask": true}); rep.Error == nil || rep.Error.Code != schema.CodeInvalidParams {
		t.Fatalf("asking with a foreign requestState: %+v, want -32602", rep.Error)
	}
}
