package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// recoverReply finds a request's stored result by its key in a real result
// bucket; without one it says to run the request again only when that is
// safe: a completion, or a tool annotated read-only or idempotent.
func TestRecoverReply(t *testing.T) {
	_, _, js := testkit.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := streams.Provision(ctx, js, streams.Topology{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, streams.ResultBucket)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{results: kv, reg: newRegistry(slog.New(slog.DiscardHandler), 4)}
	tool := func(name, annotations string) *schema.ToolEntry {
		return &schema.ToolEntry{Tool: schema.Tool{Name: name, Annotations: json.RawMessage(annotations)}, Group: "g"}
	}
	g.reg.snap.Store(&Snapshot{tools: map[string]*schema.ToolEntry{
		"plain":  tool("plain", ""),
		"ro":     tool("ro", `{"readOnlyHint":true}`),
		"idem":   tool("idem", `{"idempotentHint":true,"destructiveHint":false}`),
		"unsafe": tool("unsafe", `{"idempotentHint":false}`),
	}})
	result, err := schema.JSONToMsgpack(nil, []byte(`{"content":[{"type":"text","text":"stored"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, rep *schema.Reply) {
		b, err := rep.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, streams.ResultKey(key), b); err != nil {
			t.Fatal(err)
		}
	}
	put("gw-1-a", &schema.Reply{Key: "gw-1-a", Result: result})
	put("gw-1-x", &schema.Reply{Key: "gw-1-other", Result: result}) // not this request's

	rep, rerun := g.recoverReply(ctx, &schema.Envelope{Key: "gw-1-a", Method: schema.MethodToolsCall, Name: "plain"})
	if rep == nil || rep.Key != "gw-1-a" || !bytes.Equal(rep.Result, result) || rerun {
		t.Errorf("stored result: got %+v, rerun %v", rep, rerun)
	}
	for _, c := range []struct {
		key, method, name string
		rerun             bool
	}{
		{"gw-1-b", schema.MethodToolsCall, "plain", false},
		{"gw-1-x", schema.MethodToolsCall, "unsafe", false},
		{"gw-1-b", schema.MethodToolsCall, "ro", true},
		{"gw-1-b", schema.MethodToolsCall, "idem", true},
		{"gw-1-b", schema.MethodToolsCall, "gone", false},
		{"gw-1-b", schema.MethodCompletionComplete, "", true},
		{"gw-1-b", schema.MethodPromptsGet, "p", false},
	} {
		rep, rerun := g.recoverReply(ctx, &schema.Envelope{Key: c.key, Method: c.method, Name: c.name})
		if rep != nil || rerun != c.rerun {
			t.Errorf("%s %s %s: got %+v, rerun %v; want nothing, rerun %v", c.key, c.method, c.name, rep, rerun, c.rerun)
		}
	}
}

// After a reconnect, every waiting request is suspect: each sweep ends its
// wait with errReplyMayBeLost until it stops being suspect. Requests that
// come later are not.
func TestRouterSuspectsWaitersAfterReconnect(t *testing.T) {
	r := newRouter(slog.New(slog.DiscardHandler), nil)
	before := r.register("before")
	r.published(before, 0)
	r.pubAck("before", &nats.Msg{Data: []byte(`{"stream":"MCP_REQ_0","seq":1}`)})
	r.suspectAll()
	after := r.register("after")
	for sweep := 1; sweep <= 2; sweep++ {
		r.expire()
		switch _, _, err := before.take(nil); {
		case err == nil:
			t.Errorf("sweep %d: the suspect request was not told", sweep)
		case !errors.Is(err, errReplyMayBeLost):
			t.Errorf("sweep %d: got %v, want errReplyMayBeLost", sweep, err)
		}
	}
	before.suspect.Store(false) // recovered
	r.expire()
	for name, w := range map[string]*waiter{"before": before, "after": after} {
		if _, _, err := w.take(nil); err != nil {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
