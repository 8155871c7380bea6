package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpstream/mcpstream/gateway"
	"github.com/mcpstream/mcpstream/internal/testkit"
	"github.com/mcpstream/mcpstream/schema"
	"github.com/mcpstream/mcpstream/streams"
)

// TestGroupWithoutReplica: a tool or prompt whose worker group has no
// live replica (registered, its heartbeats gone) is answered at once with
// -32000 naming the group, 503 and Retry-After, not left to wait for the
// call's deadline; an unknown tool is still -32602.
func TestGroupWithoutReplica(t *testing.T) {
	tg := newTestGateway(t, gateway.Config{CallTimeout: time.Minute})
	_, js := testkit.JetStreamOver(t, func() (*nats.Conn, error) { return tg.emb.Connect() })
	ctx := context.Background()
	reg, err := js.KeyValue(ctx, streams.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	tool, _ := json.Marshal(schema.ToolEntry{Tool: schema.Tool{Name: "orphan", InputSchema: json.RawMessage(`{"type":"object"}`)}, Group: "gone", Version: "1"})
	prompt, _ := json.Marshal(schema.PromptEntry{Prompt: schema.Prompt{Name: "orphan-prompt"}, Group: "gone", Version: "1"})
	if _, err := reg.Put(ctx, streams.ToolKey("orphan"), tool); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Put(ctx, streams.PromptKey("orphan-prompt"), prompt); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "orphan and orphan-prompt unserved", 10*time.Second, func() bool {
		s := tg.g.Registry()
		return s.Unserved("orphan") == "gone" && s.Unserved("orphan-prompt") == "gone" && s.Tool("orphan") == nil
	})
	h := tg.initialize(t, "2025-11-25", "{}")
	start := time.Now()
	for _, body := range []string{callBody(2, "orphan", "{}", ""),
		`{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"orphan-prompt"}}`} {
		r := tg.post(t, body, h...)
		m := wantError(t, r, http.StatusServiceUnavailable, schema.CodeOverloaded)
		if !strings.Contains(m.Error.Message, "worker group gone") || !strings.Contains(string(m.Error.Data), `"group":"gone"`) ||
			r.header.Get("Retry-After") == "" {
			t.Errorf("%s: %s (Retry-After %q)", body, r.body, r.header.Get("Retry-After"))
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answered after %s: it waited", took)
	}
	wantError(t, tg.post(t, callBody(4, "nothing-such", "{}", ""), h...), http.StatusOK, schema.CodeInvalidParams)
}
